//! The request-metadata policy: which inbound headers (HTTP headers or gRPC metadata, which
//! share names) become [`RequestContext`] fields, which are forwarded upstream, and which
//! become Prometheus labels.
//!
//! | header | effect |
//! |---|---|
//! | `x-request-id` | the request id (≤ 128 visible characters; otherwise one is generated) |
//! | `x-bf-eh-<name>` | `<name>` is sent upstream, except the names in [`FORWARD_DENY`] |
//! | `x-bf-send-back-raw-response` | `true`/`false` overrides the provider's setting |
//! | `x-bf-vk` | the caller's virtual key ([`RequestContext::virtual_key`]) |
//! | `x-bf-prom-<label>` | the value of the custom Prometheus label `<label>` (bounded) |
//! | everything | copied to [`RequestContext::headers`] when a plugin asks for them |

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};

use bifrost_core::RequestContext;
use bifrost_core::telemetry::OTHER;
use http::{HeaderMap, HeaderName, HeaderValue};
use metrics::{Label, SharedString};

/// The request id header, echoed on every answer.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Prefix of the headers forwarded upstream (Bifrost's "extra headers").
pub const FORWARD_PREFIX: &str = "x-bf-eh-";

/// Headers a caller may not forward with `x-bf-eh-`: credentials (the gateway chooses the
/// provider key; a caller's own would bypass it) and hop-by-hop or framing headers the
/// upstream client sets itself.
pub const FORWARD_DENY: &[&str] = &[
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "x-api-key",
    "x-goog-api-key",
    "x-bf-api-key",
    "x-bf-api-key-id",
    "x-bf-vk",
    "authorization",
];

/// The caller's `x-request-id` when it is usable (1–128 visible ASCII characters), else a
/// new random 32-hex-digit id.
///
/// The value is copied, not cloned: a clone would share the connection's read buffer
/// (hyper parses headers without copying) and keep it alive while the request is in flight.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.to_str().is_ok() => {
            HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone())
        }
        _ => new_request_id(),
    }
}

/// A random 32-hex-digit request id.
pub fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; 32];
    let n = fastrand::u128(..);
    for (i, b) in buf.iter_mut().enumerate() {
        let nibble = ((n >> (124 - 4 * i)) & 0xf) as u8;
        *b = if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        };
    }
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("0"))
}

/// What the policy copies into a [`RequestContext`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataPolicy {
    /// The transport's name for [`RequestContext::transport`] (`http`, `grpc`).
    pub transport: &'static str,
    /// Copy every inbound header into [`RequestContext::headers`] (a registered plugin
    /// declared it reads them; see `PluginNeeds::request_headers`). Off otherwise, so a
    /// request's headers are freed while the upstream answers.
    pub keep_headers: bool,
}

impl MetadataPolicy {
    /// The policy for `transport` in front of `engine`: headers are kept when one of its
    /// plugins needs them.
    pub fn for_engine(engine: &bifrost_core::Bifrost, transport: &'static str) -> Self {
        Self {
            transport,
            keep_headers: engine.plugin_needs().request_headers,
        }
    }

    /// The request context for a request with id `id` and these inbound headers.
    pub fn context(&self, id: &str, headers: &HeaderMap) -> RequestContext {
        let mut ctx = RequestContext::new(id);
        ctx.transport = self.transport;
        for (name, value) in headers {
            if let Some(fwd) = name.as_str().strip_prefix(FORWARD_PREFIX)
                && !FORWARD_DENY.contains(&fwd)
                && let Ok(v) = value.to_str()
            {
                ctx.extra_headers.push((fwd.to_owned(), v.to_owned()));
            }
        }
        if let Some(v) = headers
            .get("x-bf-send-back-raw-response")
            .and_then(|v| v.to_str().ok())
        {
            ctx.send_back_raw_response = Some(v.trim().eq_ignore_ascii_case("true"));
        }
        if let Some(vk) = headers.get("x-bf-vk").and_then(|v| v.to_str().ok())
            && !vk.is_empty()
        {
            ctx.virtual_key = Some(vk.to_owned());
        }
        if self.keep_headers {
            // Copies: the originals share the connection's read buffer.
            ctx.headers = headers
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), HeaderValue::from_bytes(v.as_bytes()).ok()?)))
                .collect();
        }
        ctx
    }
}

/// Distinct values one custom label takes (first come); later values report as `other`.
pub const MAX_CUSTOM_VALUES: usize = 64;
/// Longest custom label value kept as is; a longer one reports as `other`.
pub const MAX_CUSTOM_VALUE_BYTES: usize = 64;

/// One custom label: its name as a shareable label key, and the values it admitted.
struct CustomLabel {
    name: SharedString,
    values: HashSet<Arc<str>>,
}

/// Custom labels by name. Header values are the caller's choice, so each label keeps at most
/// [`MAX_CUSTOM_VALUES`] values of at most [`MAX_CUSTOM_VALUE_BYTES`]; the rest are `other`.
static CUSTOM: LazyLock<RwLock<HashMap<Box<str>, CustomLabel>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The caller's values of the custom Prometheus labels `names` (`x-bf-prom-<label>`
/// headers; an absent header is the empty value), bounded per label. A value seen before
/// costs a read lock and no allocation.
pub fn custom_labels(names: &[String], headers: &HeaderMap) -> Vec<Label> {
    names
        .iter()
        .map(|l| custom_label(l, prom_header(headers, l)))
        .collect()
}

