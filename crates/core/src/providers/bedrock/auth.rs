//! Who a Bedrock request is sent as, and its signature.
//!
//! A key is resolved per request, in this order (Bifrost's rules, plus its older layout):
//! 1. `bedrock_key_config.access_key` + `secret_key` (+ `session_token`): SigV4.
//! 2. The key's `value`: a Bedrock API key, sent as `Authorization: Bearer`. In Bifrost's older
//!    layout (`meta_config.secret_access_key` at provider level) the value is the access key
//!    instead, signed with that secret.
//! 3. No key at all: the environment, as the AWS SDKs read it first: `AWS_BEARER_TOKEN_BEDROCK`,
//!    else `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`). Profiles, SSO and
//!    instance roles are not read: the full AWS credential chain would bring the SDK runtime
//!    and its HTTP stack for a case a deployment can cover with these variables.
//!
//! The region comes from `bedrock_key_config.region`, then `meta_config.region`, then
//! `AWS_REGION` / `AWS_DEFAULT_REGION`, then `us-east-1` (Bifrost's default).
//!
//! Signing is `aws-sigv4`'s (service `bedrock`); the signed headers are `host`, `x-amz-date`,
//! `content-type`, `accept` and, with temporary credentials, `x-amz-security-token`. Secrets
//! never reach a log or an error message: errors name the setting or variable instead.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::Value;

use crate::config::ResolvedKey;
use crate::schemas::BifrostError;

/// Where keys live in a key's `provider_config`.
pub const BEDROCK_KEY_CONFIG: &str = "bedrock_key_config";
/// Region used when neither the key nor the environment names one (Bifrost's default).
pub const DEFAULT_REGION: &str = "us-east-1";
/// The SigV4 service name of the Bedrock runtime.
const SERVICE: &str = "bedrock";

/// Bifrost's older provider-level settings (`meta_config`), read once at setup. Each value
/// may be `env.VAR`; an unset variable is kept as `Err(VAR)` and named when a request needs it.
#[derive(Clone, Default)]
pub struct MetaConfig {
    /// `secret_access_key`: makes each key's `value` an access key.
    pub secret_access_key: Option<Result<String, String>>,
    /// `session_token`, with the above.
    pub session_token: Option<Result<String, String>>,
    /// `region` for keys that name none.
    pub region: Option<Result<String, String>>,
}

/// Never prints the secret.
impl std::fmt::Debug for MetaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaConfig")
            .field("secret_access_key", &self.secret_access_key.is_some())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl MetaConfig {
    /// Reads `meta_config` (absent or not an object: nothing).
    pub fn from_value(v: Option<&Value>) -> Self {
        let get = |name: &str| {
            v.and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(crate::config::resolve_env)
        };
        Self {
            secret_access_key: get("secret_access_key"),
            session_token: get("session_token"),
            region: get("region"),
        }
    }
}

/// A `meta_config` value, or the error naming its unset variable.
fn meta_value(
    v: Option<&Result<String, String>>,
    name: &str,
) -> Result<Option<String>, BifrostError> {
    match v {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s.clone())),
        Some(Err(var)) => Err(BifrostError::gateway(
            500,
            "missing_credentials",
            format!("meta_config.{name}: environment variable {var} is not set"),
        )),
    }
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    /// A Bedrock API key.
    Bearer(String),
    /// IAM credentials, signed with SigV4.
    SigV4 {
        /// Access key id (not secret; it appears in the `Authorization` header).
        access_key: String,
        /// Secret access key.
        secret_key: String,
        /// Session token of temporary credentials.
        session_token: Option<String>,
    },
}

/// Never prints a secret.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::SigV4 { access_key, .. } => f
                .debug_struct("SigV4")
                .field("access_key", access_key)
                .finish_non_exhaustive(),
        }
    }
}

/// A request's credentials and region.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How to authenticate.
    pub auth: Auth,
    /// The AWS region (also picks the default endpoint).
    pub region: String,
}

