"""Lambda: the control-plane API (functions, concurrency, tags), Invoke, and `sluice logs`,
with boto3's `lambda` client and the AWS CLI against the real binary.

The module starts its own server (fresh data directory, handlers run by this .venv's Python
through SLUICE_LAMBDA_PYTHON, which conftest sets); the restart test starts two more. With
SLUICE_ENDPOINT set the tests that need the server's data directory or a restart are skipped,
saying so.

Expected answers come from the Lambda API reference and answers AWS gave (see
docs/specs/lambda-compat.md for the sources and the known differences).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import queue
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, Server, _binary, _start_server, _stop, unique_name

ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
SYNC_PAYLOAD_MAX = 6 * 1024 * 1024
ASYNC_PAYLOAD_MAX = 1024 * 1024
CMD_TIMEOUT_S = 60

# The user's handler (tests/python/../shared seeds, 001): prints each Kinesis record's data.
SEED_HANDLER = '''import json

def lambda_handler(event, context):
    for record in event['Records']:
        data = record['kinesis']['data']
        decoded_data = json.loads(data)
        print(f"Received data: {decoded_data}")
    return {
        'statusCode': 200,
        'body': json.dumps('Data processed')
    }
'''

# The same handler with the one line a Kinesis event needs: `data` is base64 (as AWS sends it).
SEED_HANDLER_DECODING = SEED_HANDLER.replace(
    "import json\n", "import base64\nimport json\n"
).replace(
    "decoded_data = json.loads(data)", "decoded_data = json.loads(base64.b64decode(data))"
)

ECHO_HANDLER = '''import os

def handler(event, context):
    print("echo handler got", event)
    return {"event": event, "greeting": os.environ.get("GREETING"), "request_id": context.aws_request_id}
'''

# Calls sluice back through the AWS SDK (AWS_ENDPOINT_URL and the credentials Lambda hands it).
SDK_HANDLER = '''import boto3

def handler(event, context):
    return [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
'''

RAISING_HANDLER = '''def handler(event, context):
    raise ValueError("boom: " + str(event.get("n")))
'''

SLOW_HANDLER = '''import time

def handler(event, context):
    time.sleep(10)
    return "late"
'''


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def make_zip(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            z.writestr(info, content)
    return buf.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def lambda_client(endpoint: str, **config):
    cfg = Config(
        # No retries: a throttle (429) is what some tests look for.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        **config,
    )
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client("lambda", endpoint_url=endpoint, config=cfg)


def error_of(excinfo) -> tuple[int, str, str]:
    r = excinfo.value.response
    return (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message", ""))


def create(client, name: str, code: bytes, handler: str = "app.handler", runtime: str = "python3.12", **kw):
    return client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                                  Code={"ZipFile": code}, **kw)


def invoke(client, name: str, payload, **kw):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    resp = client.invoke(FunctionName=name, Payload=body, **kw)
    resp["Body"] = resp["Payload"].read()
    return resp


def sluice_logs(data_dir: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(_binary()), "logs", name, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=CMD_TIMEOUT_S, stdin=subprocess.DEVNULL)


def wait_for_log(data_dir: Path, name: str, wanted: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        proc = sluice_logs(data_dir, name)
        out = proc.stdout
        if wanted in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"{wanted!r} not in `sluice logs {name}` within {timeout}s; it printed:\n{out}")


def kinesis_event(*payloads: bytes) -> dict:
    """A Kinesis event as Lambda's event source mapping sends it (data base64)."""
    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/MyDataStream"
    records = []
    for i, data in enumerate(payloads):
        seq = f"4959036582476745887654346574289{i:025d}"
        records.append({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "123",
                "sequenceNumber": seq,
                "data": base64.b64encode(data).decode(),
                "approximateArrivalTimestamp": 1700000000.123,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{seq}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": ROLE,
            "awsRegion": REGION,
            "eventSourceARN": stream,
        })
    return {"Records": records}


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lam_server(aws_env, tmp_path_factory):
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield Server(external.rstrip("/"), None, None, None, None)
        return
    srv = _start_server(tmp_path_factory.mktemp("sluice-lambda-data"),
                        tmp_path_factory.mktemp("sluice-lambda-logs"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def lam(lam_server):
    return lambda_client(lam_server.endpoint)


@pytest.fixture(scope="module")
def lam_unvalidated(lam_server):
    """Without botocore's own checks, so out-of-range values reach the server."""
    return lambda_client(lam_server.endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def data_dir(lam_server) -> Path:
    if lam_server.data_dir is None:
        pytest.skip("needs the server's data directory (`sluice logs`); SLUICE_ENDPOINT points elsewhere")
    return lam_server.data_dir


@pytest.fixture
def new_function(lam):
    """Factory: create a function from files, delete it at teardown."""
    created: list[str] = []

    def make(files: dict[str, str | bytes], prefix: str = "fn", **kw) -> str:
        name = unique_name(prefix)
        create(lam, name, make_zip(files), **kw)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            lam.delete_function(FunctionName=name)
        except ClientError:
            pass


# --------------------------------------------------------------------------------------
# Control plane
# --------------------------------------------------------------------------------------

def test_create_get_list_update_delete(lam):
    name = unique_name("crud")
    code = make_zip({"app.py": ECHO_HANDLER})
    created = create(lam, name, code, Description="first", Environment={"Variables": {"GREETING": "hi"}},
                     Tags={"team": "data"}, Publish=True)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == function_arn(name)
    assert created["Runtime"] == "python3.12"
    assert created["Role"] == ROLE
    assert created["Handler"] == "app.handler"
    assert created["CodeSha256"] == code_sha256(code)
    assert created["CodeSize"] == len(code)
    assert created["Timeout"] == 3 and created["MemorySize"] == 128
    assert created["Version"] == "$LATEST"
    assert created["PackageType"] == "Zip"
    assert created["Description"] == "first"
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    # The answer to CreateFunction shows the function being created, as AWS's does.
    assert created["State"] == "Pending"
    assert created["StateReasonCode"] == "Creating"
    assert "x-amzn-requestid" in created["ResponseMetadata"]["HTTPHeaders"]

    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    got = lam.get_function(FunctionName=name)
    cfg = got["Configuration"]
    assert cfg["State"] == "Active"
    assert cfg["LastUpdateStatus"] == "Successful"
    assert cfg["CodeSha256"] == code_sha256(code)
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Tags"] == {"team": "data"}
    assert "Concurrency" not in got
    # By partial ARN, full ARN and with the $LATEST qualifier, the same function.
    for ref in (f"{ACCOUNT}:function:{name}", function_arn(name), f"{name}:$LATEST"):
        assert lam.get_function_configuration(FunctionName=ref)["FunctionArn"] == function_arn(name)
    assert lam.get_function_configuration(FunctionName=name, Qualifier="$LATEST")["FunctionName"] == name

    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert name in names

    rev = cfg["RevisionId"]
    updated = lam.update_function_configuration(
        FunctionName=name, Timeout=30, MemorySize=256, Description="second",
        Environment={"Variables": {"GREETING": "hello", "OTHER": "x"}})
    assert (updated["Timeout"], updated["MemorySize"], updated["Description"]) == (30, 256, "second")
    assert updated["Environment"]["Variables"] == {"GREETING": "hello", "OTHER": "x"}
    assert updated["RevisionId"] != rev
    assert updated["LastUpdateStatus"] == "Successful"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})

    code2 = make_zip({"app.py": ECHO_HANDLER + "\n# v2\n"})
    updated = lam.update_function_code(FunctionName=name, ZipFile=code2)
    assert updated["CodeSha256"] == code_sha256(code2)
    assert updated["CodeSize"] == len(code2)
    assert updated["Timeout"] == 30  # the configuration stays
    # A stale RevisionId is refused.
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=rev)
    assert error_of(e)[:2] == (412, "PreconditionFailedException")

    deleted = lam.delete_function(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert error_of(e) == (404, "ResourceNotFoundException", f"Function not found: {function_arn(name)}")


def test_errors_are_lambdas(lam, lam_unvalidated):
    name = unique_name("err")
    code = make_zip({"app.py": ECHO_HANDLER})
    create(lam, name, code)
    try:
        with pytest.raises(ClientError) as e:
            create(lam, name, code)
        assert error_of(e) == (409, "ResourceConflictException", f"Function already exist: {name}")
        # The error shape: x-amzn-ErrorType and {"Type": "User", "message": ...}.
        headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-errortype"] == "ResourceConflictException"
        assert e.value.response.get("Type") == "User"

        missing = unique_name("missing")
        for call in (lambda: lam.get_function(FunctionName=missing),
                     lambda: lam.get_function_configuration(FunctionName=missing),
                     lambda: lam.delete_function(FunctionName=missing),
                     lambda: lam.invoke(FunctionName=missing, Payload=b"{}"),
                     lambda: lam.get_function_concurrency(FunctionName=missing)):
            with pytest.raises(ClientError) as e:
                call()
            assert error_of(e) == (404, "ResourceNotFoundException", f"Function not found: {function_arn(missing)}")

        # Timeout 1..900 and MemorySize 128..10240: at each limit and one past it.
        for member, value, wanted in (
            ("Timeout", 0, "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"),
            ("Timeout", 901, "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"),
            ("MemorySize", 127, "Value '127' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"),
            ("MemorySize", 10241, "Value '10241' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 10240"),
        ):
            with pytest.raises(ClientError) as e:
                lam_unvalidated.update_function_configuration(FunctionName=name, **{member: value})
            assert error_of(e) == (400, "ValidationException", f"1 validation error detected: {wanted}")
            with pytest.raises(ClientError) as e:
                create(lam_unvalidated, unique_name("bad"), code, **{member: value})
            assert error_of(e)[:2] == (400, "ValidationException")
        for member, value in (("Timeout", 1), ("Timeout", 900), ("MemorySize", 128), ("MemorySize", 10240),
                              ("Description", "d" * 256), ("Handler", "h" * 128)):
            assert lam.update_function_configuration(FunctionName=name, **{member: value})[member] == value
        for member, path, limit in (("Description", "description", 256), ("Handler", "handler", 128)):
            value = "x" * (limit + 1)
            with pytest.raises(ClientError) as e:
                lam_unvalidated.update_function_configuration(FunctionName=name, **{member: value})
            assert error_of(e) == (400, "ValidationException",
                                   f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
                                   f"constraint: Member must have length less than or equal to {limit}")

        with pytest.raises(ClientError) as e:
            create(lam, unique_name("badzip"), b"this is not a zip file")
        assert error_of(e) == (400, "InvalidParameterValueException",
                               "Could not unzip uploaded file. Please check your file, then try to upload again.")
        with pytest.raises(ClientError) as e:
            lam.update_function_code(FunctionName=name, ZipFile=b"PK\x03\x04 not really")
        assert error_of(e)[:2] == (400, "InvalidParameterValueException")

        # An entry that would land outside the package's directory (zip-slip).
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("app.py", ECHO_HANDLER)
            z.writestr("../../escaped.py", "x = 1\n")
        with pytest.raises(ClientError) as e:
            create(lam, unique_name("slip"), buf.getvalue())
        status, code_, message = error_of(e)
        assert (status, code_) == (400, "InvalidParameterValueException")
        assert "escaped.py" in message

        with pytest.raises(ClientError) as e:
            lam_unvalidated.create_function(FunctionName=unique_name("norole"), Runtime="python3.12",
                                            Handler="app.handler", Code={"ZipFile": code})
        assert error_of(e) == (400, "ValidationException",
                               "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null")
        with pytest.raises(ClientError) as e:
            lam_unvalidated.create_function(FunctionName=unique_name("nohandler"), Runtime="python3.12",
                                            Role=ROLE, Code={"ZipFile": code})
        assert error_of(e) == (400, "InvalidParameterValueException",
                               "Runtime and Handler are mandatory parameters for functions created with deployment packages.")
        with pytest.raises(ClientError) as e:
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"AWS_REGION": "x"}})
        assert error_of(e)[:2] == (400, "InvalidParameterValueException")
        assert error_of(e)[2].endswith("Reserved keys used in this request: AWS_REGION")
        with pytest.raises(ClientError) as e:
            lam_unvalidated.get_function(FunctionName="bad name!")
        assert error_of(e)[:2] == (400, "ValidationException")
        # Only $LATEST exists: a version or alias is not found, and says why.
        with pytest.raises(ClientError) as e:
            lam.get_function(FunctionName=name, Qualifier="1")
        status, code_, message = error_of(e)
        assert (status, code_) == (404, "ResourceNotFoundException")
        assert message.startswith(f"Function not found: {function_arn(name)}:1") and "$LATEST" in message
    finally:
        lam.delete_function(FunctionName=name)


