//! One port for every service. The [`Gateway`] reads each request once and sends it on:
//! by `X-Amz-Target` prefix to an AWS JSON service ([`JsonService`]: Kinesis, later Firehose),
//! by path prefix to a REST service (an axum [`Router`]: later Lambda under `/2015-03-31/`),
//! and anything else to the fallback REST service (later path-style S3) or AWS's answer for a
//! request no service claims. CORS, request ids and the body limit apply to all of them.
//!
//! [`serve`] runs one accept loop for the plain listener (HTTP/1.1 and HTTP/2 with prior
//! knowledge) and the TLS one (ALPN `h2` / `http/1.1`), each bounded in open connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tower::ServiceExt;

use crate::auth::{Caller, Credentials};
use crate::codec;
use crate::cors::Cors;
use crate::error::ApiError;
use crate::value::{Format, Input};

/// A boxed future an operation returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an operation answers: nothing (an empty 200), a structure, or an event stream.
#[derive(Debug)]
pub enum Reply {
    Empty,
    Body(crate::value::Out),
    /// An event stream (`application/vnd.amazon.eventstream`): messages sent as they come.
    Events(Body),
    /// A body the service encoded itself, in the request's format (a hot path's answer,
    /// written without a response tree).
    Encoded(Vec<u8>),
}

/// One request to a JSON service, after the gateway has read, decoded and verified it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The operation: the part of `X-Amz-Target` after the service's prefix.
    pub op: &'a str,
    pub input: Input<'a>,
    pub caller: &'a Caller,
    pub request_id: &'a str,
}

/// An AWS JSON 1.1 / CBOR 1.1 service (`POST /`, `X-Amz-Target: <prefix><Operation>`).
pub trait JsonService: Send + Sync + 'static {
    /// The target prefix with its dot, e.g. `Kinesis_20131202.`.
    fn target_prefix(&self) -> &'static str;
    /// The SigV4 signing name the credential scope must carry, e.g. `kinesis`.
    fn signing_name(&self) -> &'static str;
    /// Every operation of the service's API model: a target naming another operation is
    /// UnknownOperationException before anything else is looked at.
    fn operations(&self) -> &'static [&'static str];
    /// Runs one operation.
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, ApiError>>;
    /// A faster decoder for a hot operation. It returns `None` to let the generic path decode
    /// the body; otherwise the operation, already decoded, to run once the signature is
    /// verified. Both paths must produce the same outcome for every body.
    fn fast<'a>(
        &'a self,
        _op: &str,
        _format: Format,
        _body: &Bytes,
    ) -> Option<BoxFuture<'a, Result<Reply, ApiError>>> {
        None
    }
}

/// Milliseconds since the epoch, as the services' clock tells it (tests control it).
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Builds the router that serves every service on one port.
pub struct Gateway {
    json: Vec<Arc<dyn JsonService>>,
    rest: Vec<(&'static str, Router)>,
    fallback: Option<Router>,
    routes: Router,
    credentials: Credentials,
    cors: Cors,
    body_bytes_max: usize,
    now_ms: NowMs,
}

struct Shared {
    json: Vec<Arc<dyn JsonService>>,
    rest: Vec<(&'static str, Router)>,
    fallback: Option<Router>,
    credentials: Credentials,
    body_bytes_max: usize,
    now_ms: NowMs,
}

impl Gateway {
    pub fn new(credentials: Credentials, now_ms: NowMs) -> Gateway {
        Gateway {
            json: Vec::new(),
            rest: Vec::new(),
            fallback: None,
            routes: Router::new(),
            credentials,
            cors: Cors::default(),
            body_bytes_max: crate::limits::REQUEST_BODY_BYTES_MAX,
            now_ms,
        }
    }

    /// Adds a JSON service, dispatched by its target prefix.
    pub fn json(mut self, service: Arc<dyn JsonService>) -> Gateway {
        self.json.push(service);
        self
    }

    /// Adds a REST service for every path under `prefix` (e.g. `/2015-03-31/`).
    pub fn rest(mut self, prefix: &'static str, router: Router) -> Gateway {
        self.rest.push((prefix, router));
        self
    }

    /// The REST service for requests no other service claims (path-style S3).
    pub fn fallback(mut self, router: Router) -> Gateway {
        self.fallback = Some(router);
        self
    }

    /// Plain routes of sluice's own (`/health`, `/metrics`), matched before the services.
    pub fn routes(mut self, routes: Router) -> Gateway {
        self.routes = self.routes.merge(routes);
        self
    }

