//! The Lambda Runtime API (`/2018-06-01/runtime/...`) of one process: an HTTP server on
//! `127.0.0.1:0` whose address the process gets as `AWS_LAMBDA_RUNTIME_API`.
//!
//! One process runs one invocation at a time, so the server holds one [`Slot`]: empty, an
//! invocation queued for the process (`Queued`, until its `GET /invocation/next` takes it), or
//! the invocation it is running (`Running`, until it posts a response or an error). The pool
//! puts an [`Assignment`] in the slot and hears back through its two oneshots: when the event
//! was delivered, and the runtime's [`Reply`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify};

use crate::limits::RESPONSE_BYTES_MAX;
use crate::output::Output;
use crate::Invocation;

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const TRACE_ID: &str = "lambda-runtime-trace-id";
const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
/// The error body of a streamed response that failed midway, base64 (a trailer).
const ERROR_BODY: &str = "lambda-runtime-function-error-body";

/// How the runtime answered an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `POST /invocation/{id}/response` (buffered or streamed).
    Response(Bytes),
    /// `POST /invocation/{id}/error`, or a streamed response whose trailers report an error.
    Error { error_type: String, body: Bytes },
    /// The response or error body passed [`RESPONSE_BYTES_MAX`].
    TooLarge,
    /// `POST /init/error`: the process could not initialise (it exits next).
    InitError { error_type: String, body: Bytes },
}

/// One invocation handed to a process.
pub(crate) struct Assignment {
    pub(crate) invocation: Invocation,
    /// The handler's time, counted from the moment it takes the event (so neither the wait
    /// for a process nor a cold start's init eats into it, as in Lambda): the deadline it is
    /// told (`Lambda-Runtime-Deadline-Ms`) is the delivery time plus this.
    pub(crate) budget_ms: u64,
    /// Lambda's `START` line, written to the process's output just before it gets the event:
    /// after its init output, before anything its handler writes.
    pub(crate) start_line: String,
    /// When the process took the event.
    pub(crate) delivered: oneshot::Sender<Instant>,
    pub(crate) reply: oneshot::Sender<Reply>,
}

enum Slot {
    Empty,
    Queued(Assignment),
    Running {
        request_id: String,
        reply: oneshot::Sender<Reply>,
    },
}

struct ApiState {
    slot: Slot,
    /// The process has asked for its first event: its init phase is over.
    initialised: bool,
    /// The process reported an init error before any invocation was queued.
    init_error: Option<Reply>,
}

struct Shared {
    function_arn: String,
    output: Output,
    state: Mutex<ApiState>,
    /// Wakes the `GET /next` long poll when an invocation is queued.
    assigned: Notify,
    /// Turns true when the endpoint is dropped: long polls end, the server stops.
    closed: watch::Receiver<bool>,
    /// How many `GET /next` long polls are waiting (a warm process is ready when one is).
    polling: watch::Sender<usize>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, ApiState> {
        // The state stays consistent at every unlock (plain assignments), so a panic elsewhere
        // while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The Runtime API server of one process. Dropping it stops the server.
pub(crate) struct Endpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    close: watch::Sender<bool>,
}

impl Endpoint {
    /// Starts a server on `127.0.0.1:0` for a process of the function `function_arn` whose
    /// output task is `output`.
    pub(crate) async fn bind(function_arn: &str, output: Output) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (close, closed) = watch::channel(false);
        let shared = Arc::new(Shared {
            function_arn: function_arn.to_owned(),
            output,
            state: Mutex::new(ApiState {
                slot: Slot::Empty,
                initialised: false,
                init_error: None,
            }),
            assigned: Notify::new(),
            closed: closed.clone(),
            polling: watch::Sender::new(0),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{request_id}/error",
                post(error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let mut stop = closed;
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|closed| *closed).await;
        });
        tokio::spawn(async move {
            if let Err(error) = serve.await {
                tracing::debug!(%error, %addr, "runtime api server ended");
            }
        });
        Ok(Endpoint {
            addr,
            shared,
            close,
        })
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the process is waiting in `GET /invocation/next` (ready for an event).
    pub(crate) async fn polling(&self) {
        let mut polling = self.shared.polling.subscribe();
        let _ = polling.wait_for(|n| *n > 0).await;
    }