def test_list_functions_pages_with_marker(lam):
    prefix = unique_name("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    code = make_zip({"app.py": ECHO_HANDLER})
    for n in names:
        create(lam, n, code)
    try:
        seen, marker, pages = [], None, 0
        while True:
            kw = {"MaxItems": 2}
            if marker:
                kw["Marker"] = marker
            page = lam.list_functions(**kw)
            assert len(page["Functions"]) <= 2
            seen += [f["FunctionName"] for f in page["Functions"]]
            pages += 1
            marker = page.get("NextMarker")
            if not marker:
                break
            assert pages < 100
        assert [n for n in seen if n.startswith(prefix)] == names
        assert seen == sorted(seen)
        # The paginator follows the same markers.
        listed = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3})
                  for f in p["Functions"]]
        assert listed == seen
        for bad in (0, 10001):
            with pytest.raises(ClientError) as e:
                lambda_client(lam.meta.endpoint_url, parameter_validation=False).list_functions(MaxItems=bad)
            assert error_of(e)[:2] == (400, "ValidationException")
    finally:
        for n in names:
            lam.delete_function(FunctionName=n)


def test_concurrency_put_get_delete(lam, lam_unvalidated, new_function):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="conc")
    assert lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    assert lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 5
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    # At most 900 across the account (1000 less the 100 that stay unreserved): at it, past it.
    assert lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=900)["ReservedConcurrentExecutions"] == 900
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=901)
    assert error_of(e) == (400, "InvalidParameterValueException",
                           "Specified ReservedConcurrentExecutions for function decreases account's "
                           "UnreservedConcurrentExecution below its minimum value of [100].")
    with pytest.raises(ClientError) as e:
        lam_unvalidated.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=-1)
    assert error_of(e)[:2] == (400, "ValidationException")
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] <= 100

    # 0 throttles every invocation, with Lambda's 429.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert error_of(e) == (429, "TooManyRequestsException", "Rate Exceeded.")
    assert e.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"

    assert lam.delete_function_concurrency(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)


