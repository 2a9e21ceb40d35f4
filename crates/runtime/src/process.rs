//! Starting and stopping one process of a function: its command (`python -m awslambdaric
//! <handler>` or `<code>/bootstrap`), its environment (Lambda's variables over the function's
//! own, nothing of sluice's but `PATH` and `HOME`), its own process group (so a timeout or a
//! retire ends whatever the handler started too), and the check that a Python interpreter has
//! `awslambdaric`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::process::Command;
use tokio::sync::watch;

use crate::api::Endpoint;
use crate::limits::PYTHON_PROBE_MS_MAX;
use crate::output::Output;
use crate::{FunctionSpec, RuntimeError, RuntimesConfig};

/// Variables Lambda sets that a function's own environment cannot change (Lambda refuses
/// them in CreateFunction / UpdateFunctionConfiguration; here they simply win).
pub const RESERVED_ENVIRONMENT_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// How a runtime's processes are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Launch {
    /// `<python> -m awslambdaric <handler>`.
    Python { python: PathBuf },
    /// `<code_dir>/bootstrap`.
    Bootstrap,
}

impl Launch {
    /// The launch for `spec.runtime`, or `Unsupported` for a runtime sluice cannot run.
    pub(crate) fn for_runtime(
        spec: &FunctionSpec,
        config: &RuntimesConfig,
    ) -> Result<Launch, RuntimeError> {
        let runtime = spec.runtime.as_str();
        if runtime
            .strip_prefix("python3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(Launch::Python {
                python: config.python.clone(),
            });
        }
        match runtime {
            "provided.al2023" | "provided.al2" | "provided" => Ok(Launch::Bootstrap),
            _ => Err(RuntimeError::Unsupported(format!(
                "function {}: runtime {runtime} is not supported by sluice (it runs python3.x, \
                 provided.al2023 and provided.al2)",
                spec.name
            ))),
        }
    }
}

/// Checks that `python` runs and imports `awslambdaric` (and its native client).
pub(crate) async fn probe_python(python: &Path, runtime: &str) -> Result<(), RuntimeError> {
    let install = format!(
        "install it with `{} -m pip install awslambdaric`, or point the runtimes' python setting \
         at a Python 3 that has it",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .args(["-c", "import awslambdaric.bootstrap, runtime_client"])
        .env_clear()
        .envs(base_environment())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(RuntimeError::Unsupported(format!(
                "runtime {runtime}: the Python interpreter {} was not found; {install}",
                python.display()
            )))
        }
        Err(error) => {
            return Err(RuntimeError::Unsupported(format!(
                "runtime {runtime}: the Python interpreter {} cannot be run ({error}); {install}",
                python.display()
            )))
        }
    };
    let waited = tokio::time::timeout(
        Duration::from_millis(PYTHON_PROBE_MS_MAX),
        child.wait_with_output(),
    )
    .await;
    match waited {
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().last().unwrap_or("").trim();
            Err(RuntimeError::Unsupported(format!(
                "runtime {runtime}: the Python interpreter {} cannot import the Lambda runtime \
                 interface client awslambdaric ({last}); {install}",
                python.display()
            )))
        }
        Ok(Err(error)) => Err(RuntimeError::Unsupported(format!(
            "runtime {runtime}: the Python interpreter {} failed ({error}); {install}",
            python.display()
        ))),
        Err(_) => Err(RuntimeError::Unsupported(format!(
            "runtime {runtime}: the Python interpreter {} did not import awslambdaric within \
             {PYTHON_PROBE_MS_MAX} ms",
            python.display()
        ))),
    }
}

/// The variables every process (and the probe) gets from sluice's own environment.
fn base_environment() -> Vec<(String, OsString)> {
    let mut env = vec![(
        "PATH".to_owned(),
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    )];
    if let Some(home) = std::env::var_os("HOME") {
        env.push(("HOME".to_owned(), home));
    }
    env
}