    pub fn cors(mut self, cors: Cors) -> Gateway {
        self.cors = cors;
        self
    }

    /// The largest request body any service takes (413 past it).
    pub fn body_bytes_max(mut self, n: usize) -> Gateway {
        self.body_bytes_max = n;
        self
    }

    pub fn into_router(self) -> Router {
        let shared = Arc::new(Shared {
            json: self.json,
            rest: self.rest,
            fallback: self.fallback,
            credentials: self.credentials,
            body_bytes_max: self.body_bytes_max,
            now_ms: self.now_ms,
        });
        let services = Router::new().fallback(dispatch).with_state(shared);
        self.routes
            .fallback_service(services)
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(self.cors),
                crate::cors::layer,
            ))
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A request id shaped like AWS's (a UUID), unique within the process.
pub fn request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u64;
    let pid = std::process::id() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t & 0xfff),
        pid & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// `x-amz-id-2`: an opaque extended request id, 48 bytes in base64 as AWS sends it, derived
/// from the request id (no lookups depend on it).
fn extended_request_id(request_id: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(request_id.as_bytes());
    let b = Sha256::digest(a);
    let mut bytes = [0u8; 48];
    bytes[..32].copy_from_slice(&a);
    bytes[32..].copy_from_slice(&b[..16]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn respond(
    status: StatusCode,
    format: Format,
    body: Body,
    request_id: &str,
    error_type: Option<&'static str>,
) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(codec::content_type(format)),
    );
    h.insert("x-amzn-RequestId", header_value(request_id));
    h.insert("x-amz-id-2", header_value(&extended_request_id(request_id)));
    if let Some(t) = error_type {
        h.insert("x-amzn-ErrorType", HeaderValue::from_static(t));
    }
    r
}

fn error_response(e: &ApiError, format: Format, request_id: &str) -> Response {
    respond(
        e.status,
        format,
        Body::from(codec::encode_error(e, format)),
        request_id,
        Some(e.type_name()),
    )
}

fn reply_response(reply: Result<Reply, ApiError>, format: Format, request_id: &str) -> Response {
    match reply {
        Ok(Reply::Empty) => respond(StatusCode::OK, format, Body::empty(), request_id, None),
        Ok(Reply::Body(out)) => respond(
            StatusCode::OK,
            format,
            Body::from(codec::encode(&out, format)),
            request_id,
            None,
        ),
        Ok(Reply::Encoded(bytes)) => {
            respond(StatusCode::OK, format, Body::from(bytes), request_id, None)
        }
        Ok(Reply::Events(body)) => {
            let mut r = respond(StatusCode::OK, format, body, request_id, None);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
            r
        }
        Err(e) => error_response(&e, format, request_id),
    }
}

fn xml(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

const NO_OPERATION: &str = "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n";

fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

async fn dispatch(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    // HTTP/2 carries the host as :authority; signatures cover it as `host`.
    if !req.headers().contains_key(http::header::HOST) {
        if let Some(a) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(http::header::HOST, a);
        }
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if target.is_none() {
        let path = req.uri().path();
        if let Some((_, router)) = shared.rest.iter().find(|(p, _)| path.starts_with(p)) {
            return forward(router.clone(), req).await;
        }
        if let Some(router) = &shared.fallback {
            return forward(router.clone(), req).await;
        }
    }
    // REST services bound their own bodies (S3 streams objects far past this limit). A JSON
    // request that announces a body over the limit is answered 413 at once, without reading it.
    if announced_length(req.headers()).is_some_and(|n| n > shared.body_bytes_max as u64) {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let service = target.as_deref().and_then(|t| {
        shared
            .json
            .iter()
            .find(|s| t.starts_with(s.target_prefix()))
    });
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, shared.body_bytes_max).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let op = match (service, target.as_deref()) {
        (Some(s), Some(t)) => t
            .strip_prefix(s.target_prefix())
            .filter(|op| s.operations().contains(op)),
        _ => None,
    };
    let request_id = request_id();
    let response = REQUEST_ID
        .scope(
            request_id.clone(),
            handle_json(
                &shared,
                service.map(|s| s.as_ref()),
                op,
                target.is_some(),
                &parts,
                body,
                &request_id,
            ),
        )
        .await;
    let status = response.status();
    count_request(service.map(|s| s.as_ref()), op, status);
    if status.is_success() {
        tracing::debug!(request_id, target = target.as_deref().unwrap_or("-"), %status, "request");
    } else {
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(request_id, target = target.as_deref().unwrap_or("-"), %status, error_type, "request failed");
    }
    response
}

tokio::task_local! {
    /// The id of the request the current task is answering.
    static REQUEST_ID: String;
}

/// The id of the request the current task is answering, for log lines deep inside a service
/// (an internal error's cause): `None` outside one (a subscription's producer task, say).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(String::clone).ok()
}

/// `sluice_requests_total{service, operation, status}`: every request to a JSON service, by
/// signing name, operation (`-` when the target names none) and status class. Every label
/// value is static, so the series are bounded by the services' operation lists.
fn count_request(service: Option<&dyn JsonService>, op: Option<&str>, status: StatusCode) {
    let (service, operation) = match service {
        Some(s) => (
            s.signing_name(),
            op.and_then(|op| s.operations().iter().copied().find(|o| *o == op))
                .unwrap_or("-"),
        ),
        None => ("-", "-"),
    };
    let class = match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("sluice_requests_total", "service" => service, "operation" => operation, "status" => class)
        .increment(1);
}

async fn forward(router: Router, req: Request) -> Response {
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

async fn handle_json(
    shared: &Shared,
    service: Option<&dyn JsonService>,
    op: Option<&str>,
    has_target: bool,
    parts: &http::request::Parts,
    body: Bytes,
    request_id: &str,
) -> Response {
    if parts.method != Method::POST {
        return xml(StatusCode::FORBIDDEN, NO_OPERATION);
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = match codec::format_of(content_type) {
        Some(f) => f,
        None if !has_target => return xml(StatusCode::FORBIDDEN, NO_OPERATION),
        None => return xml(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n"),
    };
    let verify = |signing_name: &str| {
        shared.credentials.verify(
            signing_name,
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
            &body,
            (shared.now_ms)(),
        )
    };
    if let (Some(service), Some(op)) = (service, op) {
        if let Some(run) = service.fast(op, format, &body) {
            if let Err(e) = verify(service.signing_name()) {
                return error_response(&e, format, request_id);
            }
            return reply_response(run.await, format, request_id);
        }
    }
    if body.is_empty() {
        let e = if op.is_some() {
            ApiError::serialization_bare()
        } else {
            ApiError::unknown_operation()
        };
        return error_response(&e, format, request_id);
    }
    let value = match codec::decode(&body, format) {
        Ok(v) => v,
        Err(e) => return error_response(&e, format, request_id),
    };
    let (Some(service), Some(op)) = (service, op) else {
        return error_response(&ApiError::unknown_operation(), format, request_id);
    };
    let caller = match verify(service.signing_name()) {
        Ok(c) => c,
        Err(e) => return error_response(&e, format, request_id),
    };
    let input = match Input::root(&value, format) {
        Ok(i) => i,
        Err(e) => return error_response(&e, format, request_id),
    };
    let call = Call {
        op,
        input,
        caller: &caller,
        request_id,
    };
    reply_response(service.call(call).await, format, request_id)
}

/// Limits of a listener. (De)serializes as the `[listener]` section of sluice's configuration
/// (the same limits for the plain and the TLS listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Connections open at once; further clients wait in the kernel's accept backlog.
    /// Default 10000.
    pub connections_max: usize,
    /// A TLS handshake that takes longer, in milliseconds, is dropped. Default 10000.
    pub handshake_timeout_ms: u64,
    /// At shutdown, connections still busy after this long, in milliseconds, are dropped.
    /// Default 10000.
    pub shutdown_grace_ms: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            connections_max: 10_000,
            handshake_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// Serves `router` on `listener` (plain: HTTP/1.1 and HTTP/2 with prior knowledge; with `tls`:
/// the protocol ALPN chose) until `shutdown` completes, then lets in-flight requests finish
/// for at most [`ListenerLimits::shutdown_grace_ms`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections_max.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small writes (acknowledgements, pushed events) go out at once, not after Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let mut stop = stop_rx.clone();
        let handshake = Duration::from_millis(limits.handshake_timeout_ms);
        tokio::spawn(async move {
            let _permit = permit;
            let builder = Builder::new(TokioExecutor::new());
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let stream = tokio::select! {
                        r = tokio::time::timeout(handshake, acceptor.accept(tcp)) => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    let _ = stop_tx.send(true);
    drop(listener);
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after the shutdown grace period were dropped");
    }
    Ok(())
}

/// Loads a PEM certificate chain and private key into a TLS configuration that offers HTTP/2
/// and HTTP/1.1 by ALPN.
pub fn tls_config(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("reading {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