/// A config string: `None` when absent or empty; an `env.VAR` left unresolved (the variable
/// is unset) is an error naming the setting and the variable, never a value.
fn setting(cfg: Option<&Value>, name: &str) -> Result<Option<String>, BifrostError> {
    let Some(v) = cfg.and_then(|c| c.get(name)) else {
        return Ok(None);
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => match s.strip_prefix("env.") {
            Some(var) => Err(BifrostError::gateway(
                500,
                "missing_credentials",
                format!("bedrock_key_config.{name}: environment variable {var} is not set"),
            )),
            None => Ok(Some(s.clone())),
        },
        _ => Err(BifrostError::gateway(
            500,
            "invalid_key_config",
            format!("bedrock_key_config.{name} must be a string"),
        )),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Resolves the credentials and region for `key` (or the environment without one).
///
/// # Errors
/// 500 naming the missing setting or variable when nothing usable is configured.
pub fn resolve(key: Option<&ResolvedKey>, meta: &MetaConfig) -> Result<Resolved, BifrostError> {
    let cfg = key.and_then(|k| k.provider_config.get(BEDROCK_KEY_CONFIG));
    let region = match setting(cfg, "region")? {
        Some(r) => r,
        None => meta_value(meta.region.as_ref(), "region")?
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
    };
    let access_key = setting(cfg, "access_key")?;
    let secret_key = setting(cfg, "secret_key")?;
    let auth = match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Auth::SigV4 {
            access_key,
            secret_key,
            session_token: setting(cfg, "session_token")?,
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err(BifrostError::gateway(
                500,
                "invalid_key_config",
                "bedrock_key_config needs both access_key and secret_key (or neither)",
            ));
        }
        (None, None) => match key.map(|k| k.value.as_str()).filter(|v| !v.is_empty()) {
            Some(value) => {
                match meta_value(meta.secret_access_key.as_ref(), "secret_access_key")? {
                    Some(secret_key) => Auth::SigV4 {
                        access_key: value.to_owned(),
                        secret_key,
                        session_token: meta_value(meta.session_token.as_ref(), "session_token")?,
                    },
                    None => Auth::Bearer(value.to_owned()),
                }
            }
            None => from_env()?,
        },
    };
    Ok(Resolved { auth, region })
}

/// The credentials the AWS SDKs read from the environment first.
fn from_env() -> Result<Auth, BifrostError> {
    if let Some(token) = env("AWS_BEARER_TOKEN_BEDROCK") {
        return Ok(Auth::Bearer(token));
    }
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key), Some(secret_key)) => Ok(Auth::SigV4 {
            access_key,
            secret_key,
            session_token: env("AWS_SESSION_TOKEN"),
        }),
        _ => Err(BifrostError::gateway(
            500,
            "missing_credentials",
            "no AWS credentials for bedrock: configure keys[].bedrock_key_config \
             (access_key, secret_key) or a Bedrock API key in keys[].value, or set \
             AWS_BEARER_TOKEN_BEDROCK or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )),
    }
}