/// The environment of a process of `spec`: sluice's `PATH` and `HOME`, Lambda's defaults the
/// function may change (`LANG`, `TZ`, `AWS_ENDPOINT_URL`), the function's own variables, then
/// Lambda's reserved ones.
pub(crate) fn environment(
    spec: &FunctionSpec,
    runtime_api: &str,
    log_stream: &str,
) -> BTreeMap<String, OsString> {
    let mut env: BTreeMap<String, OsString> = base_environment().into_iter().collect();
    env.insert("LANG".to_owned(), "en_US.UTF-8".into());
    env.insert("TZ".to_owned(), ":UTC".into());
    env.insert("AWS_ENDPOINT_URL".to_owned(), (&spec.endpoint_url).into());
    for (key, value) in &spec.environment {
        if !RESERVED_ENVIRONMENT_KEYS.contains(&key.as_str()) {
            env.insert(key.clone(), value.into());
        }
    }
    let task_root: OsString = spec.code_dir.clone().into();
    let reserved: [(&str, OsString); 15] = [
        ("_HANDLER", (&spec.handler).into()),
        ("AWS_REGION", (&spec.region).into()),
        ("AWS_DEFAULT_REGION", (&spec.region).into()),
        (
            "AWS_EXECUTION_ENV",
            format!("AWS_Lambda_{}", spec.runtime).into(),
        ),
        ("AWS_LAMBDA_FUNCTION_NAME", (&spec.name).into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", (&spec.version).into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string().into(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name).into(),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.into()),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.into()),
        ("AWS_ACCESS_KEY_ID", (&spec.access_key_id).into()),
        ("AWS_SECRET_ACCESS_KEY", (&spec.secret_access_key).into()),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
    ];
    for (key, value) in reserved {
        env.insert(key.to_owned(), value);
    }
    env
}

/// `YYYY/MM/DD/[version]<32 hex>`, as Lambda names a log stream per execution environment.
pub(crate) fn log_stream_name(version: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (year, month, day) = civil_date(now.as_secs() / 86_400);
    // RandomState is seeded randomly per instance: enough for a unique name, no dependency.
    let mut id = String::with_capacity(32);
    for part in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(part);
        hasher.write_u128(now.as_nanos());
        id.push_str(&format!("{:016x}", hasher.finish()));
    }
    format!("{year:04}/{month:02}/{day:02}/[{version}]{id}")
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit(Option<ExitStatus>);

impl Exit {
    /// Lambda's account of it: `Runtime exited with error: exit status 3`, `... signal:
    /// killed`, or `Runtime exited without providing a reason` for a clean exit.
    pub(crate) fn lambda_reason(&self) -> String {
        let Some(status) = self.0 else {
            return "Runtime exited with error: unknown".to_owned();
        };
        if let Some(code) = status.code() {
            if code == 0 {
                return "Runtime exited without providing a reason".to_owned();
            }
            return format!("Runtime exited with error: exit status {code}");
        }
        match status.signal() {
            Some(signal) => format!("Runtime exited with error: signal: {}", signal_name(signal)),
            None => "Runtime exited with error: unknown".to_owned(),
        }
    }
}

/// Go's names for signals, which Lambda's messages use.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "hangup",
        2 => "interrupt",
        3 => "quit",
        4 => "illegal instruction",
        6 => "aborted",
        7 => "bus error",
        8 => "floating point exception",
        9 => "killed",
        11 => "segmentation fault",
        13 => "broken pipe",
        15 => "terminated",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

/// What stops a process and tells when it ended; shared with the pool's registry so that
/// `shutdown` reaches processes that are running an invocation.
#[derive(Debug)]
pub(crate) struct Control {
    pid: Option<i32>,
    exit: watch::Receiver<Option<Exit>>,
}

impl Control {
    /// Kills the process and its group (SIGKILL). Nothing once it has been reaped (its pid
    /// may be another process's by then).
    pub(crate) fn stop(&self) {
        if self.exit.borrow().is_some() {
            return;
        }
        if let Some(pid) = self.pid.and_then(rustix::process::Pid::from_raw) {
            kill_group(pid);
        }
    }

    pub(crate) fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Waits until the process has ended.
    pub(crate) async fn wait(&self) -> Exit {
        let mut exit = self.exit.clone();
        let ended = match exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.unwrap_or(Exit(None)),
            Err(_) => Exit(None),
        };
        ended
    }

    pub(crate) fn pid(&self) -> Option<i32> {
        self.pid
    }
}