    /// Queues `assignment` for the process's next `GET /invocation/next`. A process that has
    /// already reported an init error answers it at once with that error.
    pub(crate) fn assign(&self, assignment: Assignment) {
        let mut state = self.shared.state();
        if let Some(reply) = state.init_error.clone() {
            drop(state);
            let _ = assignment.reply.send(reply);
            return;
        }
        // The pool assigns only to a process that answered its previous invocation, so the
        // slot is empty; whatever was there is over (its reply sender is dropped).
        state.slot = Slot::Queued(assignment);
        drop(state);
        self.shared.assigned.notify_one();
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.close.send_replace(true);
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Lambda's error shape for the Runtime API's own errors.
fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

/// An id that is not the invocation the process is running (unknown, or already answered):
/// 400 `InvalidRequestID`, as Lambda's Runtime API answers.
fn invalid_request_id() -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

fn too_large() -> Response {
    api_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("Exceeded maximum allowed payload size ({RESPONSE_BYTES_MAX} bytes)."),
    )
}

/// `GET /2018-06-01/runtime/invocation/next`: waits until an invocation is queued for this
/// process, then answers its event with Lambda's headers.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let mut closed = shared.closed.clone();
    shared.polling.send_modify(|n| *n += 1);
    let _polling = Polling(&shared.polling);
    loop {
        let assigned = shared.assigned.notified();
        tokio::pin!(assigned);
        assigned.as_mut().enable();
        if let Some(taken) = take_queued(&shared) {
            return deliver(&shared, taken).await;
        }
        tokio::select! {
            () = &mut assigned => {}
            _ = closed.wait_for(|closed| *closed) => {
                return api_error(StatusCode::GONE, "Shutdown", "The process is being stopped");
            }
        }
    }
}

/// Counts a waiting long poll while it lives.
struct Polling<'a>(&'a watch::Sender<usize>);

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// An invocation taken by `GET /next`, on its way to the process.
struct Taken {
    invocation: Invocation,
    budget_ms: u64,
    start_line: String,
    delivered: oneshot::Sender<Instant>,
}

/// Takes the queued invocation, if any: it is running from now on.
fn take_queued(shared: &Shared) -> Option<Taken> {
    let mut state = shared.state();
    state.initialised = true;
    if !matches!(state.slot, Slot::Queued(_)) {
        return None;
    }
    let Slot::Queued(assignment) = std::mem::replace(&mut state.slot, Slot::Empty) else {
        return None;
    };
    let Assignment {
        invocation,
        budget_ms,
        start_line,
        delivered,
        reply,
    } = assignment;
    state.slot = Slot::Running {
        request_id: invocation.request_id.clone(),
        reply,
    };
    Some(Taken {
        invocation,
        budget_ms,
        start_line,
        delivered,
    })
}

/// Writes the `START` line, tells the pool, renders the event.
async fn deliver(shared: &Shared, taken: Taken) -> Response {
    let Taken {
        invocation,
        budget_ms,
        start_line,
        delivered,
    } = taken;
    shared.output.begin(start_line).await;
    let deadline_ms = epoch_ms().saturating_add(i64::try_from(budget_ms).unwrap_or(i64::MAX));
    let _ = delivered.send(Instant::now());

    let mut response = Response::new(Body::from(invocation.payload));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set(headers, REQUEST_ID, &invocation.request_id);
    set(headers, DEADLINE_MS, &deadline_ms.to_string());
    set(headers, FUNCTION_ARN, &shared.function_arn);
    let optional = [
        (TRACE_ID, &invocation.trace_id),
        (CLIENT_CONTEXT, &invocation.client_context),
        (COGNITO_IDENTITY, &invocation.cognito_identity),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            set(headers, name, value);
        }
    }
    response
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(HeaderName::from_static(name), value);
        }
        Err(_) => tracing::warn!(header = name, "value not valid in an HTTP header; left out"),
    }
}

/// Takes the reply sender of the running invocation `request_id`, if that is the one.
fn take_running(shared: &Shared, request_id: &str) -> Option<oneshot::Sender<Reply>> {
    let mut state = shared.state();
    match &state.slot {
        Slot::Running { request_id: id, .. } if id == request_id => {}
        _ => return None,
    }
    match std::mem::replace(&mut state.slot, Slot::Empty) {
        Slot::Running { reply, .. } => Some(reply),
        _ => None,
    }
}

