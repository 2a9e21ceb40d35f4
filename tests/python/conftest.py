"""Shared fixtures for the sluice end-to-end tests.

The suite starts one `sluice serve` process per test session (fresh temporary data
directory, port chosen by the OS) and talks to it with boto3, the AWS CLI v1 and raw
HTTP.  Set SLUICE_BIN to test another build of the binary, or SLUICE_ENDPOINT
(e.g. http://127.0.0.1:4567) to run the suite against a server that is already up.
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import io
import json
import os
import queue
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "000000000000"
ACCESS_KEY = "test"
SECRET_KEY = "test"
TARGET_PREFIX = "Kinesis_20131202."
JSON_CT = "application/x-amz-json-1.1"
CBOR_CT = "application/x-amz-cbor-1.1"
HASH_MAX = 2**128 - 1
READY_RE = re.compile(r"sluice listening on (http://127\.0\.0\.1:(\d+))")
START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------
# Small pure helpers (importable from the test modules)
# --------------------------------------------------------------------------------------

def unique_name(prefix: str) -> str:
    """A stream name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stream_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{name}"


def md5_hash_key(partition_key: str) -> int:
    """The hash key Kinesis routes a partition key by: MD5 of its UTF-8, big-endian."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def even_ranges(n: int) -> list[tuple[int, int]]:
    """How AWS splits 0..2^128-1 over n shards at creation."""
    step = 2**128 // n
    out = []
    for i in range(n):
        start = step * i
        end = HASH_MAX if i == n - 1 else step * (i + 1) - 1
        out.append((start, end))
    return out


def shard_for_hash(shards: list[dict], h: int) -> str:
    """ShardId of the open shard whose HashKeyRange holds h."""
    hits = [
        s["ShardId"]
        for s in shards
        if int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"])
        and "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
    ]
    assert len(hits) == 1, f"hash {h} is in {len(hits)} open shards: {hits}"
    return hits[0]


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def error_message(exc: ClientError) -> str:
    return exc.response["Error"].get("Message", "")


def assert_client_error(excinfo, code: str, message: str | None = None, prefix: str | None = None):
    """Check a ClientError caught with pytest.raises: HTTP 400, error code, message."""
    err = excinfo.value
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400, err.response
    assert error_code(err) == code, err.response
    msg = error_message(err)
    if message is not None:
        assert msg == message, f"message was {msg!r}"
    if prefix is not None:
        assert msg.startswith(prefix), f"message was {msg!r}"
    return msg


def wait_active(client, name: str, timeout: float = 15.0) -> dict:
    """Poll DescribeStreamSummary until the stream is ACTIVE (bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            if last["StreamStatus"] == "ACTIVE":
                return last
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
        time.sleep(0.05)
    raise AssertionError(f"stream {name} not ACTIVE within {timeout}s; last summary: {last}")


def wait_gone(client, name: str, timeout: float = 15.0) -> ClientError:
    """Poll DescribeStreamSummary until it answers ResourceNotFoundException (bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        except ClientError as e:
            if error_code(e) == "ResourceNotFoundException":
                return e
            raise
        time.sleep(0.05)
    raise AssertionError(f"stream {name} still exists after {timeout}s; last summary: {last}")


def all_shards(client, name: str) -> list[dict]:
    """Every shard of a stream via ListShards, following NextToken (bounded)."""
    resp = client.list_shards(StreamName=name)
    shards = list(resp["Shards"])
    for _ in range(1000):
        token = resp.get("NextToken")
        if not token:
            return shards
        resp = client.list_shards(NextToken=token)
        shards.extend(resp["Shards"])
    raise AssertionError("ListShards paging did not end")


def read_shard(client, name: str, shard_id: str, iterator_type: str = "TRIM_HORIZON",
               max_calls: int = 100, limit: int | None = None, **iterator_args) -> list[dict]:
    """Read a shard from an iterator until caught up (an empty page with
    MillisBehindLatest == 0), at most max_calls GetRecords calls."""
    it = client.get_shard_iterator(StreamName=name, ShardId=shard_id,
                                   ShardIteratorType=iterator_type, **iterator_args)["ShardIterator"]
    records: list[dict] = []
    for _ in range(max_calls):
        kwargs = {"ShardIterator": it}
        if limit is not None:
            kwargs["Limit"] = limit
        resp = client.get_records(**kwargs)
        records.extend(resp["Records"])
        assert "MillisBehindLatest" in resp, resp
        if not resp["Records"] and resp["MillisBehindLatest"] == 0:
            return records
        it = resp.get("NextShardIterator")
        if it is None:
            return records
    raise AssertionError(f"shard {shard_id} of {name} not drained in {max_calls} GetRecords calls")


# --------------------------------------------------------------------------------------
# Minimal CBOR decoder that keeps every tag as a cbor2.CBORTag.
# cbor2's own decoder turns tag 1 into a datetime *before* any tag_hook runs, reading the
# number as seconds; Kinesis sends epoch milliseconds there (which cbor2 rejects as out of
# range).  To see the raw number the tests decode responses with this instead.
# --------------------------------------------------------------------------------------

class _Break:
    pass


_BREAK = _Break()


def cbor_decode(data: bytes):
    import cbor2

    buf = io.BytesIO(data)

    def read(n):
        b = buf.read(n)
        if len(b) != n:
            raise ValueError("truncated CBOR")
        return b

    def length(info):
        if info < 24:
            return info
        if info == 24:
            return read(1)[0]
        if info == 25:
            return struct.unpack(">H", read(2))[0]
        if info == 26:
            return struct.unpack(">I", read(4))[0]
        if info == 27:
            return struct.unpack(">Q", read(8))[0]
        if info == 31:
            return None  # indefinite
        raise ValueError(f"bad additional info {info}")

    def item():
        ib = read(1)[0]
        major, info = ib >> 5, ib & 0x1F
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info in (22, 23):
                return None
            if info == 25:
                return struct.unpack(">e", read(2))[0]
            if info == 26:
                return struct.unpack(">f", read(4))[0]
            if info == 27:
                return struct.unpack(">d", read(8))[0]
            if info == 31:
                return _BREAK
            if info < 20:
                return cbor2.CBORSimpleValue(info)
            if info == 24:
                return cbor2.CBORSimpleValue(read(1)[0])
            raise ValueError(f"bad simple {info}")
        n = length(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            if n is None:
                parts = []
                while True:
                    p = item()
                    if p is _BREAK:
                        break
                    parts.append(p)
                return (b"" if major == 2 else "").join(parts)
            raw = read(n)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            out = []
            if n is None:
                while (x := item()) is not _BREAK:
                    out.append(x)
            else:
                out = [item() for _ in range(n)]
            return out
        if major == 5:
            out = {}
            if n is None:
                while (k := item()) is not _BREAK:
                    out[k] = item()
            else:
                for _ in range(n):
                    k = item()
                    out[k] = item()
            return out
        if major == 6:
            return cbor2.CBORTag(n, item())
        raise ValueError(f"bad major type {major}")

    value = item()
    if buf.read(1):
        raise ValueError("trailing bytes after CBOR item")
    return value


# --------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------

class RawResponse(collections.namedtuple("RawResponse", "status headers body")):
    """status: int; headers: dict with lower-cased names; body: bytes."""

    def json(self):
        return json.loads(self.body) if self.body else None

    def cbor(self):
        return cbor_decode(self.body) if self.body else None

    def error_type(self):
        """The AWS error type from the body's __type (JSON or CBOR), short form."""
        ct = self.headers.get("content-type", "")
        doc = self.cbor() if "cbor" in ct else self.json()
        t = doc.get("__type") if isinstance(doc, dict) else None
        if isinstance(t, str):
            t = t.split("#")[-1].split(":")[0]
        return t

    def error_message(self):
        ct = self.headers.get("content-type", "")
        doc = self.cbor() if "cbor" in ct else self.json()
        if not isinstance(doc, dict):
            return None
        return doc.get("message", doc.get("Message"))


class RawHttp:
    """Posts arbitrary bytes with arbitrary headers, SigV4-signed unless sign=False."""

    def __init__(self, endpoint: str):
        u = urllib.parse.urlsplit(endpoint)
        self.endpoint = endpoint
        self.host = u.hostname
        self.port = u.port or 80

    def request(self, body: bytes = b"", headers: dict | None = None, *, sign: bool = True,
                method: str = "POST", path: str = "/", timeout: float = 60.0) -> RawResponse:
        headers = dict(headers or {})
        if sign:
            req = AWSRequest(method=method, url=f"{self.endpoint}{path}", data=body, headers=headers)
            SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesis", REGION).add_auth(req)
            headers = {k: v for k, v in req.headers.items()}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def call(self, operation: str | None, body: bytes, content_type: str = JSON_CT,
             extra_headers: dict | None = None, **kw) -> RawResponse:
        headers = {"Content-Type": content_type}
        if operation is not None:
            headers["X-Amz-Target"] = TARGET_PREFIX + operation
        headers.update(extra_headers or {})
        return self.request(body, headers, **kw)

    def json_call(self, operation: str, payload) -> RawResponse:
        return self.call(operation, json.dumps(payload).encode())

    def cbor_call(self, operation: str, payload) -> RawResponse:
        import cbor2

        return self.call(operation, cbor2.dumps(payload), content_type=CBOR_CT)


# --------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------

class Server:
    def __init__(self, endpoint: str, proc: subprocess.Popen | None, data_dir: Path | None,
                 stdout_tail: collections.deque, stderr_path: Path | None):
        self.endpoint = endpoint
        self.proc = proc
        self.data_dir = data_dir
        self.stdout_tail = stdout_tail
        self.stderr_path = stderr_path

    def diagnostics(self) -> str:
        err = ""
        if self.stderr_path and self.stderr_path.exists():
            err = self.stderr_path.read_text(errors="replace")[-4000:]
        return "stdout tail:\n" + "\n".join(self.stdout_tail) + "\nstderr tail:\n" + err


def _binary() -> Path:
    env = os.environ.get("SLUICE_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "sluice"


def _start_server(data_dir: Path, log_dir: Path, extra_env: dict | None = None,
                  config: Path | None = None) -> Server:
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"sluice binary not found at {binary} (build it, or set SLUICE_BIN)", pytrace=False)
    stderr_path = log_dir / "sluice.stderr"
    stderr_f = open(stderr_path, "wb")
    # The server reads SLUICE_* settings (account id, access keys, shard limit, ...) from its
    # environment; the tests rely on the defaults, so none of the caller's reach it.
    # extra_env adds settings a test needs on purpose (access keys, for the auth tests).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    # Lambda handlers run with this Python (the suite's .venv, which has awslambdaric).
    env["SLUICE_LAMBDA_PYTHON"] = sys.executable
    env.update(extra_env or {})
    env.setdefault("RUST_BACKTRACE", "1")
    args = [str(binary), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"]
    if config is not None:
        args += ["--config", str(config)]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_f, env=env, cwd=str(log_dir),
    )
    stderr_f.close()
    tail: collections.deque = collections.deque(maxlen=200)
    lines: queue.Queue = queue.Queue()

    def pump():
        # Keeps draining stdout for the server's whole life so it never blocks on a full pipe.
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="sluice-stdout", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    endpoint = None
    while endpoint is None:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01)) if remaining > 0 else None
        except queue.Empty:
            line = None
        if line is None:
            how = "exited" if proc.poll() is not None else "did not get ready"
            _stop(proc)
            err = stderr_path.read_text(errors="replace")[-4000:]
            pytest.fail(f"sluice {how} (rc={proc.returncode}) before printing its listen line "
                        f"within {START_TIMEOUT_S}s\nstdout:\n" + "\n".join(tail) + f"\nstderr:\n{err}",
                        pytrace=False)
        m = READY_RE.search(line)
        if m:
            endpoint = m.group(1)
    return Server(endpoint, proc, data_dir, tail, stderr_path)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def aws_env(tmp_path_factory):
    """Isolate boto3/awscli from the user's AWS configuration for the whole session."""
    cfg_dir = tmp_path_factory.mktemp("aws-config")
    config_file = cfg_dir / "config"
    creds_file = cfg_dir / "credentials"
    config_file.write_text("")
    creds_file.write_text("")
    mp = pytest.MonkeyPatch()
    for var in list(os.environ):
        if var.startswith("AWS_"):
            mp.delenv(var, raising=False)
    mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    mp.setenv("AWS_DEFAULT_REGION", REGION)
    mp.setenv("AWS_CONFIG_FILE", str(config_file))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds_file))
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    mp.undo()