fn kill_group(pid: rustix::process::Pid) {
    // The group first (the handler's children), then the process itself in case it left
    // its group. ESRCH (already gone) is fine.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// Why a process could not be started.
pub(crate) enum SpawnError {
    Runtime(RuntimeError),
    /// The `bootstrap` is missing or cannot be executed: Lambda's `Runtime.InvalidEntrypoint`,
    /// with Lambda's reason.
    InvalidEntrypoint(String),
}

/// One process of a function, with its Runtime API server and its output task. Dropping it
/// kills the process group.
pub(crate) struct Process {
    pub(crate) endpoint: Endpoint,
    pub(crate) output: Output,
    pub(crate) control: Arc<Control>,
    pub(crate) spawned_at: Instant,
    /// Invocations it has been given (the first reports the init duration).
    pub(crate) invocations: u64,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.control.stop();
    }
}

impl Process {
    pub(crate) async fn spawn(spec: &FunctionSpec, launch: &Launch) -> Result<Process, SpawnError> {
        let io = |source: std::io::Error| {
            SpawnError::Runtime(RuntimeError::Io {
                function: spec.name.clone(),
                source,
            })
        };
        let spawned_at = Instant::now();
        // One pipe for stdout and stderr: one log stream, in the order written.
        let (reader, writer) = std::io::pipe().map_err(io)?;
        let writer_err = writer.try_clone().map_err(io)?;
        let pipe =
            tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(io)?;
        let output = Output::start(pipe, spec.log_file.clone());
        let endpoint = Endpoint::bind(&spec.arn, output.clone())
            .await
            .map_err(io)?;
        let runtime_api = endpoint.addr().to_string();
        let log_stream = log_stream_name(&spec.version);

        let (program, args): (PathBuf, Vec<OsString>) = match launch {
            Launch::Python { python } => (
                python.clone(),
                vec!["-m".into(), "awslambdaric".into(), (&spec.handler).into()],
            ),
            Launch::Bootstrap => (spec.code_dir.join("bootstrap"), Vec::new()),
        };
        let mut command = Command::new(&program);
        command
            .args(&args)
            .current_dir(&spec.code_dir)
            .env_clear()
            .envs(environment(spec, &runtime_api, &log_stream))
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err)
            .process_group(0)
            .kill_on_drop(true);
        let spawned = command.spawn();
        // The command holds the pipe's write ends: without dropping it the pipe never ends.
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => return Err(spawn_failure(spec, launch, &program, error)),
        };
        let pid = child.id().and_then(|pid| i32::try_from(pid).ok());
        let (exit_tx, exit) = watch::channel(None);
        let function = spec.name.clone();
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            // The leader is gone: end what is left of its group (the handler's own children).
            if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            tracing::debug!(function, ?pid, ?status, "function process ended");
            exit_tx.send_replace(Some(Exit(status)));
        });
        tracing::debug!(
            function = spec.name,
            ?pid,
            runtime_api,
            "function process started"
        );
        Ok(Process {
            endpoint,
            output,
            control: Arc::new(Control { pid, exit }),
            spawned_at,
            invocations: 0,
        })
    }

    pub(crate) fn exited(&self) -> bool {
        self.control.exited()
    }
}

fn spawn_failure(
    spec: &FunctionSpec,
    launch: &Launch,
    program: &Path,
    error: std::io::Error,
) -> SpawnError {
    use std::io::ErrorKind;
    match launch {
        Launch::Python { .. } if error.kind() == ErrorKind::NotFound && !spec.code_dir.is_dir() => {
            SpawnError::Runtime(RuntimeError::Io {
                function: spec.name.clone(),
                source: error,
            })
        }
        Launch::Python { python } => SpawnError::Runtime(RuntimeError::Unsupported(format!(
            "runtime {}: the Python interpreter {} cannot be run ({error}); install Python 3 with \
             `pip install awslambdaric` and point the runtimes' python setting at it",
            spec.runtime,
            python.display()
        ))),
        Launch::Bootstrap => match error.kind() {
            ErrorKind::NotFound if spec.code_dir.is_dir() => SpawnError::InvalidEntrypoint(
                "Couldn't find valid bootstrap(s): [$LAMBDA_TASK_ROOT/bootstrap]".to_owned(),
            ),
            ErrorKind::PermissionDenied => SpawnError::InvalidEntrypoint(
                "fork/exec $LAMBDA_TASK_ROOT/bootstrap: permission denied".to_owned(),
            ),
            _ if error.raw_os_error() == Some(8) => SpawnError::InvalidEntrypoint(
                // ENOEXEC: not an executable this machine runs.
                "fork/exec $LAMBDA_TASK_ROOT/bootstrap: exec format error".to_owned(),
            ),
            _ => {
                tracing::debug!(program = %program.display(), %error, "cannot start bootstrap");
                SpawnError::Runtime(RuntimeError::Io {
                    function: spec.name.clone(),
                    source: error,
                })
            }
        },
    }
}