def test_tags(lam, new_function):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="tags", Tags={"a": "1"})
    arn = function_arn(name)
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1"}
    lam.tag_resource(Resource=arn, Tags={"b": "2"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2"}
    lam.untag_resource(Resource=arn, TagKeys=["a"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"b": "2"}


def test_operations_not_served_say_so(lam, new_function):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="unsup")
    for call, op in ((lambda: lam.publish_version(FunctionName=name), "PublishVersion"),
                     (lambda: lam.list_function_url_configs(FunctionName=name), "ListFunctionUrlConfigs"),
                     (lambda: lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1"), "CreateAlias"),
                     (lambda: lam.list_layers(), "ListLayers")):
        with pytest.raises(ClientError) as e:
            call()
        status, code_, message = error_of(e)
        assert (status, code_) == (400, "UnsupportedOperationException")
        assert message == f"sluice does not support the {op} operation yet. See docs/specs/lambda-compat.md."


def test_invoke_checks_before_running(lam, new_function):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="checks")
    dry = lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=b'{"a": 1}')
    assert dry["StatusCode"] == 204
    assert dry["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    # 6 MB for RequestResponse (checked by DryRun the same way), 1 MB for Event: at the limit
    # and one byte past it.
    def json_of(size: int) -> bytes:
        return b'"' + b"a" * (size - 2) + b'"'

    assert lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=json_of(SYNC_PAYLOAD_MAX))["StatusCode"] == 204
    for kind, limit in (("DryRun", SYNC_PAYLOAD_MAX), ("RequestResponse", SYNC_PAYLOAD_MAX), ("Event", ASYNC_PAYLOAD_MAX)):
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=name, InvocationType=kind, Payload=json_of(limit + 1))
        assert error_of(e) == (413, "RequestEntityTooLargeException",
                               f"Request must be smaller than {limit} bytes for the InvokeFunction operation")

    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    status, code_, message = error_of(e)
    assert (status, code_) == (400, "InvalidRequestContentException")
    assert message.startswith("Could not parse request body into json")
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    assert error_of(e)[:2] == (404, "ResourceNotFoundException")


