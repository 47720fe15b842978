//! AWS Bedrock (`bedrock`): chat through the Converse API (`POST /model/{modelId}/converse`,
//! streamed by `converse-stream` as an AWS binary event stream), embeddings through
//! InvokeModel (`POST /model/{modelId}/invoke`) with Titan's or Cohere's body.
//!
//! Each key carries `bedrock_key_config {access_key, secret_key, session_token, region, arn,
//! deployments}` (Bifrost's shape), or a Bedrock API key in `value`; with no key the
//! environment's AWS credentials are used (see [`auth`]). Requests are signed with SigV4
//! (service `bedrock`) by `aws-sigv4`, or carry the API key as a bearer token.
//!
//! `deployments` maps the model name used in requests to a Bedrock model id or
//! inference-profile id/ARN; a key with a non-empty map serves only the models in it. With
//! `arn` set, a deployment is sent as `{arn}/{deployment}` (Bifrost's rule), unless it is an
//! ARN itself. The model id goes into the path percent-encoded (`:` and `/` too).
//!
//! The endpoint is `https://bedrock-runtime.{region}.amazonaws.com`, or
//! `network_config.base_url` (tests, VPC endpoints, proxies). Translations live in
//! [`convert`], wire types in [`types`], the event stream in [`stream`]. Errors keep AWS's
//! exception name in `code` and map it to a status (throttling: 429, retried).

pub mod auth;
pub mod convert;
mod stream;
pub mod types;

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::Value;

use self::auth::{BEDROCK_KEY_CONFIG, MetaConfig};
use self::convert::EmbedFamily;
use self::types::{AwsError, ConverseResponse};
use super::openai::{Operations, transport_error};
use super::pool::{HttpClient, Limits, Outgoing, Response};
use super::{CallOptions, Provider, ResponseStream, compatible};
use crate::config::{ProviderConfig, ResolvedKey};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ModelInfo, ModelList, ProviderKey,
};

/// What Bedrock offers through this gateway (no legacy text completion; models are listed
/// from the configured deployments).
const SUPPORTS: Operations = Operations {
    text_completion: false,
    ..Operations::ALL
};

/// AWS's request id, used as the response id (Converse answers carry no id of their own).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// The exception name of an error answer.
const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
/// InvokeModel's input token count.
const INPUT_TOKENS: HeaderName = HeaderName::from_static("x-amzn-bedrock-input-token-count");
/// The content type of ConverseStream answers.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// The Bedrock provider.
#[derive(Debug)]
pub struct BedrockProvider {
    /// `bedrock`, or a custom provider's own name on this base.
    key: ProviderKey,
    client: HttpClient,
    /// The configured `network_config.extra_headers`.
    headers: HeaderMap,
    /// `network_config.base_url`, normalized; `None`: the regional AWS endpoint.
    base_url: Option<String>,
    /// Bifrost's older provider-level settings.
    meta: MetaConfig,
    /// Model names of every configured deployment, sorted, for listing.
    deployed: Vec<String>,
    supports: Operations,
    /// Largest event-stream frame accepted (`max_stream_event_size_kb`).
    max_frame: usize,
}