/// Peak resident memory of a process in MB (`VmHWM`), for `REPORT`'s "Max Memory Used".
pub(crate) async fn max_memory_used_mb(pid: Option<i32>) -> u64 {
    let Some(pid) = pid else {
        return 0;
    };
    let Ok(status) = tokio::fs::read_to_string(format!("/proc/{pid}/status")).await else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            name: "f".into(),
            version: "$LATEST".into(),
            arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            code_dir: "/code".into(),
            environment: BTreeMap::from([
                ("MINE".to_owned(), "1".to_owned()),
                ("AWS_REGION".to_owned(), "evil".to_owned()),
                ("TZ".to_owned(), "Europe/Paris".to_owned()),
            ]),
            timeout_ms: 3000,
            memory_mb: 256,
            concurrency_max: 2,
            region: "us-east-1".into(),
            endpoint_url: "http://127.0.0.1:4566".into(),
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            log_file: "/logs/f.log".into(),
        }
    }

    #[test]
    fn reserved_variables_win_over_the_functions_own() {
        let env = environment(&spec(), "127.0.0.1:9", "stream");
        let get = |k: &str| env.get(k).and_then(|v| v.to_str()).map(str::to_owned);
        assert_eq!(get("AWS_REGION").as_deref(), Some("us-east-1"));
        assert_eq!(get("MINE").as_deref(), Some("1"));
        assert_eq!(get("TZ").as_deref(), Some("Europe/Paris"));
        assert_eq!(
            get("AWS_LAMBDA_RUNTIME_API").as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(
            get("AWS_EXECUTION_ENV").as_deref(),
            Some("AWS_Lambda_python3.12")
        );
        assert_eq!(
            get("AWS_LAMBDA_LOG_GROUP_NAME").as_deref(),
            Some("/aws/lambda/f")
        );
        assert_eq!(
            get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
            Some("256")
        );
        assert!(env.contains_key("PATH"));
        for key in RESERVED_ENVIRONMENT_KEYS {
            if !["_X_AMZN_TRACE_ID", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY"].contains(key) {
                assert!(env.contains_key(*key), "{key} is set");
            }
        }
    }

    #[test]
    fn runtimes_sluice_runs_and_the_ones_it_does_not() {
        let config = RuntimesConfig {
            python: "/usr/bin/python3".into(),
            idle_ms: 1,
            queue_wait_ms: 1,
        };
        let mut s = spec();
        for (runtime, ok) in [
            ("python3.9", true),
            ("python3.13", true),
            ("provided.al2023", true),
            ("provided.al2", true),
            ("python3.", false),
            ("python3.x", false),
            ("nodejs20.x", false),
            ("java21", false),
        ] {
            s.runtime = runtime.to_owned();
            assert_eq!(Launch::for_runtime(&s, &config).is_ok(), ok, "{runtime}");
        }
    }

    #[test]
    fn civil_dates_and_log_stream_names() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        let name = log_stream_name("$LATEST");
        let (date, rest) = name.split_at(11);
        assert_eq!(date.matches('/').count(), 3);
        assert!(rest.starts_with("[$LATEST]"));
        assert_eq!(rest.len(), "[$LATEST]".len() + 32);
    }

    #[test]
    fn exits_in_lambdas_words() {
        assert_eq!(
            Exit(Some(ExitStatus::from_raw(3 << 8))).lambda_reason(),
            "Runtime exited with error: exit status 3"
        );
        assert_eq!(
            Exit(Some(ExitStatus::from_raw(9))).lambda_reason(),
            "Runtime exited with error: signal: killed"
        );
        assert_eq!(
            Exit(Some(ExitStatus::from_raw(0))).lambda_reason(),
            "Runtime exited without providing a reason"
        );
    }
}
