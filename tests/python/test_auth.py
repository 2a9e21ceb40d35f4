"""SigV4 authentication: a server started with SLUICE_ACCESS_KEY_ID / SLUICE_SECRET_ACCESS_KEY
must only accept requests signed with that key, in the `Authorization` header or as a presigned
query string, and answer everything else with the AWS error Kinesis sends.

This module starts its own two servers (one with a key configured, one without), so it also
runs when SLUICE_ENDPOINT points the rest of the suite at an external server.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import time
import urllib.parse
import uuid

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (
    JSON_CT,
    REGION,
    TARGET_PREFIX,
    AwsCli,
    RawHttp,
    RawResponse,
    Server,
    _start_server,
    _stop,
    assert_client_error,
    unique_name,
    wait_active,
)

KEY_ID = "AKIDSLUICEAUTHTEST01"
SECRET = "sluice-auth-test/" + uuid.uuid4().hex
WRONG_SECRET = SECRET + "x"
UNKNOWN_KEY_ID = "AKIDSLUICEUNKNOWN999"

MSG_MISSING = "Missing Authentication Token"
MSG_UNRECOGNIZED = "The security token included in the request is invalid."
MSG_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. "
                "Consult the service documentation for details.")
MSG_BOTH = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------

def _start_keyed_server(data_dir, log_dir, key_id: str, secret: str) -> Server:
    """A server with an access key configured: every request must be signed by it."""
    return _start_server(data_dir, log_dir, {"SLUICE_ACCESS_KEY_ID": key_id, "SLUICE_SECRET_ACCESS_KEY": secret})


@pytest.fixture(scope="module")
def auth_server(aws_env, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sluice-auth-data")
    log_dir = tmp_path_factory.mktemp("sluice-auth-logs")
    srv = _start_keyed_server(data_dir, log_dir, KEY_ID, SECRET)
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def open_server(aws_env, tmp_path_factory):
    """A server without any key configured (conftest's starter drops every SLUICE_* var)."""
    srv = _start_server(tmp_path_factory.mktemp("sluice-open-data"),
                        tmp_path_factory.mktemp("sluice-open-logs"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


def client_for(endpoint: str, key_id: str, secret: str):
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, config=cfg)


@pytest.fixture(scope="module")
def good(auth_server):
    return client_for(auth_server.endpoint, KEY_ID, SECRET)


@pytest.fixture(scope="module")
def auth_stream(good):
    """One stream on the keyed server, created with the right key."""
    name = unique_name("auth")
    good.create_stream(StreamName=name, ShardCount=1)
    wait_active(good, name)
    return name


# --------------------------------------------------------------------------------------
# Raw HTTP helpers
# --------------------------------------------------------------------------------------

def op_headers(operation: str) -> dict:
    return {"Content-Type": JSON_CT, "X-Amz-Target": TARGET_PREFIX + operation}


def send(endpoint: str, url_or_path: str, headers: dict, body: bytes, timeout: float = 10.0) -> RawResponse:
    """POST `body` to the server at the path (and query) of `url_or_path`, headers as given."""
    u = urllib.parse.urlsplit(endpoint)
    target = urllib.parse.urlsplit(url_or_path)
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def header_signed(endpoint: str, operation: str, body: bytes, key_id: str = KEY_ID,
                  secret: str = SECRET) -> dict:
    """Headers of a request signed in the Authorization header (botocore's SigV4Auth)."""
    req = AWSRequest(method="POST", url=f"{endpoint}/", data=body, headers=op_headers(operation))
    SigV4Auth(Credentials(key_id, secret), "kinesis", REGION).add_auth(req)
    return dict(req.headers.items())


class _BodyKeepingQueryAuth(SigV4QueryAuth):
    """SigV4QueryAuth empties request.data after moving JSON members into the query string, so
    the signature covers an empty payload.  This variant keeps the body, so the signature covers
    SHA-256 of the body actually sent."""

    def _modify_request_before_signing(self, request):
        body = request.data
        super()._modify_request_before_signing(request)
        request.data = body


def presign(endpoint: str, operation: str, body: bytes, *, key_id: str = KEY_ID,
            secret: str = SECRET, expires: int = 60, keep_body: bool = False) -> str:
    """A presigned POST URL (X-Amz-* query parameters) for `operation`."""
    req = AWSRequest(method="POST", url=f"{endpoint}/", data=body, headers=op_headers(operation))
    auth_cls = _BodyKeepingQueryAuth if keep_body else SigV4QueryAuth
    auth_cls(Credentials(key_id, secret), "kinesis", REGION, expires=expires).add_auth(req)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(req.url).query)
    for p in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
              "X-Amz-SignedHeaders", "X-Amz-Signature"):
        assert p in q, f"botocore did not put {p} in the presigned URL {req.url}"
    return req.url


def assert_raw_error(resp: RawResponse, code: str, message: str | None = None,
                     prefix: str | None = None, status: int = 400) -> str:
    assert resp.status == status, (resp.status, resp.body)
    assert resp.error_type() == code, resp.body
    msg = resp.error_message() or ""
    if message is not None:
        assert msg == message, resp.body
    if prefix is not None:
        assert msg.startswith(prefix), resp.body
    return msg