/// The value of `x-bf-prom-<label>` ("" when absent), found without building the header name.
fn prom_header<'a>(headers: &'a HeaderMap, label: &str) -> &'a str {
    headers
        .iter()
        .find_map(|(k, v)| {
            let rest = k.as_str().strip_prefix("x-bf-prom-")?;
            rest.eq_ignore_ascii_case(label).then(|| v.to_str().ok())?
        })
        .unwrap_or("")
}

/// `label` = `value`, or `label` = `other` once the label's cap is full or `value` is long.
fn custom_label(label: &str, value: &str) -> Label {
    if let Ok(map) = CUSTOM.read()
        && let Some(c) = map.get(label)
    {
        if let Some(v) = c.values.get(value) {
            return Label::new(c.name.clone(), SharedString::from(Arc::clone(v)));
        }
        if value.len() > MAX_CUSTOM_VALUE_BYTES || c.values.len() >= MAX_CUSTOM_VALUES {
            return Label::new(c.name.clone(), SharedString::const_str(OTHER));
        }
    }
    let Ok(mut map) = CUSTOM.write() else {
        return Label::new(label.to_owned(), SharedString::const_str(OTHER));
    };
    let c = map.entry(label.into()).or_insert_with(|| CustomLabel {
        name: SharedString::from(Arc::<str>::from(label)),
        values: HashSet::new(),
    });
    let value = match c.values.get(value) {
        Some(v) => SharedString::from(Arc::clone(v)),
        None if value.len() > MAX_CUSTOM_VALUE_BYTES || c.values.len() >= MAX_CUSTOM_VALUES => {
            SharedString::const_str(OTHER)
        }
        None => {
            let v: Arc<str> = Arc::from(value);
            c.values.insert(Arc::clone(&v));
            SharedString::from(v)
        }
    };
    Label::new(c.name.clone(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_extra_headers_except_credentials() {
        let mut h = HeaderMap::new();
        h.insert("x-bf-eh-anthropic-beta", HeaderValue::from_static("tools"));
        h.insert(
            "x-bf-eh-authorization",
            HeaderValue::from_static("Bearer x"),
        );
        h.insert("x-bf-eh-x-api-key", HeaderValue::from_static("k"));
        h.insert(
            "x-bf-send-back-raw-response",
            HeaderValue::from_static("TRUE"),
        );
        h.insert("authorization", HeaderValue::from_static("Bearer sk"));
        let ctx = MetadataPolicy::default().context("id-1", &h);
        assert_eq!(ctx.request_id, "id-1");
        assert_eq!(
            ctx.extra_headers,
            vec![("anthropic-beta".to_owned(), "tools".to_owned())]
        );
        assert_eq!(ctx.send_back_raw_response, Some(true));
        assert!(ctx.headers.is_empty(), "headers are kept only on request");
        h.insert("x-bf-vk", HeaderValue::from_static("vk-team"));
        let policy = MetadataPolicy {
            transport: "grpc",
            keep_headers: true,
        };
        let ctx = policy.context("id-1", &h);
        assert_eq!(ctx.headers["authorization"], "Bearer sk");
        assert_eq!(ctx.virtual_key.as_deref(), Some("vk-team"));
        assert_eq!(ctx.transport, "grpc");
    }

    #[test]
    fn request_ids_are_taken_when_usable_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc"));
        assert_eq!(request_id(&h), "abc");
        h.insert(
            X_REQUEST_ID,
            HeaderValue::from_str(&"x".repeat(129)).unwrap(),
        );
        assert_eq!(request_id(&h).len(), 32);
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn custom_label_values_are_bounded() {
        let label = "test_bounded_team";
        let value = |v: &str| custom_label(label, v).value().to_owned();
        assert_eq!(value("core"), "core");
        for i in 0..(2 * MAX_CUSTOM_VALUES) {
            let _ = value(&format!("t{i}"));
        }
        let distinct: HashSet<String> = (0..(2 * MAX_CUSTOM_VALUES))
            .map(|i| value(&format!("t{i}")))
            .collect();
        assert!(
            distinct.len() <= MAX_CUSTOM_VALUES + 1,
            "{}",
            distinct.len()
        );
        assert!(distinct.contains(OTHER));
        assert_eq!(value("core"), "core", "a value seen before keeps its label");
        assert_eq!(value(&"x".repeat(MAX_CUSTOM_VALUE_BYTES + 1)), OTHER);
        assert_eq!(custom_label(label, "core").key(), label);
    }

    #[test]
    fn custom_label_headers_are_found_without_building_their_names() {
        let mut h = HeaderMap::new();
        h.insert("x-bf-prom-team", HeaderValue::from_static("core"));
        h.insert("x-bf-prom-env", HeaderValue::from_static("prod"));
        assert_eq!(prom_header(&h, "team"), "core");
        assert_eq!(prom_header(&h, "Env"), "prod");
        assert_eq!(prom_header(&h, "region"), "");
    }
}
