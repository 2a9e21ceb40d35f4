//! Invoke (RequestResponse, Event, DryRun) and the deprecated InvokeAsync: the request checks
//! Lambda makes, the run on `sluice-runtime`'s process pools, and Lambda's answer for each
//! way an invocation ends.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::json;
use sluice_aws::validate::Validator;
use sluice_runtime::{FunctionSpec, Invocation, InvokeOutcome, InvokeResult, RuntimeError};

use super::lookup;
use crate::error::{self, invalid_content, throttled, too_large, Failure, Throttle};
use crate::events::Event;
use crate::limits;
use crate::names::LATEST;
use crate::service::{common_headers, json_ok, Call, Lambda};
use crate::store::Function;

type Answer = Result<Response, Failure>;

/// How a process of `f` is started.
pub(crate) fn spec(lambda: &Lambda, f: &Function) -> FunctionSpec {
    let concurrency_max = f
        .record
        .reserved_concurrency
        .map(|n| n as usize)
        .unwrap_or(lambda.config.function_concurrency_max);
    FunctionSpec {
        name: f.name.to_string(),
        version: LATEST.to_string(),
        arn: lambda.scope.arn(&f.name),
        runtime: f.record.runtime.clone(),
        handler: f.record.handler.clone(),
        code_dir: f.code_dir.clone(),
        environment: f.record.environment.clone(),
        timeout_ms: u64::from(f.record.timeout_s) * 1000,
        memory_mb: f.record.memory_mb,
        concurrency_max,
        region: lambda.scope.region.clone(),
        endpoint_url: lambda.endpoint_url(),
        access_key_id: lambda.handler_access_key.0.clone(),
        secret_access_key: lambda.handler_access_key.1.clone(),
        log_file: lambda.store.log_file(&f.name),
    }
}

/// One invocation of `f`, due within its timeout from now.
pub(crate) fn invocation(
    lambda: &Lambda,
    f: &Function,
    request_id: &str,
    payload: Bytes,
    trace_id: Option<String>,
    client_context: Option<String>,
) -> Invocation {
    Invocation {
        request_id: request_id.to_string(),
        payload,
        deadline_ms: (lambda.now_ms)() + i64::from(f.record.timeout_s) * 1000,
        trace_id,
        client_context,
        cognito_identity: None,
    }
}

/// Runs `f` and waits for its end, as Invoke RequestResponse does (and event source
/// mappings' pollers), counting the function's metrics. A throttle (reserved concurrency 0,
/// every process busy) or a function that cannot run is an error; a handler that fails is an
/// outcome.
pub(crate) async fn execute(
    lambda: &Lambda,
    f: &Function,
    invocation: Invocation,
) -> Result<InvokeResult, Failure> {
    let reserved = f.record.reserved_concurrency;
    if reserved == Some(0) {
        lambda.metrics.throttled(f.name.as_str());
        return Err(throttled(Throttle::Reserved));
    }
    let spec = spec(lambda, f);
    match lambda.runtimes.invoke(&spec, invocation).await {
        Ok(result) => {
            lambda
                .metrics
                .ran(f.name.as_str(), &result.outcome, result.duration_ms);
            Ok(result)
        }
        Err(e) => {
            if matches!(e, RuntimeError::Throttled { .. }) {
                lambda.metrics.throttled(f.name.as_str());
            }
            Err(error::from_runtime(e, reserved.is_some()))
        }
    }
}

/// The payload as the handler gets it: JSON (an empty body is `{}`).
fn payload(body: &Bytes) -> Result<Bytes, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(invalid_content(format!(
            "Could not parse request body into json: Could not parse payload into json: {e}"
        ))
        .into());
    }
    Ok(body.clone())
}

