//! The process pools with real processes: Python handlers under the real `awslambdaric`
//! (from the workspace's `.venv`, which `scripts/test.sh` builds from
//! tests/python/requirements.txt), and a `provided.al2023` bootstrap written in bash + curl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sluice_runtime::limits::{LOG_TAIL_BYTES_MAX, RESPONSE_BYTES_MAX};
use sluice_runtime::{
    FunctionSpec, Invocation, InvokeOutcome, InvokeResult, RuntimeError, Runtimes, RuntimesConfig,
};

/// The handlers, one module for every test.
const APP: &str = r#"
import json, os, sys, time

print("module loaded")

def echo(event, context):
    print("echo got " + json.dumps(event))
    return {
        "event": event,
        "pid": os.getpid(),
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
    }

def environ(event, context):
    return dict(os.environ)

def fail(event, context):
    raise ValueError("it went wrong: " + event.get("why", ""))

def sleep(event, context):
    start = time.time()
    if event.get("pid_file"):
        import subprocess
        child = subprocess.Popen(["sleep", "60"])
        with open(event["pid_file"], "w") as f:
            f.write("%d %d" % (os.getpid(), child.pid))
    time.sleep(event.get("seconds", 0))
    return {"pid": os.getpid(), "start": start, "end": time.time()}

def crash(event, context):
    if event.get("crash"):
        print("about to exit", flush=True)
        os._exit(3)
    return {"pid": os.getpid()}

def chatty(event, context):
    for i in range(event.get("lines", 1)):
        print("line %d %s" % (i, event.get("text", "")))
    sys.stderr.write("to stderr\n")
    return "done"

def big(event, context):
    return "x" * event["n"]

def api_checks(event, context):
    import http.client
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    def post(path, headers={}):
        c = http.client.HTTPConnection(api)
        c.request("POST", path, b"{}", headers)
        r = c.getresponse()
        return [r.status, json.loads(r.read() or b"null")]
    return {
        "unknown_response": post("/2018-06-01/runtime/invocation/not-a-request/response"),
        "unknown_error": post("/2018-06-01/runtime/invocation/not-a-request/error"),
        "init_error_after_init": post(
            "/2018-06-01/runtime/init/error",
            {"Lambda-Runtime-Function-Error-Type": "Late"},
        ),
    }

def stream_self(event, context):
    # Answers its own invocation as a streamed response (chunked, maybe with error
    # trailers), as a response-streaming runtime does, then leaves.
    import base64, socket
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    s = socket.create_connection((host, int(port)))
    path = "/2018-06-01/runtime/invocation/%s/response" % context.aws_request_id
    head = (
        "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
        "Lambda-Runtime-Function-Response-Mode: streaming\r\n" % (path, host)
    )
    if event.get("fail"):
        head += "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
    s.sendall(head.encode() + b"\r\n")
    for chunk in [b"hello ", b"streamed ", b"world"]:
        s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    trailer = b""
    if event.get("fail"):
        body = base64.b64encode(json.dumps({"errorMessage": "midway", "errorType": "Oops"}).encode())
        trailer = b"Lambda-Runtime-Function-Error-Type: Oops\r\nLambda-Runtime-Function-Error-Body: " + body + b"\r\n"
    s.sendall(b"0\r\n" + trailer + b"\r\n")
    print("stream answered: " + s.recv(1024).split(b"\r\n")[0].decode(), flush=True)
    os._exit(0)
"#;

/// A custom runtime in bash: the Runtime API loop of AWS's custom runtime tutorial.
const BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  request_id=$(grep -Fi lambda-runtime-aws-request-id "$headers" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$headers"
  echo "bootstrap handling $request_id"
  curl -sS -o /dev/null -X POST "$api/invocation/$request_id/response" \
    -d "{\"got\": $event, \"handler\": \"$_HANDLER\", \"pid\": $$}"
done
"#;

fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh, which creates .venv and installs \
         tests/python/requirements.txt (awslambdaric among them)",
        path.display()
    );
    path
}

struct Setup {
    dir: tempfile::TempDir,
    runtimes: Runtimes,
}

