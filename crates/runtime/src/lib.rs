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
//!   its [`InvokeResult`]: an [`InvokeOutcome`] (the response, the function's error, a timeout,
//!   or the runtime's failure in Lambda's words) with the tail of the invocation's output.
//!
//! Inside:
//! - `pool`: a pool per function version (keyed by name and version, rebuilt when the spec
//!   changes): idle processes (warmest reused first), a semaphore of `concurrency_max` slots
//!   with a bounded wait (`queue_wait_ms`, then [`RuntimeError::Throttled`]), the deadline
//!   (the process group is killed, [`InvokeOutcome::TimedOut`]), crashes
//!   (`Runtime.ExitError`), and a background sweep that stops processes idle for `idle_ms`.
//! - `api`: the Runtime API server of one process, on `127.0.0.1:0` (`AWS_LAMBDA_RUNTIME_API`):
//!   `GET /invocation/next` (a long poll), `POST /invocation/{id}/response` (buffered or
//!   streamed, at most [`limits::RESPONSE_BYTES_MAX`]), `POST /invocation/{id}/error`,
//!   `POST /init/error`.
//! - `process`: starting a process (its own process group, Lambda's environment over the
//!   function's, nothing else of sluice's but `PATH` and `HOME`), stopping it with its group,
//!   and checking that the Python interpreter has `awslambdaric`.
//! - `output`: the process's stdout and stderr, line by line, into the function's log file
//!   with Lambda's `START` / `END` / `REPORT` lines, and the last 4 KB of each invocation.
//!
//! Every process runs one invocation at a time; every wait has a limit ([`limits`]).
//!
//! The crate knows nothing of the Lambda control-plane API (`sluice-lambda` has that) or of
//! streams.

mod api;
pub mod limits;
mod output;
mod pool;
mod process;

pub use process::RESERVED_ENVIRONMENT_KEYS;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The function's own environment variables: over Lambda's defaults (`TZ`, `LANG`,
    /// `AWS_ENDPOINT_URL`...), but never over the reserved ones ([`RESERVED_ENVIRONMENT_KEYS`]).
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
    /// The process exited or failed to start before answering, or its answer was refused: the
    /// reason, as Lambda words it. `Runtime.ExitError` (`RequestId: … Error: Runtime exited
    /// with error: exit status 3`); an init error as the runtime reported it to
    /// `/init/error` (e.g. `Runtime.ImportModuleError`, with its `errorMessage`; else
    /// `Runtime.InitError`); `Runtime.InvalidEntrypoint` (no runnable `bootstrap`);
    /// `Function.ResponseSizeTooLarge` (a response over [`limits::RESPONSE_BYTES_MAX`]).
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
pub struct Runtimes {
    pools: Arc<pool::Pools>,
}

impl std::fmt::Debug for Runtimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtimes")
            .field("config", &self.pools.config)
            .finish_non_exhaustive()
    }
}

impl Runtimes {
    /// Pools with `config`; no process starts before the first invocation. (The idle sweep
    /// starts with the first invocation too, so `new` needs no async runtime.)
    pub fn new(config: RuntimesConfig) -> Runtimes {
        Runtimes {
            pools: Arc::new(pool::Pools::new(config)),
        }
    }

    pub fn config(&self) -> &RuntimesConfig {
        &self.pools.config
    }

    /// Runs `invocation` on a process of `spec` (a warm idle one, or a new one while the
    /// function has fewer than `concurrency_max`).
    ///
    /// The handler's time (`invocation.deadline_ms` less now) counts from the moment its
    /// process takes the event: neither the wait for a process nor a cold start's init (itself
    /// limited to [`limits::INIT_MS_MAX`]) eats into it, as in Lambda; the deadline the
    /// handler is told is shifted accordingly. The invocation runs on a task of its own: if
    /// the caller stops waiting, it still runs to its end and its process goes back to the
    /// pool.
    ///
    /// Errors: [`RuntimeError::Throttled`] when every slot stayed busy for `queue_wait_ms`;
    /// [`RuntimeError::Unsupported`] for a runtime sluice does not run, or a Python
    /// interpreter that is missing or lacks `awslambdaric` (the message says how to install
    /// it); [`RuntimeError::Io`] when a process cannot be started.
    pub async fn invoke(
        &self,
        spec: &FunctionSpec,
        invocation: Invocation,
    ) -> Result<InvokeResult, RuntimeError> {
        self.pools.invoke(spec, invocation).await
    }

    /// Stops every process of `function` (its code or configuration changed, or it was
    /// deleted); the next invocation starts fresh ones. Idle processes are killed at once;
    /// ones running an invocation are killed when it ends (at the latest at its deadline).
    pub fn retire(&self, function: &str) {
        self.pools.retire(function);
    }

    /// Stops every process, busy ones too, and waits (a bounded time) until they have ended.
    /// Invocations after it fail with [`RuntimeError::Unsupported`].
    pub async fn shutdown(&self) {
        self.pools.shutdown().await;
    }
}
