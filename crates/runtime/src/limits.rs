//! Every limit of the process pools and of the Runtime API, in one place.

/// The largest response (or error) body a runtime may post for one invocation: Lambda's 6 MB
/// for synchronous invocations, counted as Lambda counts it (6 MiB and 100 bytes; one byte
/// more fails the invocation with `Function.ResponseSizeTooLarge`).
pub const RESPONSE_BYTES_MAX: usize = 6 * 1024 * 1024 + 100;

/// The tail of an invocation's output kept for `InvokeResult::log_tail` (`LogType: Tail`).
pub const LOG_TAIL_BYTES_MAX: usize = 4 * 1024;

/// A line of a process's output longer than this is cut into lines of this size (CloudWatch
/// Logs' limit for one event).
pub const LOG_LINE_BYTES_MAX: usize = 256 * 1024;

/// How long a new process may take to initialise (reach `GET /next`), as Lambda's init phase:
/// past it the invocation times out and the process is stopped. Not counted in the
/// invocation's own timeout.
pub const INIT_MS_MAX: u64 = 10_000;

/// Invocations of one function waiting for a process at most; more are throttled at once.
pub const WAITERS_MAX: usize = 1_000;

/// How long `Runtimes::shutdown` waits for the killed processes to be reaped.
pub const SHUTDOWN_WAIT_MS: u64 = 5_000;

/// How long checking a Python interpreter for `awslambdaric` may take.
pub const PYTHON_PROBE_MS_MAX: u64 = 30_000;

/// After a process ends, how long its output is still read (a handler's own children may hold
/// the pipe open; they are killed with the process group).
pub const OUTPUT_DRAIN_MS_MAX: u64 = 2_000;

/// How long the end of an invocation waits for the output the process wrote before answering.
pub const OUTPUT_SYNC_MS_MAX: u64 = 1_000;