# --------------------------------------------------------------------------------------
# boto3
# --------------------------------------------------------------------------------------

def test_boto3_right_key_create_put_get(good):
    name = unique_name("auth-rt")
    good.create_stream(StreamName=name, ShardCount=1)
    try:
        wait_active(good, name)
        payloads = [b"signed-" + uuid.uuid4().hex.encode() for _ in range(3)]
        put = [good.put_record(StreamName=name, Data=p, PartitionKey=f"pk{i}")
               for i, p in enumerate(payloads)]
        shard_id = good.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        assert {p["ShardId"] for p in put} == {shard_id}
        it = good.get_shard_iterator(StreamName=name, ShardId=shard_id,
                                     ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        resp = good.get_records(ShardIterator=it)
        assert [r["Data"] for r in resp["Records"]] == payloads
        assert [r["SequenceNumber"] for r in resp["Records"]] == [p["SequenceNumber"] for p in put]
    finally:
        good.delete_stream(StreamName=name)


def test_boto3_wrong_secret_is_invalid_signature(auth_server, auth_stream):
    bad = client_for(auth_server.endpoint, KEY_ID, WRONG_SECRET)
    with pytest.raises(ClientError) as ei:
        bad.describe_stream_summary(StreamName=auth_stream)
    assert_client_error(ei, "InvalidSignatureException", MSG_MISMATCH)


def test_boto3_unknown_key_is_unrecognized_client(auth_server, auth_stream):
    bad = client_for(auth_server.endpoint, UNKNOWN_KEY_ID, SECRET)
    with pytest.raises(ClientError) as ei:
        bad.list_streams()
    assert_client_error(ei, "UnrecognizedClientException", MSG_UNRECOGNIZED)


def test_boto3_wrong_secret_does_not_write(auth_server, good, auth_stream):
    bad = client_for(auth_server.endpoint, KEY_ID, WRONG_SECRET)
    marker = b"must-not-be-stored-" + uuid.uuid4().hex.encode()
    with pytest.raises(ClientError) as ei:
        bad.put_record(StreamName=auth_stream, Data=marker, PartitionKey="pk")
    assert_client_error(ei, "InvalidSignatureException", MSG_MISMATCH)
    shard_id = good.list_shards(StreamName=auth_stream)["Shards"][0]["ShardId"]
    it = good.get_shard_iterator(StreamName=auth_stream, ShardId=shard_id,
                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert marker not in [r["Data"] for r in good.get_records(ShardIterator=it)["Records"]]


# --------------------------------------------------------------------------------------
# AWS CLI v1
# --------------------------------------------------------------------------------------

def cli_for(endpoint: str, aws_env: dict, key_id: str, secret: str) -> AwsCli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_env)
    env["AWS_ACCESS_KEY_ID"] = key_id
    env["AWS_SECRET_ACCESS_KEY"] = secret
    env["AWS_PAGER"] = ""
    env["AWS_MAX_ATTEMPTS"] = "1"
    return AwsCli(endpoint, env)


def test_aws_cli_right_key(auth_server, aws_env, auth_stream):
    cli = cli_for(auth_server.endpoint, aws_env, KEY_ID, SECRET)
    out = cli.run("kinesis", "list-streams", timeout=30)
    assert auth_stream in out["StreamNames"], out
    summary = cli.run("kinesis", "describe-stream-summary", "--stream-name", auth_stream, timeout=30)
    assert summary["StreamDescriptionSummary"]["StreamName"] == auth_stream


@pytest.mark.parametrize("key_id,secret,code", [
    (KEY_ID, WRONG_SECRET, "InvalidSignatureException"),
    (UNKNOWN_KEY_ID, SECRET, "UnrecognizedClientException"),
], ids=["wrong-secret", "unknown-key"])
def test_aws_cli_bad_credentials_fail(auth_server, aws_env, key_id, secret, code):
    cli = cli_for(auth_server.endpoint, aws_env, key_id, secret)
    proc = cli.run("kinesis", "list-streams", check=False, timeout=30)
    assert proc.returncode != 0, proc.stdout
    assert code in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------
# Raw HTTP, Authorization header
# --------------------------------------------------------------------------------------

def test_unsigned_request_is_missing_token(auth_server):
    resp = RawHttp(auth_server.endpoint).call("ListStreams", b"{}", sign=False)
    assert_raw_error(resp, "MissingAuthenticationTokenException", MSG_MISSING)


def test_signed_request_with_altered_body_is_rejected(auth_server, auth_stream):
    ep = auth_server.endpoint
    body = json.dumps({"StreamName": auth_stream}).encode()
    headers = header_signed(ep, "DescribeStreamSummary", body)
    # The same signed headers with the body they were computed over are accepted ...
    ok = send(ep, "/", headers, body)
    assert ok.status == 200, ok.body
    assert ok.json()["StreamDescriptionSummary"]["StreamName"] == auth_stream
    # ... and with one byte of the body changed they are not.
    altered = body.replace(b'"StreamName"', b'"StreamName" ')
    assert altered != body
    resp = send(ep, "/", headers, altered)
    assert_raw_error(resp, "InvalidSignatureException", MSG_MISMATCH)


def _amz_date_headers(monkeypatch, ep: str, minutes: float) -> dict:
    when = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    headers = header_signed(ep, "ListStreams", b"{}")
    monkeypatch.undo()
    assert headers["X-Amz-Date"] == when.strftime("%Y%m%dT%H%M%SZ")
    return headers


def test_signature_20_minutes_old_is_expired(auth_server, monkeypatch):
    ep = auth_server.endpoint
    headers = _amz_date_headers(monkeypatch, ep, -20)
    resp = send(ep, "/", headers, b"{}")
    msg = assert_raw_error(resp, "InvalidSignatureException", prefix="Signature expired:")
    assert headers["X-Amz-Date"] in msg, msg


def test_signature_20_minutes_ahead_is_rejected(auth_server, monkeypatch):
    ep = auth_server.endpoint
    headers = _amz_date_headers(monkeypatch, ep, +20)
    resp = send(ep, "/", headers, b"{}")
    assert_raw_error(resp, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-10, 10])