enum BodyError {
    TooLarge,
    /// The connection failed before the body ended.
    Read,
}

struct ReadBody {
    data: Bytes,
    trailers: Option<HeaderMap>,
}

/// Reads a request body, chunked or not, up to [`RESPONSE_BYTES_MAX`], with its trailers.
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<ReadBody, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > RESPONSE_BYTES_MAX as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut data = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        match frame.into_data() {
            Ok(chunk) => {
                if data.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    return Err(BodyError::TooLarge);
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers = Some(map);
                }
            }
        }
    }
    Ok(ReadBody {
        data: data.freeze(),
        trailers,
    })
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `POST /2018-06-01/runtime/invocation/{id}/response`: the handler's result, buffered or
/// streamed (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked, an error reported
/// in the trailers).
async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(reply) = take_running(&shared, &request_id) else {
        return invalid_request_id();
    };
    match read_body(&headers, body).await {
        Ok(ReadBody { data, trailers }) => {
            let failed = trailers
                .as_ref()
                .and_then(|t| header_text(t, ERROR_TYPE).map(|error_type| (t, error_type)));
            let answer = match failed {
                Some((trailers, error_type)) => {
                    let body = trailers
                        .get(ERROR_BODY)
                        .map(|v| {
                            base64::engine::general_purpose::STANDARD
                                .decode(v.as_bytes())
                                .map_or_else(|_| Bytes::copy_from_slice(v.as_bytes()), Bytes::from)
                        })
                        .unwrap_or_default();
                    Reply::Error { error_type, body }
                }
                None => Reply::Response(data),
            };
            let _ = reply.send(answer);
            accepted()
        }
        Err(BodyError::TooLarge) => {
            let _ = reply.send(Reply::TooLarge);
            too_large()
        }
        // The process went away mid-body: the pool sees it exit (or the deadline pass).
        Err(BodyError::Read) => api_error(
            StatusCode::BAD_REQUEST,
            "TruncatedHTTPRequest",
            "HTTP request detected as truncated",
        ),
    }
}

/// `POST /2018-06-01/runtime/invocation/{id}/error`: the handler failed; the body is
/// `{errorMessage, errorType, stackTrace}`, the type in `Lambda-Runtime-Function-Error-Type`.
async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(reply) = take_running(&shared, &request_id) else {
        return invalid_request_id();
    };
    match read_body(&headers, body).await {
        Ok(ReadBody { data, .. }) => {
            let error_type =
                header_text(&headers, ERROR_TYPE).unwrap_or_else(|| "Unhandled".to_owned());
            let _ = reply.send(Reply::Error {
                error_type,
                body: data,
            });
            accepted()
        }
        Err(BodyError::TooLarge) => {
            let _ = reply.send(Reply::TooLarge);
            too_large()
        }
        Err(BodyError::Read) => api_error(
            StatusCode::BAD_REQUEST,
            "TruncatedHTTPRequest",
            "HTTP request detected as truncated",
        ),
    }
}

/// `POST /2018-06-01/runtime/init/error`: the process failed to initialise. The invocation
/// waiting for it (or the next one) fails with this error. Only before the first
/// `GET /next`: afterwards 403, as Lambda.
async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if shared.state().initialised {
        return api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from Ready to InitError failed for runtime.",
        );
    }
    let data = match read_body(&headers, body).await {
        Ok(ReadBody { data, .. }) => data,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Read) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                "HTTP request detected as truncated",
            )
        }
    };
    let error_type = header_text(&headers, ERROR_TYPE)
        .or_else(|| error_type_of(&data))
        .unwrap_or_else(|| "Runtime.InitError".to_owned());
    let reply = Reply::InitError {
        error_type,
        body: data,
    };
    let mut state = shared.state();
    if matches!(state.slot, Slot::Queued(_)) {
        if let Slot::Queued(assignment) = std::mem::replace(&mut state.slot, Slot::Empty) {
            drop(state);
            let _ = assignment.reply.send(reply);
            return accepted();
        }
    }
    state.init_error = Some(reply);
    accepted()
}

/// `errorType` of an error body, if it is the JSON the runtimes post.
pub(crate) fn error_type_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("errorType")?.as_str().map(str::to_owned)
}

/// `errorMessage` of an error body, if it is the JSON the runtimes post.
pub(crate) fn error_message_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("errorMessage")?.as_str().map(str::to_owned)
}