fn setup(idle_ms: u64, queue_wait_ms: u64) -> Setup {
    setup_with_python(python(), idle_ms, queue_wait_ms)
}

fn setup_with_python(python: PathBuf, idle_ms: u64, queue_wait_ms: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("app.py"), APP).unwrap();
    let runtimes = Runtimes::new(RuntimesConfig {
        python,
        idle_ms,
        queue_wait_ms,
    });
    Setup { dir, runtimes }
}

impl Setup {
    fn spec(&self, handler: &str) -> FunctionSpec {
        let name = format!("fn-{}", handler.replace('.', "-"));
        FunctionSpec {
            arn: format!("arn:aws:lambda:eu-west-1:000000000000:function:{name}"),
            name: name.clone(),
            version: "$LATEST".into(),
            runtime: "python3.11".into(),
            handler: handler.into(),
            code_dir: self.dir.path().join("code"),
            environment: BTreeMap::new(),
            timeout_ms: 10_000,
            memory_mb: 256,
            concurrency_max: 2,
            region: "eu-west-1".into(),
            endpoint_url: "http://127.0.0.1:4567".into(),
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret-test".into(),
            log_file: self.dir.path().join("logs").join(format!("{name}.log")),
        }
    }

    fn log(&self, spec: &FunctionSpec) -> String {
        std::fs::read_to_string(&spec.log_file).unwrap_or_default()
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn invocation(payload: Value, timeout_ms: u64) -> Invocation {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Invocation {
        request_id: format!("{n:08x}-0000-4000-8000-{:012x}", epoch_ms()),
        payload: payload.to_string().into(),
        deadline_ms: epoch_ms() + timeout_ms as i64,
        trace_id: Some("Root=1-00000000-000000000000000000000000;Sampled=0".into()),
        client_context: None,
        cognito_identity: None,
    }
}

fn success(result: &InvokeResult) -> Value {
    match &result.outcome {
        InvokeOutcome::Success(body) => serde_json::from_slice(body).unwrap(),
        other => panic!(
            "expected a success, got {other:?}\n--- tail:\n{}",
            String::from_utf8_lossy(&result.log_tail)
        ),
    }
}

async fn invoke_ok(runtimes: &Runtimes, spec: &FunctionSpec, payload: Value) -> Value {
    let result = runtimes
        .invoke(spec, invocation(payload, spec.timeout_ms))
        .await
        .unwrap();
    success(&result)
}

/// Whether `pid` is a running process (a zombie is not).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

async fn wait_dead(pid: u64, within: Duration) -> bool {
    let give_up = Instant::now() + within;
    while Instant::now() < give_up {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !alive(pid)
}

/// Waits until the log file has `needle` (writes finish on the blocking pool).
async fn wait_log(setup: &Setup, spec: &FunctionSpec, needle: &str) -> String {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let log = setup.log(spec);
        if log.contains(needle) || Instant::now() > give_up {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_returns_json_with_the_event_and_its_context() {
    let setup = setup(60_000, 1_000);
    let mut spec = setup.spec("app.echo");
    // awslambdaric polls for events from a thread of its own under python3.12 and later.
    spec.runtime = "python3.12".into();
    let inv = invocation(json!({"hello": "world", "n": [1, 2, 3]}), spec.timeout_ms);
    let request_id = inv.request_id.clone();
    let result = setup.runtimes.invoke(&spec, inv).await.unwrap();
    let out = success(&result);
    assert_eq!(out["event"], json!({"hello": "world", "n": [1, 2, 3]}));
    assert_eq!(out["aws_request_id"], request_id.as_str());
    assert_eq!(out["function_name"], spec.name.as_str());
    assert_eq!(out["function_version"], "$LATEST");
    assert_eq!(out["memory_limit_in_mb"], "256");
    assert_eq!(out["invoked_function_arn"], spec.arn.as_str());
    assert_eq!(out["log_group_name"], format!("/aws/lambda/{}", spec.name));
    assert!(out["log_stream_name"]
        .as_str()
        .unwrap()
        .contains("/[$LATEST]"));
    let remaining = out["remaining_ms"].as_i64().unwrap();
    assert!(
        remaining > 0 && remaining <= spec.timeout_ms as i64,
        "remaining {remaining}"
    );
    assert!(result.duration_ms < spec.timeout_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_sees_lambdas_environment_and_its_own_but_not_sluices() {
    let setup = setup(60_000, 1_000);
    let mut spec = setup.spec("app.environ");
    spec.environment = BTreeMap::from([
        ("MY_SETTING".to_owned(), "42".to_owned()),
        ("AWS_REGION".to_owned(), "evil-region".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), "evil".to_owned()),
        ("AWS_LAMBDA_RUNTIME_API".to_owned(), "evil:1".to_owned()),
        ("TZ".to_owned(), "Europe/Paris".to_owned()),
    ]);
    let env = invoke_ok(&setup.runtimes, &spec, json!({})).await;
    let var = |k: &str| env[k].as_str().map(str::to_owned);
    assert_eq!(
        var("AWS_ENDPOINT_URL").as_deref(),
        Some("http://127.0.0.1:4567")
    );
    assert_eq!(var("AWS_LAMBDA_FUNCTION_NAME"), Some(spec.name.clone()));
    assert_eq!(var("MY_SETTING").as_deref(), Some("42"));
    assert_eq!(var("AWS_REGION").as_deref(), Some("eu-west-1"));
    assert_eq!(var("AWS_DEFAULT_REGION").as_deref(), Some("eu-west-1"));
    assert!(var("AWS_LAMBDA_RUNTIME_API")
        .unwrap()
        .starts_with("127.0.0.1:"));
    // TZ is Lambda's default but the function's to change.
    assert_eq!(var("TZ").as_deref(), Some("Europe/Paris"));
    assert_eq!(var("AWS_ACCESS_KEY_ID").as_deref(), Some("AKIDTEST"));
    assert_eq!(var("AWS_SECRET_ACCESS_KEY").as_deref(), Some("secret-test"));
    assert_eq!(
        var("AWS_LAMBDA_FUNCTION_VERSION").as_deref(),
        Some("$LATEST")
    );
    assert_eq!(
        var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
        Some("256")
    );
    assert_eq!(var("_HANDLER").as_deref(), Some("app.environ"));
    assert_eq!(
        var("AWS_EXECUTION_ENV").as_deref(),
        Some("AWS_Lambda_python3.11")
    );
    assert_eq!(
        var("LAMBDA_TASK_ROOT").map(PathBuf::from),
        Some(spec.code_dir.clone())
    );
    assert_eq!(
        var("AWS_LAMBDA_LOG_GROUP_NAME"),
        Some(format!("/aws/lambda/{}", spec.name))
    );
    assert!(var("AWS_LAMBDA_LOG_STREAM_NAME").is_some());
    assert!(var("LANG").is_some());
    assert!(var("PATH").is_some());
    // Nothing else of sluice's environment reaches the handler. (Python adds LC_CTYPE when it
    // coerces a missing locale to C.UTF-8; awslambdaric sets _X_AMZN_TRACE_ID from the event.)
    let expected = [
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "LC_CTYPE",
        "_X_AMZN_TRACE_ID",
        "MY_SETTING",
        "AWS_ENDPOINT_URL",
        "_HANDLER",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    ];
    let leaked: Vec<&String> = env
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !expected.contains(&k.as_str()))
        .collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_raises_is_a_function_error() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.fail");
    let result = setup
        .runtimes
        .invoke(
            &spec,
            invocation(json!({"why": "because"}), spec.timeout_ms),
        )
        .await
        .unwrap();
    let InvokeOutcome::FunctionError {
        error_type,
        payload,
    } = &result.outcome
    else {
        panic!("expected a function error, got {:?}", result.outcome);
    };
    assert_eq!(error_type, "Unhandled");
    let body: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "it went wrong: because");
    assert!(!body["stackTrace"].as_array().unwrap().is_empty());
    // awslambdaric logs the error too: it is in the tail.
    let tail = String::from_utf8_lossy(&result.log_tail);
    assert!(tail.contains("it went wrong: because"), "{tail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_deadline_the_process_group_is_killed_and_the_next_invoke_gets_a_new_process() {
    let setup = setup(60_000, 1_000);
    let mut spec = setup.spec("app.sleep");
    spec.timeout_ms = 1_000;
    let pid_file = setup.dir.path().join("pids");
    let started = Instant::now();
    let result = setup
        .runtimes
        .invoke(
            &spec,
            invocation(
                json!({"seconds": 30, "pid_file": pid_file}),
                spec.timeout_ms,
            ),
        )
        .await
        .unwrap();
    assert_eq!(result.outcome, InvokeOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(8));
    let pids = std::fs::read_to_string(&pid_file).unwrap();
    let (pid, child): (u64, u64) = {
        let mut it = pids.split(' ').map(|p| p.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    assert!(
        wait_dead(pid, Duration::from_secs(3)).await,
        "handler {pid} still runs"
    );
    assert!(
        wait_dead(child, Duration::from_secs(3)).await,
        "the handler's child {child} still runs"
    );
    let log = wait_log(&setup, &spec, "Status: timeout").await;
    assert!(log.contains("Task timed out after 1.00 seconds"), "{log}");

    let next = invoke_ok(&setup.runtimes, &spec, json!({"seconds": 0})).await;
    assert_ne!(next["pid"].as_u64().unwrap(), pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_exits_midway_is_runtime_exit_error_and_is_replaced() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.crash");
    let first = invoke_ok(&setup.runtimes, &spec, json!({})).await;
    let inv = invocation(json!({"crash": true}), spec.timeout_ms);
    let request_id = inv.request_id.clone();
    let result = setup.runtimes.invoke(&spec, inv).await.unwrap();
    assert_eq!(
        result.outcome,
        InvokeOutcome::RuntimeFailed {
            error_type: "Runtime.ExitError".into(),
            message: format!(
                "RequestId: {request_id} Error: Runtime exited with error: exit status 3"
            ),
        }
    );
    let tail = String::from_utf8_lossy(&result.log_tail);
    assert!(tail.contains("about to exit"), "{tail}");
    let next = invoke_ok(&setup.runtimes, &spec, json!({})).await;
    assert_ne!(next["pid"], first["pid"]);
}

/// Two invocations of `app.sleep` (1 s each), the second once the first's handler runs.
async fn two_sleeps(
    setup: &Arc<Setup>,
    spec: &FunctionSpec,
) -> (
    Result<InvokeResult, RuntimeError>,
    Result<InvokeResult, RuntimeError>,
) {
    let pid_file = setup.dir.path().join(format!("first-{}", spec.name));
    let a = {
        let (setup, spec, pid_file) = (Arc::clone(setup), spec.clone(), pid_file.clone());
        tokio::spawn(async move {
            let event = json!({"seconds": 1, "pid_file": pid_file});
            setup
                .runtimes
                .invoke(&spec, invocation(event, spec.timeout_ms))
                .await
        })
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = setup
        .runtimes
        .invoke(spec, invocation(json!({"seconds": 1}), spec.timeout_ms))
        .await;
    (a.await.unwrap(), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_invocations_run_in_two_processes_up_to_the_concurrency() {
    let setup = Arc::new(setup(60_000, 5_000));
    let spec = setup.spec("app.sleep");
    let (a, b) = two_sleeps(&setup, &spec).await;
    let (a, b) = (success(&a.unwrap()), success(&b.unwrap()));
    assert_ne!(a["pid"], b["pid"]);
    let (a_start, a_end) = (a["start"].as_f64().unwrap(), a["end"].as_f64().unwrap());
    let (b_start, b_end) = (b["start"].as_f64().unwrap(), b["end"].as_f64().unwrap());
    assert!(a_start < b_end && b_start < a_end, "{a} {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_concurrency_one_the_second_invocation_waits_for_the_process() {
    let setup = Arc::new(setup(60_000, 5_000));
    let mut spec = setup.spec("app.sleep");
    spec.concurrency_max = 1;
    let (a, b) = two_sleeps(&setup, &spec).await;
    let (a, b) = (success(&a.unwrap()), success(&b.unwrap()));
    assert_eq!(a["pid"], b["pid"]);
    assert!(b["start"].as_f64().unwrap() >= a["end"].as_f64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_concurrency_one_and_a_short_queue_wait_the_second_is_throttled() {
    let setup = Arc::new(setup(60_000, 100));
    let mut spec = setup.spec("app.sleep");
    spec.concurrency_max = 1;
    let (a, b) = two_sleeps(&setup, &spec).await;
    success(&a.unwrap());
    match b {
        Err(RuntimeError::Throttled { function, limit }) => {
            assert_eq!(function, spec.name);
            assert_eq!(limit, 1);
        }
        other => panic!("expected throttling, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_process_is_reused_until_the_spec_changes() {
    let setup = setup(60_000, 1_000);
    let mut spec = setup.spec("app.echo");
    let mut pids = Vec::new();
    for _ in 0..3 {
        pids.push(invoke_ok(&setup.runtimes, &spec, json!({})).await["pid"].clone());
    }
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    let log = wait_log(&setup, &spec, "").await;
    assert_eq!(log.matches("REPORT RequestId").count(), 3, "{log}");
    assert_eq!(log.matches("Init Duration").count(), 1, "{log}");

    // A changed configuration starts a fresh process; the old one stops.
    spec.environment.insert("CHANGED".into(), "1".into());
    let changed = invoke_ok(&setup.runtimes, &spec, json!({})).await;
    assert_ne!(changed["pid"], pids[0]);
    let old = pids[0].as_u64().unwrap();
    assert!(wait_dead(old, Duration::from_secs(3)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_stops_the_functions_processes() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.echo");
    let pid = invoke_ok(&setup.runtimes, &spec, json!({})).await["pid"]
        .as_u64()
        .unwrap();
    assert!(alive(pid));
    setup.runtimes.retire("some-other-function");
    assert!(alive(pid));
    setup.runtimes.retire(&spec.name);
    assert!(wait_dead(pid, Duration::from_secs(3)).await);
    let next = invoke_ok(&setup.runtimes, &spec, json!({})).await["pid"]
        .as_u64()
        .unwrap();
    assert_ne!(next, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_processes_stop_after_idle_ms() {
    let setup = setup(300, 1_000);
    let spec = setup.spec("app.echo");
    let pid = invoke_ok(&setup.runtimes, &spec, json!({})).await["pid"]
        .as_u64()
        .unwrap();
    assert!(wait_dead(pid, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_busy_processes_too() {
    let setup = Arc::new(setup(60_000, 1_000));
    let spec = setup.spec("app.sleep");
    let pid_file = setup.dir.path().join("pids");
    let running = {
        let (setup, spec, pid_file) = (Arc::clone(&setup), spec.clone(), pid_file.clone());
        tokio::spawn(async move {
            setup
                .runtimes
                .invoke(
                    &spec,
                    invocation(json!({"seconds": 30, "pid_file": pid_file}), 60_000),
                )
                .await
        })
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: u64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    setup.runtimes.shutdown().await;
    assert!(!alive(pid));
    let result = running.await.unwrap().unwrap();
    assert!(
        matches!(&result.outcome, InvokeOutcome::RuntimeFailed { error_type, message }
            if error_type == "Runtime.ExitError" && message.ends_with("signal: killed")),
        "{:?}",
        result.outcome
    );
    let after = setup
        .runtimes
        .invoke(&spec, invocation(json!({}), 1_000))
        .await;
    assert!(
        matches!(after, Err(RuntimeError::Unsupported(_))),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_file_has_start_end_report_around_the_output_and_the_tail_the_last_4_kb() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.chatty");
    let inv = invocation(json!({"lines": 2, "text": "hi"}), spec.timeout_ms);
    let id = inv.request_id.clone();
    let result = setup.runtimes.invoke(&spec, inv).await.unwrap();
    assert_eq!(success(&result), json!("done"));
    let tail = String::from_utf8_lossy(&result.log_tail).into_owned();
    let expected_start = format!("START RequestId: {id} Version: $LATEST\n");
    assert!(tail.starts_with(&expected_start), "{tail}");
    let end = tail.find(&format!("END RequestId: {id}\n")).unwrap();
    for line in ["line 0 hi\n", "line 1 hi\n", "to stderr\n"] {
        let at = tail
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} not in {tail}"));
        assert!(at < end, "{tail}");
    }
    let report = tail.lines().last().unwrap();
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{report}"
    );
    for field in [
        "Billed Duration: ",
        "Memory Size: 256 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ] {
        assert!(report.contains(field), "{field} not in {report}");
    }

    let log = wait_log(&setup, &spec, &format!("REPORT RequestId: {id}")).await;
    let start = log.find(&expected_start).unwrap();
    // What the process writes while it initialises comes before the first START.
    assert!(log.find("module loaded\n").unwrap() < start, "{log}");
    assert!(!tail.contains("module loaded"), "{tail}");
    let printed = log.find("line 1 hi\n").unwrap();
    let end = log.find(&format!("END RequestId: {id}\n")).unwrap();
    let report = log.find(&format!("REPORT RequestId: {id}")).unwrap();
    assert!(start < printed && printed < end && end < report, "{log}");

    // 10 KB of output: the tail is its last 4 KB, ending with REPORT; the file has it all.
    let inv = invocation(
        json!({"lines": 100, "text": "y".repeat(100)}),
        spec.timeout_ms,
    );
    let id = inv.request_id.clone();
    let result = setup.runtimes.invoke(&spec, inv).await.unwrap();
    assert_eq!(result.log_tail.len(), LOG_TAIL_BYTES_MAX);
    let tail = String::from_utf8_lossy(&result.log_tail).into_owned();
    assert!(tail.contains("line 99 "), "{tail}");
    assert!(!tail.contains("line 0 "), "{tail}");
    assert!(tail.contains(&format!("END RequestId: {id}\nREPORT RequestId: {id}")));
    let log = wait_log(&setup, &spec, &format!("REPORT RequestId: {id}")).await;
    assert!(log.contains("line 0 yyy"));
    assert!(log.contains("line 99 yyy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_without_awslambdaric_or_no_python_is_unsupported_and_says_how_to_install() {
    // A virtual environment of the same Python, without awslambdaric.
    let venv = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(python())
        .args(["-m", "venv", "--without-pip"])
        .arg(venv.path())
        .status()
        .unwrap();
    assert!(status.success());
    let bare = setup_with_python(venv.path().join("bin/python"), 60_000, 1_000);
    let spec = bare.spec("app.echo");
    let error = bare
        .runtimes
        .invoke(&spec, invocation(json!({}), 1_000))
        .await
        .unwrap_err();
    let RuntimeError::Unsupported(message) = error else {
        panic!("expected Unsupported, got {error:?}");
    };
    assert!(message.contains("awslambdaric"), "{message}");
    assert!(message.contains("pip install awslambdaric"), "{message}");

    let missing = setup_with_python("/nonexistent/bin/python3".into(), 60_000, 1_000);
    let error = missing
        .runtimes
        .invoke(&missing.spec("app.echo"), invocation(json!({}), 1_000))
        .await
        .unwrap_err();
    let RuntimeError::Unsupported(message) = error else {
        panic!("expected Unsupported, got {error:?}");
    };
    assert!(message.contains("not found"), "{message}");
    assert!(message.contains("pip install awslambdaric"), "{message}");

    let mut node = missing.spec("app.echo");
    node.runtime = "nodejs22.x".into();
    let error = missing
        .runtimes
        .invoke(&node, invocation(json!({}), 1_000))
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Unsupported(m) if m.contains("nodejs22.x")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_does_not_import_is_an_init_error() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("no_such_module.handler");
    let result = setup
        .runtimes
        .invoke(&spec, invocation(json!({}), spec.timeout_ms))
        .await
        .unwrap();
    match &result.outcome {
        InvokeOutcome::RuntimeFailed {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "Runtime.ImportModuleError");
            assert!(
                message.contains("Unable to import module 'no_such_module'"),
                "{message}"
            );
        }
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_of_6_mb_passes_and_one_byte_more_is_function_response_size_too_large() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.big");
    // The handler's string comes back as JSON: two quotes around it.
    let result = setup
        .runtimes
        .invoke(
            &spec,
            invocation(json!({"n": RESPONSE_BYTES_MAX - 2}), 30_000),
        )
        .await
        .unwrap();
    match &result.outcome {
        InvokeOutcome::Success(body) => assert_eq!(body.len(), RESPONSE_BYTES_MAX),
        other => panic!("expected a success, got {other:?}"),
    }
    let result = setup
        .runtimes
        .invoke(
            &spec,
            invocation(json!({"n": RESPONSE_BYTES_MAX - 1}), 30_000),
        )
        .await
        .unwrap();
    assert_eq!(
        result.outcome,
        InvokeOutcome::RuntimeFailed {
            error_type: "Function.ResponseSizeTooLarge".into(),
            message: format!(
                "Response payload size exceeded maximum allowed payload size \
                 ({RESPONSE_BYTES_MAX} bytes)."
            ),
        }
    );
    // The function still answers afterwards (on the same process or a new one).
    let small = setup
        .runtimes
        .invoke(&spec, invocation(json!({"n": 3}), 30_000))
        .await
        .unwrap();
    assert_eq!(success(&small), json!("xxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_refuses_unknown_request_ids_and_a_late_init_error() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.api_checks");
    let out = invoke_ok(&setup.runtimes, &spec, json!({})).await;
    let invalid =
        json!([400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}]);
    assert_eq!(out["unknown_response"], invalid);
    assert_eq!(out["unknown_error"], invalid);
    assert_eq!(out["init_error_after_init"][0], 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_is_accepted_chunked_and_its_error_trailers_are_read() {
    let setup = setup(60_000, 1_000);
    let spec = setup.spec("app.stream_self");
    let result = setup
        .runtimes
        .invoke(&spec, invocation(json!({}), spec.timeout_ms))
        .await
        .unwrap();
    assert_eq!(
        result.outcome,
        InvokeOutcome::Success("hello streamed world".into())
    );
    let result = setup
        .runtimes
        .invoke(&spec, invocation(json!({"fail": true}), spec.timeout_ms))
        .await
        .unwrap();
    let InvokeOutcome::FunctionError {
        error_type,
        payload,
    } = &result.outcome
    else {
        panic!("expected a function error, got {:?}", result.outcome);
    };
    assert_eq!(error_type, "Oops");
    let body: Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(body["errorMessage"], "midway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provided_runtime_runs_the_bootstrap_and_a_missing_one_is_invalid_entrypoint() {
    use std::os::unix::fs::PermissionsExt as _;
    let setup = setup(60_000, 1_000);
    let mut spec = setup.spec("function.handler");
    spec.runtime = "provided.al2023".into();
    let missing = setup
        .runtimes
        .invoke(&spec, invocation(json!({}), spec.timeout_ms))
        .await
        .unwrap();
    assert!(
        matches!(&missing.outcome, InvokeOutcome::RuntimeFailed { error_type, .. }
            if error_type == "Runtime.InvalidEntrypoint"),
        "{:?}",
        missing.outcome
    );

    let bootstrap = spec.code_dir.join("bootstrap");
    std::fs::write(&bootstrap, BOOTSTRAP).unwrap();
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = invoke_ok(&setup.runtimes, &spec, json!({"a": 1})).await;
    assert_eq!(first["got"], json!({"a": 1}));
    assert_eq!(first["handler"], "function.handler");
    let second = invoke_ok(&setup.runtimes, &spec, json!({"a": 2})).await;
    assert_eq!(second["pid"], first["pid"]);
    let log = wait_log(&setup, &spec, "bootstrap handling").await;
    assert!(log.contains("bootstrap handling"), "{log}");
}
