//! Lambda's errors on the wire, and the one mapping from each domain error (the store's, the
//! package's, the process pools') to them.
//!
//! Lambda is REST-JSON: the type is in `x-amzn-ErrorType`, the body is
//! `{"Type": "User", "message": "..."}` (`"Service"` for its own failures). A few types spell
//! the member `Message`, as the API model has them: ResourceNotFoundException,
//! InvalidRuntimeException, ServiceException. A throttle adds `Reason`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use sluice_aws::{ApiError, ErrorType};
use sluice_runtime::RuntimeError;

use crate::package::PackageError;
use crate::store::StoreError;

/// An error answer: the AWS error and what Lambda adds to some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: ApiError,
    /// TooManyRequestsException's `Reason` (ThrottleReason).
    pub reason: Option<&'static str>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error,
            reason: None,
        }
    }
}

/// Why an invocation was throttled (Lambda's `ThrottleReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The function's reserved concurrency (0, or all of it busy).
    Reserved,
    /// No reserved concurrency: the server's processes for the function are all busy.
    Concurrent,
    /// The function's queue of Event invocations is full.
    EventQueue,
}

impl Throttle {
    fn reason(self) -> &'static str {
        match self {
            Throttle::Reserved => "ReservedFunctionConcurrentInvocationLimitExceeded",
            Throttle::Concurrent => "ConcurrentInvocationLimitExceeded",
            Throttle::EventQueue => "FunctionInvocationRateLimitExceeded",
        }
    }
}

/// 429 TooManyRequestsException, as Lambda words it.
pub fn throttled(why: Throttle) -> Failure {
    Failure {
        error: ApiError::new(ErrorType::TooManyRequests, "Rate Exceeded.")
            .with_status(StatusCode::TOO_MANY_REQUESTS),
        reason: Some(why.reason()),
    }
}

/// 404 ResourceNotFoundException `Function not found: <arn>`.
pub fn function_not_found(arn: &str) -> ApiError {
    ApiError {
        capital_message: true,
        ..ApiError::not_found(format!("Function not found: {arn}"))
            .with_status(StatusCode::NOT_FOUND)
    }
}

/// 409 ResourceConflictException.
pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorType::ResourceConflict, message).with_status(StatusCode::CONFLICT)
}

/// 400 InvalidParameterValueException.
pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorType::InvalidParameterValue, message)
}

/// 400 InvalidRequestContentException: a body that is not JSON, a header with a bad value.
pub fn invalid_content(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorType::InvalidRequestContent, message)
}

/// 413 RequestEntityTooLargeException for a body over `limit` bytes.
pub fn too_large(limit: usize, operation: &str) -> ApiError {
    ApiError::new(
        ErrorType::RequestEntityTooLarge,
        format!("Request must be smaller than {limit} bytes for the {operation} operation"),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// 412 PreconditionFailedException: a `RevisionId` that is not the function's.
pub fn revision_mismatch() -> ApiError {
    ApiError::new(
        ErrorType::PreconditionFailed,
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
    .with_status(StatusCode::PRECONDITION_FAILED)
}

/// 500 ServiceException; the cause is logged, never sent.
pub fn service(cause: &dyn std::fmt::Display) -> ApiError {
    // The request's own log line (with its id) follows, with ServiceException.
    tracing::error!(error = %cause, "lambda: internal error");
    ApiError {
        capital_message: true,
        ..ApiError::new(
            ErrorType::Service,
            "The Lambda service encountered an internal error.",
        )
        .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The one mapping of store errors. `arn` names the function for "not found".
pub fn from_store(e: StoreError, arn: &str) -> ApiError {
    match e {
        StoreError::NotFound(_) => function_not_found(arn),
        StoreError::Exists(name) => conflict(format!("Function already exist: {name}")),
        StoreError::Declared(name) => conflict(format!(
            "Function {name} is declared in sluice's configuration file ([[lambda.functions]]): change it there and restart sluice."
        )),
        StoreError::Package(p) => from_package(p),
        e @ StoreError::Io { .. } => service(&e),
        e @ StoreError::Corrupt(_) => service(&e),
    }
}

/// The one mapping of package errors.
pub fn from_package(e: PackageError) -> ApiError {
    match e {
        PackageError::NotZip(_) | PackageError::TooManyEntries => invalid_parameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        ),
        PackageError::Escapes(entry) => invalid_parameter(format!(
            "Could not unzip uploaded file. The entry {entry:?} would be written outside the package's directory."
        )),
        PackageError::TooLarge => invalid_parameter(format!(
            "Unzipped size must be smaller than {} bytes",
            crate::limits::UNZIPPED_BYTES_MAX
        )),
        e @ PackageError::Io(_) => service(&e),
    }
}

/// The one mapping of the process pools' errors. `reserved`: the function has reserved
/// concurrency (which names the throttle's reason).
pub fn from_runtime(e: RuntimeError, reserved: bool) -> Failure {
    match e {
        RuntimeError::Throttled { .. } => throttled(if reserved {
            Throttle::Reserved
        } else {
            Throttle::Concurrent
        }),
        RuntimeError::Unsupported(message) => ApiError {
            capital_message: true,
            ..ApiError::new(ErrorType::InvalidRuntime, message).with_status(StatusCode::BAD_GATEWAY)
        }
        .into(),
        e @ RuntimeError::Io { .. } => service(&e).into(),
    }
}

/// The answer for `f`.
pub fn response(f: &Failure, request_id: &str) -> Response {
    let e = &f.error;
    let mut body = serde_json::Map::new();
    let who = if e.error_type == ErrorType::Service {
        "Service"
    } else {
        "User"
    };
    body.insert("Type".into(), who.into());
    if let Some(m) = &e.message {
        let key = if e.capital_message {
            "Message"
        } else {
            "message"
        };
        body.insert(key.into(), m.clone().into());
    }
    if let Some(r) = f.reason {
        body.insert("Reason".into(), r.into());
    }
    let bytes = serde_json::to_vec(&serde_json::Value::Object(body)).unwrap_or_default();
    let mut r = crate::service::json_response(e.status, bytes, request_id);
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.type_name()));
    r
}

/// An empty answer with a status (204 and the like).
pub fn empty(status: StatusCode, request_id: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    crate::service::common_headers(&mut r, request_id);
    r
}