/// A header value that no debug output shows.
fn sensitive(v: &str) -> Result<HeaderValue, BifrostError> {
    let mut value = HeaderValue::from_str(v).map_err(|_| {
        BifrostError::gateway(
            500,
            "invalid_api_key",
            "the bedrock credentials contain characters not allowed in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Adds the authentication of `POST url` with `body` to `headers`, which already hold
/// `content-type` and `accept` (both signed).
///
/// # Errors
/// 500 when the credentials cannot go into a header or signing fails.
pub fn authorize(
    resolved: &Resolved,
    url: &str,
    body: &[u8],
    headers: &mut HeaderMap,
    now: SystemTime,
) -> Result<(), BifrostError> {
    let (access_key, secret_key, session_token) = match &resolved.auth {
        Auth::Bearer(token) => {
            headers.insert(
                header::AUTHORIZATION,
                sensitive(&format!("Bearer {token}"))?,
            );
            return Ok(());
        }
        Auth::SigV4 {
            access_key,
            secret_key,
            session_token,
        } => (access_key, secret_key, session_token),
    };
    let failed = |what: &str| {
        BifrostError::gateway(
            500,
            "signing_failed",
            format!("cannot sign the bedrock request: {what}"),
        )
    };
    let signed: Vec<(&str, &str)> = [header::CONTENT_TYPE, header::ACCEPT]
        .iter()
        .filter_map(|name| {
            let v = headers.get(name)?.to_str().ok()?;
            Some((name.as_str(), v))
        })
        .collect();
    let identity = Credentials::new(
        access_key.clone(),
        secret_key.clone(),
        session_token.clone(),
        None,
        "bifrost-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&resolved.region)
        .name(SERVICE)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| failed("incomplete signing parameters"))?
        .into();
    let request = SignableRequest::new("POST", url, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| failed("the URL cannot be signed"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|_| failed("signature computation failed"))?
        .into_parts();
    let (out, _) = instructions.into_parts();
    for h in out {
        let name = HeaderName::from_static(h.name());
        let value = if h.sensitive() || name == header::AUTHORIZATION {
            sensitive(h.value())?
        } else {
            HeaderValue::from_str(h.value()).map_err(|_| failed("invalid header"))?
        };
        headers.insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(value: &str, cfg: Value) -> ResolvedKey {
        ResolvedKey {
            id: "k".into(),
            value: value.into(),
            models: Vec::new(),
            weight: 1.0,
            provider_config: [(BEDROCK_KEY_CONFIG.to_owned(), cfg)].into_iter().collect(),
        }
    }

    #[test]
    fn key_config_wins_then_value_as_bearer_then_meta_layout() {
        let k = key(
            "",
            json!({"access_key": "AKID", "secret_key": "s3cr3t", "session_token": "tok", "region": "eu-west-1"}),
        );
        let r = resolve(Some(&k), &MetaConfig::default()).unwrap();
        assert_eq!(r.region, "eu-west-1");
        assert!(
            matches!(&r.auth, Auth::SigV4 { access_key, session_token: Some(t), .. } if access_key == "AKID" && t == "tok")
        );
        assert!(!format!("{r:?}").contains("s3cr3t"));
        let k = key("ABSK-api-key", json!({"region": "us-west-2"}));
        let r = resolve(Some(&k), &MetaConfig::default()).unwrap();
        assert!(matches!(&r.auth, Auth::Bearer(t) if t == "ABSK-api-key"));
        assert!(!format!("{r:?}").contains("ABSK"));
        let meta = MetaConfig::from_value(Some(
            &json!({"secret_access_key": "old-secret", "region": "ap-south-1"}),
        ));
        let k = key("AKIDOLD", json!(null));
        let r = resolve(Some(&k), &meta).unwrap();
        assert!(!format!("{meta:?}").contains("old-secret"));
        assert_eq!(r.region, "ap-south-1");
        assert!(matches!(&r.auth, Auth::SigV4 { access_key, .. } if access_key == "AKIDOLD"));
    }

    #[test]
    fn unresolved_variables_and_half_keys_are_named_not_shown() {
        let k = key(
            "",
            json!({"access_key": "AKID", "secret_key": "env.BIFROST_TEST_UNSET_AWS_SECRET"}),
        );
        let e = resolve(Some(&k), &MetaConfig::default()).unwrap_err();
        assert!(
            e.error.message.contains(
                "bedrock_key_config.secret_key: environment variable BIFROST_TEST_UNSET_AWS_SECRET"
            ),
            "{e}"
        );
        let k = key("", json!({"access_key": "AKID"}));
        assert!(resolve(Some(&k), &MetaConfig::default()).is_err());
        let meta = MetaConfig::from_value(Some(
            &json!({"secret_access_key": "env.BIFROST_TEST_UNSET_AWS_SECRET"}),
        ));
        let e = resolve(Some(&key("AKIDOLD", json!(null))), &meta).unwrap_err();
        assert!(
            e.error
                .message
                .contains("meta_config.secret_access_key: environment variable"),
            "{e}"
        );
    }

    #[test]
    fn sigv4_headers_have_the_expected_shape() {
        let r = Resolved {
            auth: Auth::SigV4 {
                access_key: "AKIDEXAMPLE".into(),
                secret_key: "secret".into(),
                session_token: Some("token".into()),
            },
            region: "us-east-1".into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        authorize(
            &r,
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
            b"{}",
            &mut headers,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let auth = headers[header::AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, \
             SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        let sig = auth.rsplit("Signature=").next().unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(headers["x-amz-date"], "20231114T221320Z");
        assert_eq!(headers["x-amz-security-token"], "token");
        assert!(headers[header::AUTHORIZATION].is_sensitive());
    }
}