impl BedrockProvider {
    /// Creates the provider; `cfg` supplies the base URL, `meta_config`, the deployments
    /// listed by `list_models` and a custom provider's `allowed_requests`.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        headers: HeaderMap,
        cfg: &ProviderConfig,
    ) -> Self {
        let mut deployed: Vec<String> = cfg
            .keys
            .iter()
            .filter_map(|k| {
                k.provider_config
                    .get(BEDROCK_KEY_CONFIG)?
                    .get("deployments")?
                    .as_object()
            })
            .flat_map(|m| m.keys().cloned())
            .collect();
        deployed.sort();
        deployed.dedup();
        let supports = match compatible::custom_config(&key, cfg) {
            Some(custom) => compatible::restrict(SUPPORTS, custom),
            None => SUPPORTS,
        };
        Self {
            key,
            client: client.into(),
            headers,
            base_url: cfg
                .network_config
                .base_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            meta: MetaConfig::from_value(cfg.meta_config.as_ref()),
            deployed,
            supports,
            max_frame: Limits::from(&cfg.network_config).max_event,
        }
    }

    fn unsupported(&self, operation: &str) -> BifrostError {
        BifrostError::unsupported_operation(&self.key, operation)
    }

    /// The Bedrock model id for `model`: its deployment when the key maps it (prefixed
    /// with the key's `arn`, if any), else the name as given.
    fn model_id(&self, model: &str, key: Option<&ResolvedKey>) -> String {
        let Some(key) = key else {
            return model.to_owned();
        };
        match key.deployment(model) {
            Some(Some(deployment)) => {
                let arn = key
                    .provider_config
                    .get(BEDROCK_KEY_CONFIG)
                    .and_then(|c| c.get("arn"))
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty() && !a.starts_with("env."));
                match arn {
                    Some(arn) if !deployment.starts_with("arn:") => {
                        format!("{}/{deployment}", arn.trim_end_matches('/'))
                    }
                    _ => deployment.to_owned(),
                }
            }
            _ => model.to_owned(),
        }
    }

    /// `{endpoint}/model/{modelId}/{action}`.
    fn url(&self, region: &str, model_id: &str, action: &str) -> String {
        let root = match &self.base_url {
            Some(base) => base.clone(),
            None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        };
        format!("{root}/model/{}/{action}", encode_segment(model_id))
    }

    /// Signs and POSTs `body` (JSON) to `action` of the request's model; a non-2xx answer
    /// becomes the unified error.
    async fn post(
        &self,
        model: &str,
        action: &str,
        body: Vec<u8>,
        accept: &'static str,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let resolved = auth::resolve(opts.key, &self.meta)?;
        let model_id = self.model_id(model, opts.key);
        let url = self.url(&resolved.region, &model_id, action);
        let mut headers = self.headers.clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        auth::authorize(&resolved, &url, &body, &mut headers, SystemTime::now())?;
        // Added after signing: they are sent as they are, unsigned (AWS allows that).
        for (k, v) in opts.extra_headers {
            match (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => {
                    return Err(BifrostError::invalid_request(format!(
                        "extra header {k:?} is not a valid HTTP header"
                    )));
                }
            }
        }
        tracing::debug!(provider = %self.key, model_id = %model_id, action, "bedrock request");
        let resp = self
            .client
            .send_parts(Outgoing {
                method: http::Method::POST,
                url: &url,
                parsed: None,
                headers,
                body: Bytes::from(body),
                timeout: opts.timeout,
            })
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        check(resp).await
    }

    /// POSTs and reads the whole answer, with AWS's request id and its input-token header.
    async fn post_whole(
        &self,
        model: &str,
        action: &str,
        body: Vec<u8>,
        opts: CallOptions<'_>,
    ) -> Result<(Bytes, String, Option<u64>), BifrostError> {
        let resp = self
            .post(model, action, body, "application/json", opts)
            .await?;
        let id = request_id(&resp);
        let tokens = resp
            .headers()
            .get(INPUT_TOKENS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        Ok((bytes, id, tokens))
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BifrostError> {
        serde_json::from_slice(bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!("cannot parse {} response: {e}", self.key))
        })
    }
}

/// AWS's request id, or a local one when the answer has none.
fn request_id(resp: &Response) -> String {
    resp.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| format!("bedrock-{}", fastrand::u64(..)), str::to_owned)
}

/// A non-2xx answer as the unified error, by AWS's exception name (see
/// [`convert::exception`]).
async fn check(resp: Response) -> Result<Response, BifrostError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let header_type = resp
        .headers()
        .get(ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.error_bytes().await;
    let parsed: AwsError = serde_json::from_slice(&bytes).unwrap_or_default();
    let name = convert::exception_name(header_type.as_deref(), parsed.kind.as_deref());
    let message = parsed
        .message
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned());
    Err(convert::provider_error(
        status.as_u16(),
        name.as_deref(),
        message,
    ))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (a model id or ARN as one
/// path segment, as the AWS SDKs send it).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_body<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, BifrostError> {
    serde_json::to_vec(body)
        .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))
}