/// `X-Amz-Client-Context`: base64 of a JSON object, handed to the handler decoded.
fn client_context(call: &Call<'_>) -> Result<Option<String>, Failure> {
    let Some(text) = call.header("x-amz-client-context") else {
        return Ok(None);
    };
    let bad = || {
        Failure::from(invalid_content(
            "Client context must be a valid Base64-encoded JSON object.",
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| bad())?;
    if bytes.len() > limits::CLIENT_CONTEXT_BYTES_MAX {
        return Err(invalid_content(format!(
            "Client context must be smaller than {} bytes.",
            limits::CLIENT_CONTEXT_BYTES_MAX
        ))
        .into());
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => String::from_utf8(bytes).map(Some).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

pub(crate) async fn invoke(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = lookup(lambda, raw, call.query("Qualifier"))?;
    let invocation_type = call
        .header("x-amz-invocation-type")
        .unwrap_or("RequestResponse");
    let log_type = call.header("x-amz-log-type").unwrap_or("None");
    let mut v = Validator::new();
    v.one_of(
        Some(invocation_type),
        "invocationType",
        &["Event", "RequestResponse", "DryRun"],
    );
    v.one_of(Some(log_type), "logType", &["None", "Tail"]);
    v.finish()?;
    let limit = if invocation_type == "Event" {
        limits::ASYNC_PAYLOAD_BYTES_MAX
    } else {
        limits::SYNC_PAYLOAD_BYTES_MAX
    };
    if call.body.len() > limit {
        return Err(too_large(limit, "InvokeFunction").into());
    }
    let payload = payload(&call.body)?;
    let client_context = client_context(&call)?;
    let trace_id = call.header("x-amzn-trace-id").map(str::to_string);
    match invocation_type {
        "DryRun" => Ok(error::empty(StatusCode::NO_CONTENT, call.request_id)),
        "Event" => {
            let event = Event {
                request_id: call.request_id.to_string(),
                payload,
                trace_id,
            };
            enqueue(lambda, &f, event)?;
            Ok(error::empty(StatusCode::ACCEPTED, call.request_id))
        }
        _ => {
            run(
                lambda,
                &f,
                &call,
                payload,
                trace_id,
                client_context,
                log_type == "Tail",
            )
            .await
        }
    }
}

async fn run(
    lambda: &Lambda,
    f: &Function,
    call: &Call<'_>,
    payload: Bytes,
    trace_id: Option<String>,
    client_context: Option<String>,
    tail: bool,
) -> Answer {
    let invocation = invocation(
        lambda,
        f,
        call.request_id,
        payload,
        trace_id,
        client_context,
    );
    let result = execute(lambda, f, invocation).await?;
    let error_body = |error_type: &str, message: String| {
        // Lambda's order: errorType first.
        Bytes::from(format!(
            "{{\"errorType\":{},\"errorMessage\":{}}}",
            serde_json::Value::from(error_type),
            serde_json::Value::from(message)
        ))
    };
    let (body, function_error) = match result.outcome {
        InvokeOutcome::Success(body) => (body, None),
        InvokeOutcome::FunctionError {
            error_type,
            payload,
        } => {
            let kind = if error_type == "Handled" {
                "Handled"
            } else {
                "Unhandled"
            };
            (payload, Some(kind))
        }
        InvokeOutcome::TimedOut => (
            error_body(
                "Sandbox.Timedout",
                format!(
                    "RequestId: {} Error: Task timed out after {}.00 seconds",
                    call.request_id, f.record.timeout_s
                ),
            ),
            Some("Unhandled"),
        ),
        InvokeOutcome::RuntimeFailed {
            error_type,
            message,
        } => (
            error_body(
                &error_type,
                format!("RequestId: {} Error: {message}", call.request_id),
            ),
            Some("Unhandled"),
        ),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    common_headers(&mut r, call.request_id);
    header(&mut r, "X-Amz-Executed-Version", LATEST);
    if let Some(kind) = function_error {
        header(&mut r, "X-Amz-Function-Error", kind);
    }
    if tail {
        let log = &result.log_tail[result
            .log_tail
            .len()
            .saturating_sub(limits::LOG_TAIL_BYTES_MAX)..];
        header(
            &mut r,
            "X-Amz-Log-Result",
            &base64::engine::general_purpose::STANDARD.encode(log),
        );
    }
    Ok(r)
}

/// InvokeAsync (deprecated): an Event invocation of at most 256 KB, answered `{"Status": 202}`.
pub(crate) async fn invoke_async(lambda: &Arc<Lambda>, call: Call<'_>, raw: &str) -> Answer {
    let f = lookup(lambda, raw, None)?;
    if call.body.len() > limits::INVOKE_ASYNC_PAYLOAD_BYTES_MAX {
        return Err(too_large(limits::INVOKE_ASYNC_PAYLOAD_BYTES_MAX, "InvokeAsync").into());
    }
    let payload = payload(&call.body)?;
    let event = Event {
        request_id: call.request_id.to_string(),
        payload,
        trace_id: call.header("x-amzn-trace-id").map(str::to_string),
    };
    enqueue(lambda, &f, event)?;
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({"Status": 202}),
        call.request_id,
    ))
}

/// Queues an Event invocation; a full queue is a throttle.
fn enqueue(lambda: &Arc<Lambda>, f: &Function, event: Event) -> Result<(), Failure> {
    lambda.events.enqueue(lambda, &f.name, event).map_err(|t| {
        lambda.metrics.throttled(f.name.as_str());
        throttled(t)
    })
}