# --------------------------------------------------------------------------------------
# Restart
# --------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_functions_survive_restart(tmp_path, aws_env):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "logs1").mkdir()
    (tmp_path / "logs2").mkdir()
    code = make_zip({"app.py": ECHO_HANDLER})
    srv = _start_server(data, tmp_path / "logs1")
    try:
        c = lambda_client(srv.endpoint)
        create(c, "kept", code, Environment={"Variables": {"GREETING": "persisted"}}, Timeout=7,
               Tags={"k": "v"})
        c.put_function_concurrency(FunctionName="kept", ReservedConcurrentExecutions=3)
        before = c.get_function(FunctionName="kept")
        create(c, "gone", code)
        c.delete_function(FunctionName="gone")
    finally:
        _stop(srv.proc)
    assert srv.proc.returncode == 0, f"sluice did not exit cleanly on SIGTERM\n{srv.diagnostics()}"

    srv2 = _start_server(data, tmp_path / "logs2")
    try:
        c = lambda_client(srv2.endpoint)
        after = c.get_function(FunctionName="kept")
        assert after["Configuration"] == before["Configuration"]
        assert after["Tags"] == {"k": "v"}
        assert after["Concurrency"] == {"ReservedConcurrentExecutions": 3}
        assert [f["FunctionName"] for f in c.list_functions()["Functions"]] == ["kept"]
        with pytest.raises(ClientError) as e:
            c.get_function(FunctionName="gone")
        assert error_of(e)[:2] == (404, "ResourceNotFoundException")
        # The code is there and runs (needs sluice-runtime's process pools).
        resp = invoke(c, "kept", {"after": "restart"})
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
        assert json.loads(resp["Body"])["greeting"] == "persisted"
    finally:
        _stop(srv2.proc)