@pytest.fixture(scope="session")
def server(aws_env, tmp_path_factory):
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield Server(external.rstrip("/"), None, None, collections.deque(), None)
        return
    data_dir = tmp_path_factory.mktemp("sluice-data")
    log_dir = tmp_path_factory.mktemp("sluice-logs")
    srv = _start_server(data_dir, log_dir)
    _SESSION_SERVERS.append(srv)
    try:
        yield srv
    finally:
        _stop(srv.proc)


_SESSION_SERVERS: list[Server] = []


def pytest_terminal_summary(terminalreporter):
    """Point at the session server's log, and say whether it panicked."""
    for srv in _SESSION_SERVERS:
        if not srv.stderr_path or not srv.stderr_path.exists():
            continue
        text = srv.stderr_path.read_text(errors="replace")
        panics = [line for line in text.splitlines() if "panicked at" in line]
        terminalreporter.write_line(
            f"sluice server log: {srv.stderr_path} (exit code {srv.proc.returncode}, "
            f"{len(panics)} panic line(s))")
        for line in panics[:5]:
            terminalreporter.write_line(f"  {line.strip()}")


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.endpoint


def make_client(endpoint: str, **config):
    cfg = Config(
        retries={"total_max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        **config,
    )
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, config=cfg)


@pytest.fixture(scope="session")
def kinesis(endpoint):
    """boto3 Kinesis client pointed at the server (JSON protocol)."""
    return make_client(endpoint)


