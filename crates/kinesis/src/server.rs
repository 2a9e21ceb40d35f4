//! The HTTP face of the service: one POST endpoint that reads `X-Amz-Target`, the body format
//! and the signature, then dispatches to [`Service`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use crate::codec;
use crate::error::ApiError;
use crate::limits::REQUEST_BODY_BYTES_MAX;
use crate::ops::{Reply, Service, OPERATIONS};
use crate::value::{Format, Input};

const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// The router: the Kinesis API on `POST /` (any path, as AWS), and `GET /health`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .fallback(handle)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(service)
}

/// A request that announces a body over the limit is answered 413 at once, without reading it
/// (the body limit alone would first read up to the limit, then refuse).
async fn refuse_oversized(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > REQUEST_BODY_BYTES_MAX as u64) {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    next.run(req).await
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A request id shaped like AWS's (a UUID), unique within the process.
fn request_id() -> String {
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

fn respond(
    status: StatusCode,
    format: Format,
    body: Vec<u8>,
    error_type: Option<&str>,
) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(codec::content_type(format)),
    );
    h.insert(
        "x-amzn-RequestId",
        HeaderValue::from_str(&request_id()).expect("ascii"),
    );
    if let Some(t) = error_type {
        h.insert("x-amzn-ErrorType", HeaderValue::from_str(t).expect("ascii"));
    }
    r
}

fn error_response(e: &ApiError, format: Format) -> Response {
    respond(
        e.status,
        format,
        codec::encode_error(e, format),
        Some(e.type_name),
    )
}

fn reply_response(reply: Result<Reply, ApiError>, format: Format) -> Response {
    match reply {
        Ok(Reply::Empty) => respond(StatusCode::OK, format, Vec::new(), None),
        Ok(Reply::Body(out)) => respond(StatusCode::OK, format, codec::encode(&out, format), None),
        Ok(Reply::Events(body)) => {
            let mut r = respond(StatusCode::OK, format, Vec::new(), None);
            *r.body_mut() = Body::new(body);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
            r
        }
        Err(e) => error_response(&e, format),
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

async fn handle(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    // HTTP/2 carries the host as :authority; signatures cover it as `host`.
    if !headers.contains_key(http::header::HOST) {
        if let Some(a) = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(http::header::HOST, a);
        }
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let op = target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .filter(|op| OPERATIONS.contains(op));
    if method != Method::POST {
        return xml(
            StatusCode::FORBIDDEN,
            "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
        );
    }
    let format = match codec::format_of(headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())) {
        Some(f) => f,
        None if target.is_none() => {
            return xml(
                StatusCode::FORBIDDEN,
                "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
            )
        }
        None => return xml(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n"),
    };
    let verify = || {
        let now_ms = service.streams.now_ms();
        service.credentials.verify(
            method.as_str(),
            uri.path(),
            uri.query(),
            &headers,
            &body,
            now_ms,
        )
    };
    // The hot path: a well-formed JSON PutRecords skips the generic request tree.
    if op == Some("PutRecords") && format == Format::Json {
        if let Some((stream, records)) = Service::parse_put_records_fast(&body) {
            if let Err(e) = verify() {
                return error_response(&e, format);
            }
            return reply_response(service.put_records_checked(&stream, records).await, format);
        }
    }
    if body.is_empty() {
        let e = if op.is_some() {
            ApiError::serialization_bare()
        } else {
            ApiError::unknown_operation()
        };
        return error_response(&e, format);
    }
    let value = match codec::decode(&body, format) {
        Ok(v) => v,
        Err(e) => return error_response(&e, format),
    };
    let Some(op) = op else {
        return error_response(&ApiError::unknown_operation(), format);
    };
    if let Err(e) = verify() {
        return error_response(&e, format);
    }
    let input = match Input::root(&value, format) {
        Ok(i) => i,
        Err(e) => return error_response(&e, format),
    };
    reply_response(service.call(op, input).await, format)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small writes (acknowledgements, pushed events) go out at once, not after Nagle's delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
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

/// Serves the API over TLS on `listener` until `shutdown` completes. Each connection speaks
/// the protocol ALPN chose (HTTP/2 or HTTP/1.1). Connections still open at shutdown are
/// dropped with the task that serves them.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(service);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "TLS accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "TLS connection ended with an error");
            }
        });
    }
}
