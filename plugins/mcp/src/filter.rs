//! Per-request filters from Bifrost's headers: `x-bf-mcp-include-clients`,
//! `x-bf-mcp-exclude-clients`, `x-bf-mcp-include-tools`, `x-bf-mcp-exclude-tools`.
//!
//! Values are comma lists. Clients are named as configured. Tools are written
//! `<client>-<tool>` (Bifrost's current form, also the name the model sees), `<client>/<tool>`,
//! `<client>-*` / `<client>/*` for every tool of a client, `*`, or a bare `<tool>` (Bifrost
//! v1.x) for that tool on any client. An include header that is present but empty allows
//! nothing, as in Bifrost; exclusions win over inclusions.

use http::HeaderMap;

/// Header: only tools of these clients.
pub const INCLUDE_CLIENTS: &str = "x-bf-mcp-include-clients";
/// Header: no tools of these clients.
pub const EXCLUDE_CLIENTS: &str = "x-bf-mcp-exclude-clients";
/// Header: only these tools.
pub const INCLUDE_TOOLS: &str = "x-bf-mcp-include-tools";
/// Header: not these tools.
pub const EXCLUDE_TOOLS: &str = "x-bf-mcp-exclude-tools";

/// The filters of one request; the default allows every tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    include_clients: Option<Vec<String>>,
    exclude_clients: Vec<String>,
    include_tools: Option<Vec<String>>,
    exclude_tools: Vec<String>,
}

fn list(headers: &HeaderMap, name: &str) -> Option<Vec<String>> {
    let mut out: Option<Vec<String>> = None;
    for v in headers.get_all(name) {
        let items = out.get_or_insert_with(Vec::new);
        let s = String::from_utf8_lossy(v.as_bytes());
        items.extend(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    out
}

impl RequestFilter {
    /// The filters the caller's headers ask for.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            include_clients: list(headers, INCLUDE_CLIENTS),
            exclude_clients: list(headers, EXCLUDE_CLIENTS).unwrap_or_default(),
            include_tools: list(headers, INCLUDE_TOOLS),
            exclude_tools: list(headers, EXCLUDE_TOOLS).unwrap_or_default(),
        }
    }

    /// Whether tool `tool` of client `client` may be offered to this request.
    pub fn allows(&self, client: &str, tool: &str) -> bool {
        if self.exclude_clients.iter().any(|c| c == client) {
            return false;
        }
        if let Some(inc) = &self.include_clients
            && !inc.iter().any(|c| c == client)
        {
            return false;
        }
        if self.exclude_tools.iter().any(|p| matches(p, client, tool)) {
            return false;
        }
        match &self.include_tools {
            Some(inc) => inc.iter().any(|p| matches(p, client, tool)),
            None => true,
        }
    }
}

fn matches(pattern: &str, client: &str, tool: &str) -> bool {
    if pattern == "*" || pattern == tool {
        return true;
    }
    for sep in ['-', '/'] {
        if let Some(rest) = pattern
            .strip_prefix(client)
            .and_then(|r| r.strip_prefix(sep))
            && (rest == "*" || rest == tool)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn no_headers_allow_everything() {
        let f = RequestFilter::from_headers(&HeaderMap::new());
        assert!(f.allows("fs", "read"));
    }

    #[test]
    fn clients_are_included_and_excluded() {
        let f = RequestFilter::from_headers(&headers(&[(INCLUDE_CLIENTS, "fs, web")]));
        assert!(f.allows("fs", "read") && f.allows("web", "get"));
        assert!(!f.allows("db", "q"));
        let f = RequestFilter::from_headers(&headers(&[
            (INCLUDE_CLIENTS, "fs,web"),
            (EXCLUDE_CLIENTS, "web"),
        ]));
        assert!(f.allows("fs", "read") && !f.allows("web", "get"));
    }

    #[test]
    fn tool_patterns_take_every_form() {
        let f = RequestFilter::from_headers(&headers(&[(INCLUDE_TOOLS, "fs-read,web/*,echo")]));
        assert!(f.allows("fs", "read"));
        assert!(!f.allows("fs", "write"));
        assert!(f.allows("web", "anything"));
        assert!(
            f.allows("other", "echo"),
            "a bare name matches on any client"
        );
        let f = RequestFilter::from_headers(&headers(&[(EXCLUDE_TOOLS, "fs-*")]));
        assert!(!f.allows("fs", "read") && f.allows("web", "get"));
        // A client named like another's prefix does not match it.
        let f = RequestFilter::from_headers(&headers(&[(INCLUDE_TOOLS, "f-*")]));
        assert!(!f.allows("fs", "read"));
    }

    #[test]
    fn empty_include_allows_nothing() {
        let f = RequestFilter::from_headers(&headers(&[(INCLUDE_TOOLS, "")]));
        assert!(!f.allows("fs", "read"));
        let f = RequestFilter::from_headers(&headers(&[(INCLUDE_CLIENTS, "")]));
        assert!(!f.allows("fs", "read"));
    }
}
