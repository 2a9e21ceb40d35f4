//! `sluice-runtime` runs users' Lambda handlers, unmodified, as plain processes that speak the
//! Lambda Runtime API (`/2018-06-01/runtime/...`) to sluice: `python3 -m awslambdaric <handler>`
//! for `python3.x` runtimes, the `bootstrap` executable for `provided.al2023` / `provided.al2`.
//!
//! The main types:
//! - [`FunctionSpec`]: what a process of a function is started with (code directory, handler,
//!   environment, timeout, memory, concurrency).
//! - [`Invocation`]: one event to run, with the ids and deadline the Runtime API hands out.
//! - [`Runtimes`]: the warm process pools, one per function; [`Runtimes::invoke`] runs one
//!   invocation on an idle process (starting one, up to the function's concurrency) and returns
//!   its [`InvokeResult`].
//!
//! The crate knows nothing of the Lambda control-plane API (`sluice-lambda` has that) or of
//! streams.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

/// How to start the processes of one function (one version of its code and configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: String,
    /// `$LATEST` or a published version number.
    pub version: String,
    /// The function's ARN (Lambda-Runtime-Invoked-Function-Arn).
    pub arn: String,
    /// `python3.9` … `python3.13`, `provided.al2023`, `provided.al2`.
    pub runtime: String,
    /// `module.function` for Python; passed as `_HANDLER` to a `bootstrap`.
    pub handler: String,
    /// The unpacked code (LAMBDA_TASK_ROOT, the working directory).
    pub code_dir: PathBuf,
    /// The function's own environment variables (over the ones Lambda sets).
    pub environment: BTreeMap<String, String>,
    pub timeout_ms: u64,
    pub memory_mb: u32,
    /// Processes at most (reserved concurrency, or the server's default).
    pub concurrency_max: usize,
    pub region: String,
    /// `AWS_ENDPOINT_URL` handed to the process, so AWS SDKs in a handler talk to sluice.
    pub endpoint_url: String,
    /// Credentials sluice accepts, handed to the process.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Where the function's stdout and stderr go (appended; `sluice logs` reads it).
    pub log_file: PathBuf,
}

/// One event for a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Epoch milliseconds by which the handler must answer (Lambda-Runtime-Deadline-Ms).
    pub deadline_ms: i64,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// The handler returned: its response body.
    Success(Bytes),
    /// The handler raised or reported an error: `error_type` as the runtime gave it
    /// (Lambda-Runtime-Function-Error-Type, e.g. `Unhandled`), the body it posted
    /// (`{"errorMessage", "errorType", "stackTrace"}`).
    FunctionError { error_type: String, payload: Bytes },
    /// The deadline passed: the process was killed (and is replaced on demand).
    TimedOut,
    /// The process exited or failed to start before answering (`Runtime.ExitError`,
    /// `Runtime.InitError`...): the reason, as Lambda words it.
    RuntimeFailed { error_type: String, message: String },
}

/// The end of an invocation, with the tail of what the process wrote meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResult {
    pub outcome: InvokeOutcome,
    /// The last 4 KB of the process's output during this invocation (for `LogType: Tail`).
    pub log_tail: Bytes,
    /// How long the handler ran, in milliseconds.
    pub duration_ms: u64,
}

/// Why an invocation could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Every process the function may have is busy and the wait for one timed out.
    #[error("function {function} has reached its concurrency limit of {limit}")]
    Throttled { function: String, limit: usize },
    /// The runtime is not one sluice can run, or its interpreter or client is missing.
    #[error("{0}")]
    Unsupported(String),
    #[error("i/o error starting function {function}: {source}")]
    Io {
        function: String,
        #[source]
        source: std::io::Error,
    },
}

/// Settings of the process pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimesConfig {
    /// The Python interpreter for `python3.x` runtimes (it must have `awslambdaric`).
    pub python: PathBuf,
    /// A process idle this long is stopped.
    pub idle_ms: u64,
    /// How long an invocation waits for a free process before it is throttled.
    pub queue_wait_ms: u64,
}

/// The warm process pools of every function.
#[derive(Debug)]
pub struct Runtimes {
    config: RuntimesConfig,
}

impl Runtimes {
    pub fn new(config: RuntimesConfig) -> Runtimes {
        Runtimes { config }
    }

    pub fn config(&self) -> &RuntimesConfig {
        &self.config
    }

    /// Runs `invocation` on a process of `spec` (a warm idle one, or a new one while the
    /// function has fewer than `concurrency_max`).
    pub async fn invoke(
        &self,
        spec: &FunctionSpec,
        invocation: Invocation,
    ) -> Result<InvokeResult, RuntimeError> {
        let _ = invocation;
        Err(RuntimeError::Unsupported(format!(
            "function {}: the process pool is being built",
            spec.name
        )))
    }

    /// Stops every process of `function` (its code or configuration changed, or it was
    /// deleted); the next invocation starts fresh ones.
    pub fn retire(&self, function: &str) {
        let _ = function;
    }

    /// Stops every process.
    pub async fn shutdown(&self) {}
}
