//! The Lambda REST service: one axum router for every path of the API, which reads the body,
//! verifies SigV4 (signing name `lambda`), picks the operation by method and path and writes
//! Lambda's answer (REST-JSON) with the request id.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sluice_aws::{ApiError, Credentials, NowMs};
use sluice_runtime::Runtimes;
use sluice_streams::Streams;

use crate::config::LambdaConfig;
use crate::error::{self, Failure};
use crate::events::EventQueues;
use crate::mappings::Mappings;
use crate::metrics::Metrics;
use crate::names::{FunctionRef, Scope};
use crate::ops;
use crate::store::{Store, StoreError};

/// The path prefixes of the Lambda API (one per version date of its operations), each to be
/// registered with `Gateway::rest`. Narrow ones, so that S3 bucket paths stay the fallback's.
pub const PATH_PREFIXES: &[&str] = &[
    "/2014-11-13/functions/",
    "/2015-03-31/",
    "/2016-08-19/account-settings",
    "/2017-03-31/tags/",
    "/2017-10-31/functions/",
    "/2018-10-31/layers",
    "/2019-09-25/functions/",
    "/2019-09-30/functions/",
    "/2020-04-22/code-signing-configs",
    "/2020-06-30/functions/",
    "/2021-07-20/functions/",
    "/2021-10-31/functions/",
    "/2021-11-15/functions/",
    "/2024-08-31/functions/",
    "/2025-11-30/",
    "/2025-12-01/",
];

/// The compatibility page named in "not supported" answers.
pub const COMPAT_DOC: &str = "docs/specs/lambda-compat.md";

/// What [`Lambda::open`] needs besides the `[lambda]` section.
#[derive(Clone)]
pub struct LambdaOptions {
    pub config: LambdaConfig,
    pub data_dir: std::path::PathBuf,
    pub region: String,
    pub account_id: String,
    /// The keys requests must be signed with (none: any request is accepted).
    pub credentials: Credentials,
    /// The credentials handed to handlers (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`), so
    /// that an AWS SDK in a handler can call sluice.
    pub handler_access_key: (String, String),
    pub now_ms: NowMs,
    /// The stream registry event source mappings read (and on-failure destination streams
    /// are written through).
    pub streams: Arc<Streams>,
    /// The lake on-failure destination buckets are in.
    pub lake: sluice_lake::Lake,
}

/// The Lambda service: the function store, the process pools, the Event queues and the
/// event source mappings.
pub struct Lambda {
    pub(crate) store: Store,
    pub(crate) runtimes: Arc<Runtimes>,
    pub(crate) scope: Scope,
    pub(crate) credentials: Credentials,
    pub(crate) now_ms: NowMs,
    pub(crate) config: LambdaConfig,
    pub(crate) handler_access_key: (String, String),
    pub(crate) events: EventQueues,
    pub(crate) mappings: Mappings,
    pub(crate) metrics: Metrics,
    endpoint_url: OnceLock<String>,
}

impl std::fmt::Debug for Lambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lambda")
            .field("scope", &self.scope)
            .field("mappings", &self.mappings)
            .finish_non_exhaustive()
    }
}

impl Lambda {
    /// Opens the function store and the event source mappings under `<data_dir>/lambda`
    /// (blocking) with the declared functions, over the process pools `runtimes`. No mapping
    /// runs before [`Lambda::start_mappings`].
    pub fn open(
        options: LambdaOptions,
        runtimes: Arc<Runtimes>,
    ) -> Result<Arc<Lambda>, StoreError> {
        let now = (options.now_ms)();
        let store = Store::open(&options.data_dir, &options.config.functions, now)?;
        let mappings = Mappings::open(
            &options.data_dir,
            options.streams,
            options.lake,
            options.config.mapping_state_delay_ms,
        )?;
        Ok(Arc::new(Lambda {
            store,
            runtimes,
            scope: Scope {
                region: options.region,
                account_id: options.account_id,
            },
            credentials: options.credentials,
            now_ms: options.now_ms,
            events: EventQueues::new(options.config.event_queue_depth_max),
            mappings,
            metrics: Metrics::default(),
            config: options.config,
            handler_access_key: options.handler_access_key,
            endpoint_url: OnceLock::new(),
        }))
    }

    /// sluice's own URL, handed to handlers as `AWS_ENDPOINT_URL` (known once the listener is
    /// bound). The first call wins.
    pub fn set_endpoint_url(&self, url: String) {
        let _ = self.endpoint_url.set(url);
    }

    pub(crate) fn endpoint_url(&self) -> String {
        self.endpoint_url
            .get()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:4567".into())
    }

    /// How many functions there are (for the start-up line).
    pub fn function_count(&self) -> usize {
        self.store.list().len()
    }

    /// How many event source mappings there are (for the start-up line).
    pub fn mapping_count(&self) -> usize {
        self.mappings.count()
    }

    /// Starts the poller of every enabled event source mapping. Call once, after
    /// [`Lambda::set_endpoint_url`] (handlers are told sluice's URL), on a tokio runtime.
    pub fn start_mappings(self: &Arc<Self>) {
        crate::mappings::start_all(self);
    }