impl Provider for BedrockProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.supports.chat {
            return Err(self.unsupported("chat completion"));
        }
        let body = encode_body(&convert::converse_request(req)?)?;
        let (bytes, id, _) = self.post_whole(&req.model, "converse", body, opts).await?;
        let parsed: ConverseResponse = self.parse(&bytes)?;
        let mut out = convert::chat_response(parsed, id, &req.model);
        if opts.raw_response {
            out.extra_fields.raw_response = serde_json::from_slice(&bytes).ok();
        }
        Ok(out)
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        if !self.supports.chat_stream {
            return Err(self.unsupported("streaming chat completion"));
        }
        let body = encode_body(&convert::converse_request(req)?)?;
        let resp = self
            .post(&req.model, "converse-stream", body, EVENT_STREAM, opts)
            .await?;
        let id = request_id(&resp);
        Ok(stream::chat_stream(resp, id, &req.model, self.max_frame))
    }

    async fn text_completion(
        &self,
        _req: &BifrostRequest,
        _opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        Err(self.unsupported("text completion"))
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.supports.embeddings {
            return Err(self.unsupported("embeddings"));
        }
        let model_id = self.model_id(&req.model, opts.key);
        let family = EmbedFamily::of(&model_id)
            .or_else(|| EmbedFamily::of(&req.model))
            .ok_or_else(|| {
                self.unsupported(&format!(
                    "embeddings with model {:?} (Titan and Cohere embedding models are supported)",
                    req.model
                ))
            })?;
        let texts = convert::embedding_texts(req)?;
        let base64 = req.params.encoding_format.as_deref() == Some("base64");
        match family {
            EmbedFamily::Titan => {
                // Titan embeds one text per call; the calls run side by side.
                let calls = texts.iter().map(|t| async {
                    let body = encode_body(&convert::titan_body(t, req))?;
                    let (bytes, _, _) = self.post_whole(&req.model, "invoke", body, opts).await?;
                    convert::titan_vector(&self.parse::<Value>(&bytes)?)
                });
                let answers = futures::future::try_join_all(calls).await?;
                let tokens = answers.iter().map(|(_, n)| n).sum();
                let vectors = answers.into_iter().map(|(v, _)| v).collect();
                Ok(convert::embedding_response(
                    vectors, tokens, &req.model, base64,
                ))
            }
            EmbedFamily::Cohere => {
                let body = encode_body(&convert::cohere_body(&texts, req))?;
                let (bytes, _, tokens) = self.post_whole(&req.model, "invoke", body, opts).await?;
                let raw: Value = self.parse(&bytes)?;
                let vectors = convert::cohere_vectors(&raw)?;
                let mut out =
                    convert::embedding_response(vectors, tokens.unwrap_or(0), &req.model, base64);
                if opts.raw_response {
                    out.extra_fields.raw_response = Some(raw);
                }
                Ok(out)
            }
        }
    }

    async fn list_models(&self, _opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        if !self.supports.list_models || self.deployed.is_empty() {
            return Err(self.unsupported(
                "listing models without deployments (configure bedrock_key_config.deployments)",
            ));
        }
        Ok(ModelList {
            object: "list".into(),
            data: self
                .deployed
                .iter()
                .map(|m| ModelInfo {
                    id: format!("{}/{m}", self.key),
                    object: "model".into(),
                    created: 0,
                    owned_by: "bedrock".into(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BifrostConfig;

    #[test]
    fn urls_encode_model_ids_and_apply_deployments_and_arns() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"bedrock": {"keys": [{"value": "", "bedrock_key_config": {
                "access_key": "AKID", "secret_key": "s", "region": "eu-west-1",
                "arn": "arn:aws:bedrock:eu-west-1:123456789012:inference-profile",
                "deployments": {"claude": "eu.anthropic.claude-3-haiku-20240307-v1:0"}}}]}}}"#,
        )
        .unwrap();
        let p = BedrockProvider::new(
            ProviderKey::Bedrock,
            reqwest::Client::new(),
            HeaderMap::new(),
            &cfg.providers["bedrock"],
        );
        let key = cfg.providers["bedrock"].keys[0]
            .resolve("bedrock", 0)
            .unwrap();
        let id = p.model_id("claude", Some(&key));
        assert_eq!(
            id,
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            p.url("eu-west-1", "anthropic.claude-v2:1", "converse"),
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-v2%3A1/converse"
        );
        assert_eq!(p.deployed, ["claude"]);
        assert_eq!(encode_segment("a/b:c"), "a%2Fb%3Ac");
    }
}