def test_signature_within_skew_is_accepted(auth_server, monkeypatch, minutes):
    ep = auth_server.endpoint
    headers = _amz_date_headers(monkeypatch, ep, minutes)
    resp = send(ep, "/", headers, b"{}")
    assert resp.status == 200, resp.body
    assert isinstance(resp.json()["StreamNames"], list)


# --------------------------------------------------------------------------------------
# Raw HTTP, presigned query string
# --------------------------------------------------------------------------------------

def test_presigned_list_streams(auth_server, auth_stream):
    """botocore's SigV4QueryAuth exactly as a client would use it, body `{}` sent as is.

    Note: SigV4QueryAuth moves the JSON members into the query string and empties
    request.data before signing, so its signature covers the payload hash of the EMPTY body
    (e3b0c442...), not SHA-256(b"{}").  The server has to accept that hash for presigned
    requests for this to pass; test_presigned_with_body_in_payload_hash covers the other case.
    """
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", expires=60)
    resp = send(ep, url, op_headers("ListStreams"), b"{}")
    assert resp.status == 200, resp.body
    names = resp.json()["StreamNames"]
    assert isinstance(names, list) and auth_stream in names, resp.body


def test_presigned_with_body_in_payload_hash(auth_server, auth_stream):
    """Presigned URL whose signature covers SHA-256 of the body actually sent."""
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", expires=60, keep_body=True)
    resp = send(ep, url, op_headers("ListStreams"), b"{}")
    assert resp.status == 200, resp.body
    assert auth_stream in resp.json()["StreamNames"], resp.body


def test_presigned_expired_is_access_denied(auth_server):
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", expires=1)
    time.sleep(2)
    resp = send(ep, url, op_headers("ListStreams"), b"{}")
    assert_raw_error(resp, "AccessDeniedException", "Request has expired", status=403)


@pytest.mark.parametrize("keep_body", [False, True], ids=["botocore", "body-hash"])
def test_presigned_wrong_secret_is_invalid_signature(auth_server, keep_body):
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", secret=WRONG_SECRET, keep_body=keep_body)
    resp = send(ep, url, op_headers("ListStreams"), b"{}")
    assert_raw_error(resp, "InvalidSignatureException", MSG_MISMATCH)


def test_presigned_unknown_key_is_unrecognized_client(auth_server):
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", key_id=UNKNOWN_KEY_ID, keep_body=True)
    resp = send(ep, url, op_headers("ListStreams"), b"{}")
    assert_raw_error(resp, "UnrecognizedClientException", MSG_UNRECOGNIZED)


def test_query_and_header_auth_together_are_rejected(auth_server):
    ep = auth_server.endpoint
    url = presign(ep, "ListStreams", b"{}", keep_body=True)
    headers = header_signed(ep, "ListStreams", b"{}")
    resp = send(ep, url, headers, b"{}")
    assert_raw_error(resp, "InvalidSignatureException", MSG_BOTH)


# --------------------------------------------------------------------------------------
# No key configured
# --------------------------------------------------------------------------------------

def test_server_without_keys_accepts_unsigned_and_any_key(open_server, auth_server):
    raw = RawHttp(open_server.endpoint)
    name = unique_name("open")
    created = raw.call("CreateStream", json.dumps({"StreamName": name, "ShardCount": 1}).encode(),
                       sign=False)
    assert created.status == 200, created.body
    listed = raw.call("ListStreams", b"{}", sign=False)
    assert listed.status == 200, listed.body
    assert name in listed.json()["StreamNames"], listed.body
    # Any credentials are accepted too.
    c = client_for(open_server.endpoint, UNKNOWN_KEY_ID, WRONG_SECRET)
    assert name in c.list_streams()["StreamNames"]
    # The same unsigned request to the keyed server is refused (the difference is the key).
    refused = RawHttp(auth_server.endpoint).call("ListStreams", b"{}", sign=False)
    assert refused.status == 400, refused.body