    /// The router for every path under [`PATH_PREFIXES`].
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Stops every mapping's poller (each finishes the invocation in flight), then every
    /// process.
    pub async fn shutdown(&self) {
        self.mappings.shutdown().await;
        self.runtimes.shutdown().await;
    }

    // ---- For services inside sluice (Firehose's data transformation) ----

    /// Runs `function` (a name or an ARN of this region and account; `$LATEST`) once with
    /// `payload`, as Invoke RequestResponse does (same process pools, metrics and
    /// throttling), and returns the handler's answer. `Err` says why there is none: the
    /// function is missing, was throttled or could not run, or the handler failed or timed
    /// out (`<errorType>: <message>`).
    pub async fn invoke_json(&self, function: &str, payload: Bytes) -> Result<Bytes, String> {
        let r = self.function_ref(function).map_err(|e| e.to_string())?;
        let not_found = || format!("Function not found: {}", r.arn(&self.scope, None));
        if !r.in_scope(&self.scope) {
            return Err(not_found());
        }
        let f = self.store.get(&r.name).ok_or_else(not_found)?;
        let request_id = crate::store::new_revision_id();
        let invocation = ops::invoke::invocation(self, &f, &request_id, payload, None, None);
        match ops::invoke::execute(self, &f, invocation).await {
            Ok(result) => match result.outcome {
                sluice_runtime::InvokeOutcome::Success(body) => Ok(body),
                sluice_runtime::InvokeOutcome::FunctionError {
                    error_type,
                    payload,
                } => Err(format!(
                    "{error_type}: {}",
                    String::from_utf8_lossy(&payload[..payload.len().min(1024)])
                )),
                sluice_runtime::InvokeOutcome::TimedOut => {
                    Err("Sandbox.Timedout: the function timed out".into())
                }
                sluice_runtime::InvokeOutcome::RuntimeFailed {
                    error_type,
                    message,
                } => Err(format!("{error_type}: {message}")),
            },
            Err(failure) => Err(format!(
                "{}: {}",
                failure.error.type_name(),
                failure.error.message.unwrap_or_default()
            )),
        }
    }

    /// Parses a function reference from the path, as the reading operations take it.
    pub(crate) fn function_ref(&self, raw: &str) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(
            raw,
            "functionName",
            crate::limits::FUNCTION_REF_CHARS_MAX,
            crate::names::NAMESPACED_FUNCTION_NAME_PATTERN,
        )
    }
}

/// One request, read and verified.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub query: BTreeMap<String, Vec<String>>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub request_id: &'a str,
}

impl Call<'_> {
    /// The last value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn handle(State(lambda): State<Arc<Lambda>>, req: Request) -> Response {
    let request_id = sluice_aws::request_id();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let body = match axum::body::to_bytes(body, sluice_aws::limits::REQUEST_BODY_BYTES_MAX).await {
        Ok(b) => b,
        Err(_) => {
            let e = error::too_large(sluice_aws::limits::REQUEST_BODY_BYTES_MAX, "Lambda");
            return error::response(&e.into(), &request_id);
        }
    };
    // Lambda, like every service but S3, signs each path segment URI-encoded twice: the
    // client's encoding is encoded once more (`%3A` in an ARN is signed as `%253A`).
    let signed_path = path.replace('%', "%25");
    let verified = lambda.credentials.verify(
        "lambda",
        parts.method.as_str(),
        &signed_path,
        parts.uri.query(),
        &parts.headers,
        &body,
        (lambda.now_ms)(),
    );
    let (operation, result) = match verified {
        Err(e) => ("-", Err(Failure::from(e))),
        Ok(_) => {
            let call = Call {
                method: &parts.method,
                query: parse_query(parts.uri.query()),
                headers: &parts.headers,
                body,
                request_id: &request_id,
            };
            route(&lambda, &path, parts.uri.query(), call).await
        }
    };
    let response = match result {
        Ok(r) => r,
        Err(f) => error::response(&f, &request_id),
    };
    let status = response.status();
    count_request(operation, status);
    if status.is_client_error() || status.is_server_error() {
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(request_id, operation, %status, error_type, "lambda request failed");
    } else {
        tracing::debug!(request_id, operation, %status, "lambda request");
    }
    response
}

type Answer = Result<Response, Failure>;

