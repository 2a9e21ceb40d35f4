"""Lambda's `provided.al2023` / `provided.al2` runtimes with a real Rust handler: the fixture
tests/fixtures/rust-bootstrap is built with the official `lambda_runtime` crate (crates.io) into
an executable `bootstrap`, zipped as is, and run by sluice unmodified through the Runtime API.

scripts/test.sh builds it and sets SLUICE_RUST_BOOTSTRAP to the binary; without that variable
the tests look at the path scripts/test.sh builds to, and skip (saying how to build it) if the
binary is not there.

The handler (tests/fixtures/rust-bootstrap/src/main.rs): `{"fail": true}` returns an Err (a
function error), `{"sleep_ms": n}` sleeps first, and it answers
`{"echo": event, "request_id", "function_name", "memory", "pid"}`, printing a line per event.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import REPO, Server, _start_server, _stop, unique_name
from test_lambda import create, invoke, lambda_client, make_zip, wait_for_log

DEFAULT_BOOTSTRAP = REPO / "target" / "fixtures" / "release" / "bootstrap"
BUILD_HINT = ("CARGO_TARGET_DIR=target/fixtures cargo build --release --locked "
              "--manifest-path tests/fixtures/rust-bootstrap/Cargo.toml")


def _bootstrap_path() -> Path | None:
    env = os.environ.get("SLUICE_RUST_BOOTSTRAP")
    if env:
        return Path(env)
    return DEFAULT_BOOTSTRAP if DEFAULT_BOOTSTRAP.is_file() else None


@pytest.fixture(scope="module")
def bootstrap_zip() -> bytes:
    path = _bootstrap_path()
    if path is None:
        pytest.skip(f"the Rust bootstrap fixture is not built: SLUICE_RUST_BOOTSTRAP is unset and "
                    f"{DEFAULT_BOOTSTRAP} does not exist (build it with `{BUILD_HINT}`)")
    # Set explicitly (scripts/test.sh does): a missing binary is a failure, not a skip.
    assert path.is_file(), f"SLUICE_RUST_BOOTSTRAP={path} is not a file"
    return make_zip({"bootstrap": path.read_bytes()}, executable=("bootstrap",))


@pytest.fixture(scope="module")
def rs_server(aws_env, tmp_path_factory):
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield Server(external.rstrip("/"), None, None, None, None)
        return
    srv = _start_server(tmp_path_factory.mktemp("sluice-rust-data"),
                        tmp_path_factory.mktemp("sluice-rust-logs"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def lam(rs_server):
    return lambda_client(rs_server.endpoint)


@pytest.fixture(scope="module")
def data_dir(rs_server) -> Path:
    if rs_server.data_dir is None:
        pytest.skip("needs the server's data directory (`sluice logs`); SLUICE_ENDPOINT points elsewhere")
    return rs_server.data_dir


@pytest.fixture
def rust_function(lam, bootstrap_zip):
    """Factory: create a function from the Rust bootstrap, delete it at teardown."""
    created: list[str] = []

    def make(prefix: str = "rs", runtime: str = "provided.al2023", **kw) -> str:
        name = unique_name(prefix)
        created.append(name)
        resp = create(lam, name, bootstrap_zip, handler="bootstrap", runtime=runtime, **kw)
        assert resp["Runtime"] == runtime
        lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 15})
        return name

    yield make
    for name in created:
        try:
            lam.delete_function(FunctionName=name)
        except ClientError:
            pass


def request_id_of(resp) -> str:
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def ok_body(resp) -> dict:
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
    return json.loads(resp["Body"])


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_request_response_echoes_with_the_invocation_context(lam, rust_function, runtime):
    name = rust_function(runtime=runtime, MemorySize=256)
    event = {"a": [1, 2, 3], "nested": {"s": "x"}}
    resp = invoke(lam, name, event)
    body = ok_body(resp)
    assert resp["ExecutedVersion"] == "$LATEST"
    assert body["echo"] == event
    # As on AWS, the invocation's request id (Lambda-Runtime-Aws-Request-Id, the handler's
    # context.request_id) is the Invoke response's x-amzn-RequestId.
    assert body["request_id"] == request_id_of(resp)
    assert body["function_name"] == name
    assert body["memory"] == "256"
    assert isinstance(body["pid"], int)
    # Warm: the next invocation runs on the same process, with its own request id.
    again = invoke(lam, name, {"n": 2})
    body2 = ok_body(again)
    assert body2["echo"] == {"n": 2}
    assert body2["pid"] == body["pid"]
    assert body2["request_id"] == request_id_of(again) != body["request_id"]


def test_an_err_is_a_function_error_with_lambda_runtimes_document(lam, rust_function):
    name = rust_function(prefix="rsfail")
    resp = invoke(lam, name, {"fail": True}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == "Unhandled"
    body = json.loads(resp["Body"])
    # lambda_runtime's Diagnostic: errorType is the Rust type name of the error value (for
    # lambda_runtime::Error, a boxed dyn Error), errorMessage its Display.
    assert set(body) == {"errorType", "errorMessage"}, body
    assert "Box<dyn core::error::Error" in body["errorType"], body
    assert body["errorMessage"] == 'asked to fail: {"fail":true}'
    # The process survives a function error: the next invocation is answered.
    assert ok_body(invoke(lam, name, {"after": "fail"}))["echo"] == {"after": "fail"}


def test_event_invocation_runs_in_the_background(lam, rust_function, data_dir):
    name = rust_function(prefix="rsevent")
    marker = unique_name("async")
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"marker": marker}))
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    wait_for_log(data_dir, name, f'rust-bootstrap got {{"marker":"{marker}"}}')
    # REPORT is logged once the invocation has ended, after the handler's own line.
    out = wait_for_log(data_dir, name, "REPORT RequestId:")
    assert "START RequestId:" in out and "REPORT RequestId:" in out
    assert f'rust-bootstrap got {{"marker":"{marker}"}}' in out


def test_a_timeout_is_sandbox_timedout_and_the_next_invoke_gets_a_fresh_process(lam, rust_function):
    name = rust_function(prefix="rsslow", Timeout=1)
    first_pid = ok_body(invoke(lam, name, {}))["pid"]
    started = time.monotonic()
    resp = invoke(lam, name, {"sleep_ms": 3000})
    assert time.monotonic() - started < 2.9, "the invocation was not cut at its 1 s timeout"
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Body"])
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id_of(resp)} Error: Task timed out after 1.00 seconds",
    }
    after = ok_body(invoke(lam, name, {"after": "timeout"}))
    assert after["echo"] == {"after": "timeout"}
    assert after["pid"] != first_pid, "the timed-out process was reused"


def test_overlapping_invocations_run_on_two_processes_at_once(lam, rust_function):
    name = rust_function(prefix="rsconc")
    # Warm one process, so that at least one of the two invocations below needs a cold start.
    ok_body(invoke(lam, name, {}))
    results: list = [None, None]

    def run(i: int):
        try:
            results[i] = invoke(lam, name, {"sleep_ms": 1500, "i": i})
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - started
    bodies = [ok_body(r) if isinstance(r, dict) else pytest.fail(f"invoke failed: {r!r}") for r in results]
    assert [b["echo"]["i"] for b in bodies] == [0, 1]
    assert bodies[0]["pid"] != bodies[1]["pid"], bodies
    assert bodies[0]["request_id"] != bodies[1]["request_id"]
    # In parallel: about 1.5 s, not the 3 s of one after the other.
    assert elapsed < 2.7, f"two overlapping 1.5 s invocations took {elapsed:.2f} s"
