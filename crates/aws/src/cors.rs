//! CORS for producers in a web page (the AWS SDK for JavaScript in a browser): a preflight
//! `OPTIONS` is answered with the allowed methods and headers, and every answer to a request
//! that carries `Origin` (errors included) gets `Access-Control-Allow-Origin` and exposes the
//! request-id headers. Requests without `Origin` (every SDK outside a browser) are untouched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Which origins may call sluice from a browser. (De)serializes as the `[cors]` section of
/// sluice's configuration; check it with [`Cors::validate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    /// The exact origins (`scheme://host[:port]`) allowed, or `"*"` for any (echoed back, with
    /// `Vary: Origin`). Empty, the default (for local use): any origin, answered with `*`.
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds. Default 86400 (one day).
    pub max_age_secs: u64,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            allowed_origins: Vec::new(),
            max_age_secs: 86_400,
        }
    }
}

const ALLOW_METHODS: &str = "GET, PUT, POST, DELETE, HEAD, OPTIONS";
/// Headers the browser may read from an answer.
const EXPOSE_HEADERS: &str =
    "x-amzn-RequestId, x-amzn-ErrorType, x-amz-id-2, x-amz-request-id, x-amz-function-error, x-amz-log-result, x-amz-executed-version, ETag, Content-Length, Content-Range, Date";

/// A request header a browser may send: the `x-amz-*` and SDK headers, signing and content
/// headers.
fn header_allowed(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n.starts_with("x-amz-")
        || n.starts_with("x-amzn-")
        || n.starts_with("amz-sdk-")
        || matches!(
            n.as_str(),
            "authorization"
                | "content-type"
                | "content-encoding"
                | "content-md5"
                | "content-length"
                | "cache-control"
                | "range"
                | "expires"
                | "if-match"
                | "if-none-match"
                | "if-modified-since"
                | "if-unmodified-since"
        )
}

impl Cors {
    /// Every entry of `allowed_origins` must be a bare origin, `http(s)://host[:port]` without
    /// a path (a browser's `Origin` never has one, so such an entry would never match), or
    /// `"*"`. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        for o in &self.allowed_origins {
            let host = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            if o != "*" && !host.is_some_and(|h| !h.is_empty() && !h.contains('/')) {
                return Err(format!("allowed_origins: {o:?} is not an origin like \"http://localhost:3000\" (scheme://host[:port], no path) or \"*\""));
            }
        }
        Ok(())
    }

    /// With no list, any origin may call.
    fn any_origin(&self) -> bool {
        self.allowed_origins.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.any_origin()
            || self
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin() {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    fn preflight(&self, origin: &HeaderValue, headers: &HeaderMap) -> Response {
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", self.allow_origin(origin));
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static(ALLOW_METHODS),
        );
        let requested = headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let allowed: Vec<&str> = requested
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty() && header_allowed(n))
            .collect();
        if !allowed.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                h.insert("access-control-allow-headers", v);
            }
        }
        h.insert(
            "access-control-max-age",
            HeaderValue::from(self.max_age_secs),
        );
        if !self.any_origin() {
            h.insert("vary", HeaderValue::from_static("Origin"));
        }
        r
    }
}

/// The middleware: preflights answered here, other answers decorated.
pub async fn layer(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(http::header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().map(|o| cors.allows(o)).unwrap_or(false);
    let is_preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method");
    if is_preflight {
        if !allowed {
            return (StatusCode::FORBIDDEN, "CORS origin not allowed\n").into_response();
        }
        return cors.preflight(&origin, req.headers());
    }
    let mut r = next.run(req).await;
    if allowed {
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", cors.allow_origin(&origin));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        if !cors.any_origin() {
            h.insert("vary", HeaderValue::from_static("Origin"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_headers() {
        for h in [
            "x-amz-target",
            "X-Amz-Date",
            "authorization",
            "amz-sdk-invocation-id",
            "content-type",
            "x-amz-user-agent",
        ] {
            assert!(header_allowed(h), "{h}");
        }
        assert!(!header_allowed("cookie"));
        assert!(!header_allowed("x-forwarded-for"));
    }

    #[test]
    fn origins() {
        let any = Cors::default();
        assert!(any.allows("http://example.com"));
        let some = Cors {
            allowed_origins: vec!["http://localhost:3000".into()],
            ..Cors::default()
        };
        assert!(some.allows("http://localhost:3000"));
        assert!(!some.allows("http://evil.example"));
    }

    #[test]
    fn validate_wants_bare_origins() {
        let with = |origins: &[&str]| Cors {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..Cors::default()
        };
        Cors::default().validate().unwrap();
        with(&["http://a.test:8080", "https://b.test", "*"])
            .validate()
            .unwrap();
        for bad in [
            "http://localhost:3000/",
            "localhost:3000",
            "http://",
            "ftp://a.test",
        ] {
            let e = with(&[bad]).validate().unwrap_err();
            assert!(e.starts_with("allowed_origins: "), "{e}");
        }
    }
}
