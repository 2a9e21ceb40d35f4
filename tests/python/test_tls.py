"""The TLS listener: boto3 over HTTPS (HTTP/1.1), curl negotiating HTTP/2 by ALPN, SubscribeToShard
over TLS. The certificate is made for the test with the openssl command line."""

import shutil
import socket
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, _start_server, _stop, unique_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    port = _free_port()
    server = _start_server(d / "data", d, {
        "SLUICE_TLS_LISTEN": f"127.0.0.1:{port}",
        "SLUICE_TLS_CERT_FILE": str(cert),
        "SLUICE_TLS_KEY_FILE": str(key),
    })
    deadline = time.monotonic() + 10
    while not any(f"https://127.0.0.1:{port}" in line for line in server.stdout_tail):
        assert time.monotonic() < deadline, "the TLS listener did not start:\n" + server.diagnostics()
        time.sleep(0.05)
    yield f"https://127.0.0.1:{port}", cert, server
    _stop(server.proc)


def _client(endpoint, cert):
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, verify=str(cert),
             config=Config(retries={"total_max_attempts": 2, "mode": "standard"}))


def test_boto3_over_https_puts_reads_and_subscribes(tls_server):
    endpoint, cert, _ = tls_server
    k = _client(endpoint, cert)
    name = unique_name("tls")
    k.create_stream(StreamName=name, ShardCount=1)
    put = k.put_record(StreamName=name, Data=b"over tls", PartitionKey="p")
    it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = k.get_records(ShardIterator=it)["Records"]
    assert [(r["SequenceNumber"], r["Data"]) for r in records] == [(put["SequenceNumber"], b"over tls")]

    arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="tls-reader")["Consumer"]
    sub = k.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000",
                               StartingPosition={"Type": "TRIM_HORIZON"})
    stream = sub["EventStream"]
    try:
        event = next(iter(stream))["SubscribeToShardEvent"]
        assert [r["Data"] for r in event["Records"]] == [b"over tls"]
        assert event["ContinuationSequenceNumber"] == put["SequenceNumber"]
    finally:
        stream.close()


def test_alpn_offers_http2_and_the_plain_port_does_not_speak_tls(tls_server):
    endpoint, cert, server = tls_server
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to check ALPN")
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(cert), "-o", "/dev/null",
         "-w", "%{http_version}", f"{endpoint}/health"],
        check=True, capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "2"
    out = subprocess.run(
        ["curl", "-sS", "--http1.1", "--cacert", str(cert), "-o", "/dev/null",
         "-w", "%{http_version}", f"{endpoint}/health"],
        check=True, capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "1.1"
    # The plain port speaks HTTP/2 with prior knowledge too (what the JS SDK sends to http://).
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
         "-w", "%{http_version}", f"{server.endpoint}/health"],
        check=True, capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "2"
    # An untrusted client certificate store refuses the server: the certificate is really used.
    bad = subprocess.run(["curl", "-sS", f"{endpoint}/health"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode != 0


def test_js_sdk_over_tls_negotiates_http2_and_subscribes(tls_server):
    """The JS SDK v3 over https:// takes HTTP/2 by ALPN (its Node handler is HTTP/2 only)."""
    from test_js_sdk import run_js_test
    endpoint, cert, _ = tls_server
    run_js_test(endpoint, {"NODE_EXTRA_CA_CERTS": str(cert)})