@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_declared_functions_load_from_the_config_file(tmp_path, aws_env):
    src = tmp_path / "hello"
    src.mkdir()
    (src / "app.py").write_text(ECHO_HANDLER)
    config = tmp_path / "sluice.toml"
    config.write_text(
        "[[lambda.functions]]\n"
        'name = "hello"\nruntime = "python3.12"\nhandler = "app.handler"\n'
        'code_dir = "hello"\nenvironment = { GREETING = "declared" }\ntimeout_s = 5\n'
    )
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "logs").mkdir()
    srv = _start_server(data, tmp_path / "logs", config=config)
    try:
        c = lambda_client(srv.endpoint)
        cfg = c.get_function_configuration(FunctionName="hello")
        assert (cfg["Runtime"], cfg["Handler"], cfg["Timeout"]) == ("python3.12", "app.handler", 5)
        assert cfg["Environment"]["Variables"] == {"GREETING": "declared"}
        assert cfg["State"] == "Active"
        with pytest.raises(ClientError) as e:
            c.delete_function(FunctionName="hello")
        assert error_of(e)[:2] == (409, "ResourceConflictException")
        resp = invoke(c, "hello", {"x": 1})
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
        assert json.loads(resp["Body"])["greeting"] == "declared"
    finally:
        _stop(srv.proc)


# --------------------------------------------------------------------------------------
# Invoke: handlers run (these need sluice-runtime's process pools)
# --------------------------------------------------------------------------------------

def test_seed_handler_as_written_fails_on_a_kinesis_event(lam, new_function):
    """The user's handler json.loads the record's `data`, which a Kinesis event carries
    base64-encoded: on AWS it raises JSONDecodeError, and so it does here."""
    name = new_function({"lambda_function.py": SEED_HANDLER}, prefix="seed", handler="lambda_function.lambda_handler")
    resp = invoke(lam, name, kinesis_event(json.dumps({"msg": "Hello, World!"}).encode()))
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Body"])
    assert body["errorType"] == "JSONDecodeError", body
    assert "errorMessage" in body