/// Picks the operation; returns its name (for metrics and logs) and its answer.
async fn route(
    lambda: &Arc<Lambda>,
    path: &str,
    raw_query: Option<&str>,
    call: Call<'_>,
) -> (&'static str, Answer) {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let method = call.method.clone();
    let m = method.as_str();
    macro_rules! run {
        ($name:literal, $e:expr) => {
            ($name, $e.await)
        };
    }
    match (m, segments.as_slice()) {
        ("POST", ["2015-03-31", "functions"]) => {
            run!("CreateFunction", ops::functions::create(lambda, call))
        }
        ("GET", ["2015-03-31", "functions"]) | ("GET", ["2015-03-31", "functions", ""]) => {
            run!("ListFunctions", ops::functions::list(lambda, call))
        }
        ("GET", ["2015-03-31", "functions", f]) => {
            run!("GetFunction", ops::functions::get(lambda, call, f))
        }
        ("DELETE", ["2015-03-31", "functions", f]) => {
            run!("DeleteFunction", ops::functions::delete(lambda, call, f))
        }
        ("GET", ["2015-03-31", "functions", f, "configuration"]) => run!(
            "GetFunctionConfiguration",
            ops::functions::get_configuration(lambda, call, f)
        ),
        ("PUT", ["2015-03-31", "functions", f, "configuration"]) => run!(
            "UpdateFunctionConfiguration",
            ops::functions::update_configuration(lambda, call, f)
        ),
        ("PUT", ["2015-03-31", "functions", f, "code"]) => run!(
            "UpdateFunctionCode",
            ops::functions::update_code(lambda, call, f)
        ),
        ("POST", ["2015-03-31", "functions", f, "invocations"]) => {
            run!("Invoke", ops::invoke::invoke(lambda, call, f))
        }
        ("POST", ["2014-11-13", "functions", f, "invoke-async"]) => {
            run!("InvokeAsync", ops::invoke::invoke_async(lambda, call, f))
        }
        ("PUT", ["2017-10-31", "functions", f, "concurrency"]) => run!(
            "PutFunctionConcurrency",
            ops::concurrency::put(lambda, call, f)
        ),
        ("GET", ["2019-09-30", "functions", f, "concurrency"]) => run!(
            "GetFunctionConcurrency",
            ops::concurrency::get(lambda, call, f)
        ),
        ("DELETE", ["2017-10-31", "functions", f, "concurrency"]) => run!(
            "DeleteFunctionConcurrency",
            ops::concurrency::delete(lambda, call, f)
        ),
        ("POST", ["2015-03-31", "event-source-mappings"])
        | ("POST", ["2015-03-31", "event-source-mappings", ""]) => run!(
            "CreateEventSourceMapping",
            ops::mappings::create(lambda, call)
        ),
        ("GET", ["2015-03-31", "event-source-mappings"])
        | ("GET", ["2015-03-31", "event-source-mappings", ""]) => {
            run!("ListEventSourceMappings", ops::mappings::list(lambda, call))
        }
        ("GET", ["2015-03-31", "event-source-mappings", id]) => run!(
            "GetEventSourceMapping",
            ops::mappings::get(lambda, call, id)
        ),
        ("PUT", ["2015-03-31", "event-source-mappings", id]) => run!(
            "UpdateEventSourceMapping",
            ops::mappings::update(lambda, call, id)
        ),
        ("DELETE", ["2015-03-31", "event-source-mappings", id]) => run!(
            "DeleteEventSourceMapping",
            ops::mappings::delete(lambda, call, id)
        ),
        ("GET", ["2016-08-19", "account-settings", ..]) => run!(
            "GetAccountSettings",
            ops::account::get_settings(lambda, call)
        ),
        ("GET", ["2017-03-31", "tags", arn]) => {
            run!("ListTags", ops::tags::list(lambda, call, arn))
        }
        ("POST", ["2017-03-31", "tags", arn]) => {
            run!("TagResource", ops::tags::tag(lambda, call, arn))
        }
        ("DELETE", ["2017-03-31", "tags", arn]) => {
            run!("UntagResource", ops::tags::untag(lambda, call, arn))
        }
        _ => match ops::table::operation_of(m, path, raw_query) {
            Some(op) => (op, Err(ApiError::not_implemented(op, COMPAT_DOC).into())),
            None => (
                "-",
                Err(ApiError {
                    message: None,
                    ..ApiError::unknown_operation().with_status(StatusCode::NOT_FOUND)
                }
                .into()),
            ),
        },
    }
}

/// `sluice_requests_total{service="lambda", operation, status}`, the gateway's series for JSON
/// services; every label value is static (the operation table's names).
fn count_request(operation: &'static str, status: StatusCode) {
    let class = match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("sluice_requests_total", "service" => "lambda", "operation" => operation, "status" => class)
        .increment(1);
}

/// Query parameters, percent-decoded, every value of each.
fn parse_query(q: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k))
            .or_default()
            .push(percent_decode(v));
    }
    out
}

/// Decodes `%XX` escapes (and `+` in query values is left as is, as AWS does).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn common_headers(r: &mut Response, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-RequestId", v);
    }
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, bytes: Vec<u8>, request_id: &str) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    common_headers(&mut r, request_id);
    r
}

/// A JSON answer from a value.
pub(crate) fn json_ok(status: StatusCode, value: &serde_json::Value, request_id: &str) -> Response {
    json_response(
        status,
        serde_json::to_vec(value).unwrap_or_default(),
        request_id,
    )
}

/// `<data_dir>/lambda/logs/<name>.log`, for `sluice logs`.
pub fn log_file(data_dir: &Path, function: &str) -> std::path::PathBuf {
    crate::store::log_file(&data_dir.join("lambda"), function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("arn%3Aaws%3Alambda%3Aus-east-1"),
            "arn:aws:lambda:us-east-1"
        );
        assert_eq!(percent_decode("%24LATEST"), "$LATEST");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