@pytest.fixture(scope="session")
def kinesis_unvalidated(endpoint):
    """Same client but without botocore's client-side parameter validation, so requests that
    break the model's min/required constraints reach the server."""
    return make_client(endpoint, parameter_validation=False)


@pytest.fixture(scope="session")
def raw(endpoint) -> RawHttp:
    return RawHttp(endpoint)


@pytest.fixture
def new_stream(kinesis):
    """Factory: create a uniquely named stream, wait for ACTIVE, delete it at teardown."""
    created: list[str] = []

    def make(prefix: str = "t", shards: int = 1, **kwargs) -> str:
        name = unique_name(prefix)
        kinesis.create_stream(StreamName=name, ShardCount=shards, **kwargs)
        created.append(name)
        wait_active(kinesis, name)
        return name

    yield make
    for name in created:
        try:
            kinesis.delete_stream(StreamName=name)
        except ClientError:
            pass


class AwsCli:
    """Runs `python -m awscli` (the CLI v1 installed next to this Python) against the server."""

    def __init__(self, endpoint: str, env: dict):
        self.endpoint = endpoint
        self.env = env

    def run(self, *args: str, check: bool = True, timeout: float = 120.0):
        cmd = [sys.executable, "-m", "awscli", *args,
               "--endpoint-url", self.endpoint, "--region", REGION, "--output", "json",
               "--cli-connect-timeout", "5", "--cli-read-timeout", "60"]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed with rc={proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        if not check:
            return proc
        out = proc.stdout.strip()
        return json.loads(out) if out else None


@pytest.fixture(scope="session")
def aws_cli(endpoint, aws_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_env)
    env["AWS_PAGER"] = ""
    return AwsCli(endpoint, env)
