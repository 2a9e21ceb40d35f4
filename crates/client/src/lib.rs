//! `sluice-client` is a small Kinesis client speaking JSON 1.1 over HTTP/1.1, for the sluice
//! CLI and load generator. It works against any Kinesis-compatible endpoint; with credentials
//! it signs requests with SigV4.
//!
//! The main types: [`Client`] (one endpoint, pooled connections), [`SigningKey`] and
//! [`ClientError`] (transport trouble, or an AWS error with its type and message);
//! [`Client::subscribe_to_shard`] opens an enhanced fan-out [`Subscription`] over HTTP/2.

mod events;
pub use events::{Subscription, SubscriptionEvent};

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint {0}")]
    Endpoint(String),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("{type_name}: {message} (HTTP {status})")]
    Api {
        status: u16,
        type_name: String,
        message: String,
    },
    #[error("unreadable response: {0}")]
    Decode(String),
}

impl ClientError {
    /// The AWS error type, if the service answered with one.
    pub fn aws_type(&self) -> Option<&str> {
        match self {
            ClientError::Api { type_name, .. } => Some(type_name),
            _ => None,
        }
    }
}

/// Credentials for SigV4 signing.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl SigningKey {
    /// From `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, if set.
    pub fn from_env() -> Option<SigningKey> {
        Some(SigningKey {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok()?,
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok()?,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
        })
    }
}

#[derive(Clone)]
pub struct Client {
    endpoint: http::Uri,
    host: String,
    region: String,
    key: Option<SigningKey>,
    /// The `X-Amz-Target` prefix before `.<Operation>` and the SigV4 signing name.
    service: (&'static str, &'static str),
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    /// HTTP/2 with prior knowledge, for SubscribeToShard.
    http2: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint` (`http://host:port`); `key` signs requests when given.
    pub fn new(
        endpoint: &str,
        region: &str,
        key: Option<SigningKey>,
    ) -> Result<Client, ClientError> {
        let endpoint: http::Uri = endpoint
            .parse()
            .map_err(|_| ClientError::Endpoint(endpoint.to_string()))?;
        if endpoint.scheme_str() != Some("http") {
            return Err(ClientError::Endpoint(format!(
                "{endpoint}: only http:// endpoints are supported by this client"
            )));
        }
        let host = endpoint
            .authority()
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_string()))?
            .to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector.clone());
        let http2 = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        Ok(Client {
            endpoint,
            host,
            region: region.to_string(),
            key,
            service: KINESIS,
            http,
            http2,
        })
    }

    /// The same endpoint and connections, calling another AWS JSON 1.1 service: `target_prefix`
    /// before `.<Operation>` in `X-Amz-Target` (`Firehose_20150804`), `signing_name` in the
    /// SigV4 credential scope (`firehose`).
    pub fn with_service(&self, target_prefix: &'static str, signing_name: &'static str) -> Client {
        Client {
            service: (target_prefix, signing_name),
            ..self.clone()
        }
    }

    /// Calls `operation` with a JSON body and returns the parsed JSON answer (`null` for an
    /// empty one).
    pub async fn call(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let bytes = self
            .call_raw(operation, body.to_string().into_bytes())
            .await?;
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Calls `operation` with a body already encoded as JSON; returns the raw answer.
    pub async fn call_raw(&self, operation: &str, body: Vec<u8>) -> Result<Bytes, ClientError> {
        let res = self.send(false, operation, body).await?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        Err(api_error(status, &bytes))
    }

    /// GETs `path` (e.g. `/metrics`) of the endpoint, unsigned, and returns the body as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let uri = format!("{}{path}", self.endpoint.to_string().trim_end_matches('/'));
        let req = http::Request::get(uri)
            .header("host", &self.host)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let res = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn send(
        &self,
        h2: bool,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let http = if h2 { &self.http2 } else { &self.http };
        let (prefix, signing_name) = self.service;
        let target = format!("{prefix}.{operation}");
        let mut req = http::Request::post(self.endpoint.clone())
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target);
        if !h2 {
            // HTTP/2 carries the host as :authority, taken from the URI.
            req = req.header("host", &self.host);
        }
        if let Some(key) = &self.key {
            let scope = Scope {
                region: &self.region,
                service: signing_name,
            };
            for (k, v) in sign(key, scope, &self.host, &target, &body, now_ms()) {
                req = req.header(k, v);
            }
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        http.request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }
}

/// The AWS error in an error response's body.
pub(crate) fn api_error(status: http::StatusCode, bytes: &[u8]) -> ClientError {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null);
    let type_name = v["__type"].as_str().unwrap_or("UnknownError");
    let type_name = type_name
        .rsplit('#')
        .next()
        .unwrap_or(type_name)
        .to_string();
    let message = v["message"]
        .as_str()
        .or(v["Message"].as_str())
        .unwrap_or("")
        .to_string();
    ClientError::Api {
        status: status.as_u16(),
        type_name,
        message,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn amz_date(ms: i64) -> (String, String) {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let tod = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}{m:02}{d:02}");
    (
        format!(
            "{date}T{:02}{:02}{:02}Z",
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        ),
        date,
    )
}

/// Kinesis: the target prefix and signing name of [`Client::new`].
const KINESIS: (&str, &str) = ("Kinesis_20131202", "kinesis");

/// The region and service of a SigV4 credential scope.
#[derive(Clone, Copy)]
struct Scope<'a> {
    region: &'a str,
    service: &'a str,
}

/// The SigV4 headers for an AWS JSON 1.1 POST to `/`.
fn sign(
    key: &SigningKey,
    scope_of: Scope<'_>,
    host: &str,
    target: &str,
    body: &[u8],
    now_ms: i64,
) -> Vec<(&'static str, String)> {
    let (amz, date) = amz_date(now_ms);
    let payload = hex::encode(Sha256::digest(body));
    let mut headers = vec![
        ("content-type", CONTENT_TYPE.to_string()),
        ("host", host.to_string()),
        ("x-amz-date", amz.clone()),
    ];
    if let Some(t) = &key.session_token {
        headers.push(("x-amz-security-token", t.clone()));
    }
    headers.push(("x-amz-target", target.to_string()));
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let signed = signed.join(";");
    let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed}\n{payload}");
    let Scope { region, service } = scope_of;
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let time = UNIX_EPOCH + std::time::Duration::from_millis(now_ms as u64);
    let signing_key =
        aws_sigv4::sign::v4::generate_signing_key(&key.secret_access_key, time, region, service);
    let signature =
        aws_sigv4::sign::v4::calculate_signature(signing_key.as_ref(), to_sign.as_bytes());
    let mut out = vec![
        ("authorization", format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}", key.access_key_id)),
        ("x-amz-date", amz),
    ];
    if let Some(t) = &key.session_token {
        out.push(("x-amz-security-token", t.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_format() {
        assert_eq!(
            amz_date(1_440_938_160_000),
            ("20150830T123600Z".to_string(), "20150830".to_string())
        );
    }
}