def test_seed_handler_decoding_base64_prints_each_record(lam, new_function, data_dir):
    name = new_function({"lambda_function.py": SEED_HANDLER_DECODING}, prefix="seedok",
                        handler="lambda_function.lambda_handler")
    event = kinesis_event(json.dumps({"msg": "Hello, World!"}).encode(), json.dumps({"n": 2}).encode())
    resp = invoke(lam, name, event, LogType="Tail")
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
    assert json.loads(resp["Body"]) == {"statusCode": 200, "body": '"Data processed"'}
    assert resp["ExecutedVersion"] == "$LATEST"
    tail = base64.b64decode(resp["LogResult"]).decode()
    assert "Received data: {'msg': 'Hello, World!'}" in tail
    assert "Received data: {'n': 2}" in tail
    assert len(base64.b64decode(resp["LogResult"])) <= 4096
    out = wait_for_log(data_dir, name, "Received data: {'n': 2}")
    assert "Received data: {'msg': 'Hello, World!'}" in out


def test_request_response_returns_the_handlers_json(lam, new_function):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="echo", Environment={"Variables": {"GREETING": "hi"}})
    resp = invoke(lam, name, {"a": [1, 2, 3]})
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
    body = json.loads(resp["Body"])
    assert body["event"] == {"a": [1, 2, 3]}
    assert body["greeting"] == "hi"
    # The invocation's request id is the API request's.
    assert body["request_id"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    # No payload: the handler gets {}.
    empty = lam.invoke(FunctionName=name)
    assert json.loads(empty["Payload"].read())["event"] == {}

    # New code and configuration are what the next invocation runs.
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": ECHO_HANDLER.replace(
        '"greeting"', '"salutation"')}))
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"GREETING": "bye"}})
    body = json.loads(invoke(lam, name, {})["Body"])
    assert body["salutation"] == "bye", body


