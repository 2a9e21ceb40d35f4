"""Firehose delivery into an external S3-compatible server: sluice with `[lake] endpoint` set to
moto in server mode (PyPI), so delivery goes through the object_store back end. The objects are
read straight from moto with boto3 and checked byte for byte after decompression: buffering,
compression, naming, prefixes, dynamic partitioning with its error output, and a kill -9 during
delivery.
"""

from __future__ import annotations

import collections
import json
import signal
import time

import boto3
import pytest
from botocore.config import Config

from conftest import _start_server, _stop
from test_firehose import (DECODE, EXTENSION, OBJECT_NAME, create, firehose_client, put_all,
                           s3_destination, unique_name)
from test_s3 import moto  # noqa: F401  (the module's moto.server fixture)

pytestmark = pytest.mark.skipif(
    bool(__import__("os").environ.get("SLUICE_ENDPOINT")), reason="starts its own servers")

BUCKET = "remote-lake"


def moto_client(url: str):
    return boto3.session.Session(aws_access_key_id="moto", aws_secret_access_key="moto",
                                 region_name="us-east-1").client(
        "s3", endpoint_url=url, config=Config(s3={"addressing_style": "path"}))


def remote_objects(s3, prefix: str = "") -> dict[str, bytes]:
    out, token = {}, None
    for _ in range(100):
        kw = {"ContinuationToken": token} if token else {}
        try:
            r = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **kw)
        except s3.exceptions.NoSuchBucket:
            return out
        for o in r.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        if not r.get("IsTruncated"):
            return out
        token = r["NextContinuationToken"]
    raise AssertionError("more than 100 pages")


def of_stream(objs: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {k: v for k, v in objs.items() if k.rsplit("/", 1)[-1].startswith(name + "-")}


def wait_remote_lines(s3, name: str, expected: collections.Counter, decode=lambda b: b, prefix: str = "",
                      timeout: float = 45.0) -> dict[str, bytes]:
    deadline = time.monotonic() + timeout
    got = collections.Counter()
    while time.monotonic() < deadline:
        objs = of_stream(remote_objects(s3, prefix), name)
        got = collections.Counter(l for b in objs.values() for l in decode(b).splitlines(keepends=True))
        if all(got[k] >= v for k, v in expected.items()):
            return objs
        time.sleep(0.3)
    missing = expected - got
    raise AssertionError(f"{sum(missing.values())} lines missing after {timeout}s, e.g. {list(missing)[:3]}")


def remote_config(tmp_path, moto_url: str):
    cfg = tmp_path / "sluice.toml"
    cfg.write_text(f'[lake]\nendpoint = "{moto_url}"\naccess_key_id = "moto"\nsecret_access_key = "moto"\n')
    return cfg


@pytest.fixture(scope="module")
def remote(moto, aws_env, tmp_path_factory):  # noqa: F811
    cfg = remote_config(tmp_path_factory.mktemp("fh-remote-cfg"), moto)
    srv = _start_server(tmp_path_factory.mktemp("fh-remote-data"), tmp_path_factory.mktemp("fh-remote-logs"),
                        config=cfg)
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.mark.parametrize("compression", ["GZIP", "Snappy", "UNCOMPRESSED"])
def test_buffered_delivery_into_an_external_store(remote, moto, compression):  # noqa: F811
    fh, s3 = firehose_client(remote.endpoint), moto_client(moto)
    name = create(fh, "remote", bucket=BUCKET, size_mb=1, interval_s=1, compression=compression)
    lines = [f"{compression}-{i:05d}-{'r' * (i % 40)}\n".encode() for i in range(1500)]
    calls = 30
    for c in range(calls):
        put_all(fh, name, lines[c * 50:(c + 1) * 50])
    wait_remote_lines(s3, name, collections.Counter(lines), DECODE[compression])
    time.sleep(1.5)  # anything late or duplicated would show up now
    objs = of_stream(remote_objects(s3), name)
    got = collections.Counter(l for b in objs.values() for l in DECODE[compression](b).splitlines(keepends=True))
    assert got == collections.Counter(lines), "records lost or duplicated"
    assert len(objs) <= calls // 4, f"{len(objs)} objects for {calls} puts: not buffered"
    for key in objs:
        parts = key.split("/")
        assert len(parts) == 5, key
        m = OBJECT_NAME.match(parts[4])
        assert m and m["name"] == name and m["ext"] == EXTENSION[compression], key
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_dynamic_partitioning_and_errors_into_an_external_store(remote, moto):  # noqa: F811
    fh, s3 = firehose_client(remote.endpoint), moto_client(moto)
    name = unique_name("rdyn")
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(
        bucket=BUCKET, prefix="site=!{partitionKeyFromQuery:site}/",
        error_prefix="rdyn-errors/!{firehose:error-output-type}/", size_mb=64, interval_s=1,
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{site: .site}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}))
    deadline = time.monotonic() + 15
    while fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
            "DeliveryStreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    records = [json.dumps({"site": f"s{i % 2}", "n": i}).encode() for i in range(200)]
    put_all(fh, name, records + [b"{broken"])
    for site in ("s0", "s1"):
        want = collections.Counter(r + b"\n" for r in records if json.loads(r)["site"] == site)
        objs = wait_remote_lines(s3, name, want, prefix=f"site={site}/")
        assert collections.Counter(l for b in objs.values() for l in b.splitlines(keepends=True)) == want
    deadline = time.monotonic() + 30
    errors = {}
    while time.monotonic() < deadline and not errors:
        errors = of_stream(remote_objects(s3, "rdyn-errors/processing-failed/"), name)
        time.sleep(0.3)
    [body] = errors.values()
    err = json.loads(body.splitlines()[0])
    assert err["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed"
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_kill_9_during_delivery_into_an_external_store(moto, aws_env, tmp_path):  # noqa: F811
    s3 = moto_client(moto)
    cfg = remote_config(tmp_path, moto)
    data = tmp_path / "data"
    data.mkdir()
    logs1, logs2 = tmp_path / "logs1", tmp_path / "logs2"
    logs1.mkdir()
    logs2.mkdir()
    srv = _start_server(data, logs1, config=cfg)
    acked: list[bytes] = []
    try:
        fh = firehose_client(srv.endpoint)
        name = create(fh, "rcrash", bucket=BUCKET, interval_s=2, size_mb=1)
        for b in range(20):
            batch = [f"k{b:03d}-{i:03d}\n".encode() for i in range(100)]
            put_all(fh, name, batch)
            acked.extend(batch)
            if b == 9:
                time.sleep(2.5)  # some objects are written, the rest is still buffered
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
    finally:
        _stop(srv.proc)
    srv2 = _start_server(data, logs2, config=cfg)
    try:
        objs = wait_remote_lines(s3, name, collections.Counter(acked), timeout=60)
        got = collections.Counter(l for b in objs.values() for l in b.splitlines(keepends=True))
        assert set(got) == set(acked), "something acknowledged was lost, or something else appeared"
        assert sum(got.values()) - len(acked) <= 1000, "duplicates beyond the buffer in flight"
    finally:
        _stop(srv2.proc)