def test_a_raising_handler_is_a_function_error(lam, new_function):
    name = new_function({"app.py": RAISING_HANDLER}, prefix="raise")
    resp = invoke(lam, name, {"n": 7}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == "Unhandled"
    body = json.loads(resp["Body"])
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: 7"
    assert "boom: 7" in base64.b64decode(resp["LogResult"]).decode()


def test_a_timeout_is_lambdas_sandbox_timedout(lam, new_function):
    name = new_function({"app.py": SLOW_HANDLER}, prefix="slow", Timeout=1)
    started = time.monotonic()
    resp = invoke(lam, name, {})
    assert time.monotonic() - started < 8
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Body"])
    assert body["errorType"] == "Sandbox.Timedout"
    request_id = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert body["errorMessage"] == f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"


def test_event_invocation_runs_in_the_background(lam, new_function, data_dir):
    name = new_function({"lambda_function.py": SEED_HANDLER_DECODING}, prefix="event",
                        handler="lambda_function.lambda_handler")
    marker = unique_name("async")
    resp = lam.invoke(FunctionName=name, InvocationType="Event",
                      Payload=json.dumps(kinesis_event(json.dumps({"marker": marker}).encode())))
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    wait_for_log(data_dir, name, f"Received data: {{'marker': '{marker}'}}")
    # The deprecated InvokeAsync queues the same way.
    marker2 = unique_name("invokeasync")
    resp = lam.invoke_async(FunctionName=name,
                            InvokeArgs=json.dumps(kinesis_event(json.dumps({"marker": marker2}).encode())))
    assert resp["Status"] == 202
    wait_for_log(data_dir, name, f"Received data: {{'marker': '{marker2}'}}")


def test_aws_cli_walkthrough(aws_cli, lam_server, data_dir, tmp_path):
    """The README's walk-through: create-function from a zip, invoke, `sluice logs`."""
    cli = type(aws_cli)(lam_server.endpoint, aws_cli.env)
    name = unique_name("cli")
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(make_zip({"lambda_function.py": SEED_HANDLER_DECODING}))
    created = cli.run("lambda", "create-function", "--function-name", name, "--runtime", "python3.12",
                      "--role", ROLE, "--handler", "lambda_function.lambda_handler",
                      "--zip-file", f"fileb://{zip_path}")
    try:
        assert created["FunctionName"] == name
        assert created["CodeSha256"] == code_sha256(zip_path.read_bytes())
        cli.run("lambda", "wait", "function-active-v2", "--function-name", name)
        listed = cli.run("lambda", "list-functions")
        assert name in [f["FunctionName"] for f in listed["Functions"]]

        event_path = tmp_path / "event.json"
        event_path.write_text(json.dumps(kinesis_event(b'{"from": "cli"}')))
        out_path = tmp_path / "out.json"
        result = cli.run("lambda", "invoke", "--function-name", name,
                         "--payload", f"fileb://{event_path}", "--log-type", "Tail", str(out_path))
        assert result["StatusCode"] == 200
        assert "FunctionError" not in result, out_path.read_text()
        assert json.loads(out_path.read_text())["statusCode"] == 200
        assert "Received data: {'from': 'cli'}" in base64.b64decode(result["LogResult"]).decode()
        logs = sluice_logs(data_dir, name)
        assert logs.returncode == 0, logs.stderr
        assert "Received data: {'from': 'cli'}" in logs.stdout
    finally:
        cli.run("lambda", "delete-function", "--function-name", name)


def test_sluice_logs_without_a_log_says_why(data_dir):
    proc = sluice_logs(data_dir, "never-ran")
    assert proc.returncode != 0
    assert "no log" in proc.stderr


@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_sigv4_is_verified_on_lambda_paths(tmp_path, aws_env):
    """With an access key configured, Lambda requests must be signed with it; a function named
    by its ARN (`:` percent-encoded in the path, signed encoded twice) verifies too."""
    key_id, secret = "AKIDSLUICELAMBDA0001", "lambda-secret/" + unique_name("s")
    (tmp_path / "data").mkdir()
    (tmp_path / "logs").mkdir()
    srv = _start_server(tmp_path / "data", tmp_path / "logs",
                        {"SLUICE_ACCESS_KEY_ID": key_id, "SLUICE_SECRET_ACCESS_KEY": secret})
    try:
        def client(secret_key):
            return boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret_key,
                                         region_name=REGION).client(
                "lambda", endpoint_url=srv.endpoint,
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))

        good = client(secret)
        create(good, "signed", make_zip({"app.py": ECHO_HANDLER}))
        assert good.get_function(FunctionName=function_arn("signed"))["Configuration"]["FunctionName"] == "signed"
        assert good.get_function(FunctionName=f"{ACCOUNT}:function:signed:$LATEST")["Configuration"]["Version"] == "$LATEST"
        with pytest.raises(ClientError) as e:
            client(secret + "x").get_function(FunctionName=function_arn("signed"))
        assert error_of(e)[1] == "InvalidSignatureException"
        with pytest.raises(ClientError) as e:
            client(secret + "x").list_functions()
        assert error_of(e)[1] == "InvalidSignatureException"
        # The handler is handed sluice's URL and the configured key, so an AWS SDK inside it
        # calls sluice, signed.
        create(good, "caller", make_zip({"app.py": SDK_HANDLER}))
        resp = invoke(good, "caller", {})
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp, resp["Body"]
        assert sorted(json.loads(resp["Body"])) == ["caller", "signed"]
    finally:
        _stop(srv.proc)


def test_sluice_logs_follow_prints_new_lines(lam, new_function, data_dir):
    name = new_function({"app.py": ECHO_HANDLER}, prefix="follow")
    invoke(lam, name, {"first": 1})
    proc = subprocess.Popen([str(_binary()), "logs", name, "--follow", "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    # Read on a thread, so that a line that never comes fails the test instead of hanging it.
    pending: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [pending.put(line) for line in iter(proc.stdout.readline, "")],
                     daemon=True).start()
    try:
        lines: list[str] = []

        def read_until(wanted: str, timeout: float = 30.0):
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    line = pending.get(timeout=left)
                except queue.Empty:
                    break
                lines.append(line)
                if wanted in line:
                    return
            raise AssertionError(f"{wanted!r} not printed by --follow within {timeout}s; got {lines}")

        read_until("'first': 1")
        invoke(lam, name, {"second": 2})
        read_until("'second': 2")
    finally:
        proc.kill()
        proc.wait(timeout=10)
