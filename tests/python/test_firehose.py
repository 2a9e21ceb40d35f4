"""Firehose against the real binary: the API with boto3 and the AWS CLI, buffered delivery into
the lake (objects read straight from <data_dir>/lake), compression, custom prefixes, dynamic
partitioning with jq, a Lambda transformation, a Kinesis stream source with KPL-aggregated
records, back-pressure, and a kill -9 during delivery.
"""

from __future__ import annotations

import base64
import collections
import gzip
import io
import json
import os
import re
import signal
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, _start_server, _stop, make_client,
                      unique_name, wait_active)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
BUCKET = "lake"
OBJECT_NAME = re.compile(
    r"^(?P<name>[a-zA-Z0-9_.-]+)-(?P<version>\d+)-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(?P<ext>\.[a-z]+)?$")
EXTERNAL = bool(os.environ.get("SLUICE_ENDPOINT"))
needs_files = pytest.mark.skipif(EXTERNAL, reason="reads the server's data directory")


def firehose_client(endpoint: str, attempts: int = 4, **config):
    cfg = Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                 connect_timeout=5, read_timeout=60, **config)
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                 region_name=REGION).client("firehose", endpoint_url=endpoint, config=cfg)


@pytest.fixture(scope="module")
def fh(endpoint):
    return firehose_client(endpoint)


@pytest.fixture(scope="module")
def fh_unvalidated(endpoint):
    return firehose_client(endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def lake(server) -> Path:
    if server.data_dir is None:
        pytest.skip("needs the server's data directory")
    return server.data_dir / "lake"


def s3_destination(prefix: str | None = None, error_prefix: str | None = None, size_mb: int = 1,
                   interval_s: int = 1, compression: str = "UNCOMPRESSED", bucket: str = BUCKET, **extra) -> dict:
    d = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}",
         "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s},
         "CompressionFormat": compression}
    if prefix is not None:
        d["Prefix"] = prefix
    if error_prefix is not None:
        d["ErrorOutputPrefix"] = error_prefix
    d.update(extra)
    return d


def create(fh, tag: str = "fh", **dest) -> str:
    name = unique_name(tag)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=s3_destination(**dest))
    wait_delivery_active(fh, name)
    return name


def wait_delivery_active(fh, name: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == "ACTIVE":
            return d
        time.sleep(0.05)
    raise AssertionError(f"{name} not ACTIVE")


def put_all(fh, name: str, records: list[bytes], batch: int = 500) -> list[str]:
    ids = []
    for i in range(0, len(records), batch):
        r = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in records[i:i + batch]])
        assert r["FailedPutCount"] == 0, r
        assert len(r["RequestResponses"]) == len(records[i:i + batch])
        ids.extend(x["RecordId"] for x in r["RequestResponses"])
    return ids


def objects(lake: Path, bucket: str = BUCKET, prefix: str = "") -> dict[str, bytes]:
    root = lake / bucket
    out = {}
    if not root.is_dir():
        return out
    for p in root.rglob("*"):
        if p.is_file() and not p.name.startswith(".sluice-"):
            key = p.relative_to(root).as_posix()
            if key.startswith(prefix):
                out[key] = p.read_bytes()
    return out


def of_stream(objs: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {k: v for k, v in objs.items() if k.rsplit("/", 1)[-1].startswith(name + "-")}


def snappy_java(data: bytes) -> bytes:
    import cramjam
    assert data[:8] == b"\x82SNAPPY\x00", data[:16]
    assert int.from_bytes(data[8:12], "big") == 1 and int.from_bytes(data[12:16], "big") == 1
    out, at = bytearray(), 16
    while at < len(data):
        n = int.from_bytes(data[at:at + 4], "big")
        out += bytes(cramjam.snappy.decompress_raw(data[at + 4:at + 4 + n]))
        at += 4 + n
    return bytes(out)


def hadoop_snappy(data: bytes) -> bytes:
    import cramjam
    out, at = bytearray(), 0
    while at < len(data):
        raw, n = int.from_bytes(data[at:at + 4], "big"), int.from_bytes(data[at + 4:at + 8], "big")
        block = bytes(cramjam.snappy.decompress_raw(data[at + 8:at + 8 + n]))
        assert len(block) == raw
        out += block
        at += 8 + n
    return bytes(out)


def unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert len(names) == 1
        return z.read(names[0])


DECODE = {"UNCOMPRESSED": lambda b: b, "GZIP": gzip.decompress, "ZIP": unzip,
          "Snappy": snappy_java, "HADOOP_SNAPPY": hadoop_snappy}
EXTENSION = {"UNCOMPRESSED": None, "GZIP": ".gz", "ZIP": ".zip", "Snappy": ".snappy", "HADOOP_SNAPPY": ".snappy"}


def wait_lines(lake: Path, name: str, expected: collections.Counter, decode=lambda b: b, prefix: str = "",
               timeout: float = 30.0, bucket: str = BUCKET) -> dict[str, bytes]:
    """Waits until the stream's objects hold at least every expected line; returns them."""
    deadline = time.monotonic() + timeout
    got = collections.Counter()
    while time.monotonic() < deadline:
        objs = of_stream(objects(lake, bucket, prefix), name)
        got = collections.Counter(line for body in objs.values() for line in decode(body).splitlines(keepends=True))
        if all(got[k] >= v for k, v in expected.items()):
            return objs
        time.sleep(0.2)
    missing = expected - got
    raise AssertionError(f"{sum(missing.values())} lines missing after {timeout}s, e.g. {list(missing)[:3]}")


def error_code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def error_message(e: ClientError) -> str:
    return e.response["Error"].get("Message", "")


# --------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------

def test_create_describe_list_delete_shapes(fh):
    name = create(fh, "shape", prefix="plain/")
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["DeliveryStreamARN"] == f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}"
    assert d["DeliveryStreamStatus"] == "ACTIVE"
    assert d["DeliveryStreamType"] == "DirectPut"
    assert d["VersionId"] == "1"
    assert d["HasMoreDestinations"] is False
    assert d["DeliveryStreamEncryptionConfiguration"] == {"Status": "DISABLED"}
    assert abs(d["CreateTimestamp"].timestamp() - time.time()) < 60
    [dest] = d["Destinations"]
    assert dest["DestinationId"] == "destinationId-000000000001"
    ext = dest["ExtendedS3DestinationDescription"]
    assert ext["BucketARN"] == "arn:aws:s3:::lake" and ext["RoleARN"] == ROLE
    assert ext["Prefix"] == "plain/"
    assert ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    assert ext["CompressionFormat"] == "UNCOMPRESSED"
    assert ext["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
    assert ext["S3BackupMode"] == "Disabled"
    assert dest["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::lake"
    # A page that starts after the one destination.
    page = fh.describe_delivery_stream(DeliveryStreamName=name,
                                       ExclusiveStartDestinationId="destinationId-000000000001")
    assert page["DeliveryStreamDescription"]["Destinations"] == []

    # Defaults of an absent BufferingHints: 5 MB, 300 s.
    other = unique_name("shape")
    fh.create_delivery_stream(DeliveryStreamName=other,
                              S3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake"})
    d2 = fh.describe_delivery_stream(DeliveryStreamName=other)["DeliveryStreamDescription"]
    assert d2["Destinations"][0]["S3DestinationDescription"]["BufferingHints"] == \
        {"SizeInMBs": 5, "IntervalInSeconds": 300}

    names = fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    assert name in names and other in names and names == sorted(names)
    first = fh.list_delivery_streams(Limit=1)
    assert len(first["DeliveryStreamNames"]) == 1 and first["HasMoreDeliveryStreams"] is True
    after = fh.list_delivery_streams(ExclusiveStartDeliveryStreamName=name, Limit=10000)["DeliveryStreamNames"]
    assert name not in after and all(n > name for n in after)
    assert name not in fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource",
                                                Limit=10000)["DeliveryStreamNames"]

    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination())
    assert error_code(e.value) == "ResourceInUseException"
    assert error_message(e.value) == f"Firehose {name} under accountId {ACCOUNT} already exists"

    fh.delete_delivery_stream(DeliveryStreamName=name)
    fh.delete_delivery_stream(DeliveryStreamName=other, AllowForceDelete=True)
    with pytest.raises(ClientError) as e:
        fh.describe_delivery_stream(DeliveryStreamName=name)
    assert error_code(e.value) == "ResourceNotFoundException"
    assert error_message(e.value) == f"Firehose {name} under account {ACCOUNT} not found."
    for call in (lambda: fh.delete_delivery_stream(DeliveryStreamName=name),
                 lambda: fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"}),
                 lambda: fh.list_tags_for_delivery_stream(DeliveryStreamName=name)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e.value) == "ResourceNotFoundException"


def test_validation_errors_and_limits(fh, fh_unvalidated):
    with pytest.raises(ClientError) as e:
        fh_unvalidated.describe_delivery_stream(DeliveryStreamName="x" * 65)
    assert error_code(e.value) == "ValidationException"
    assert error_message(e.value) == ("1 validation error detected: Value '" + "x" * 65 + "' at 'deliveryStreamName' "
                                      "failed to satisfy constraint: Member must have length less than or equal to 64")
    with pytest.raises(ClientError) as e:
        fh_unvalidated.create_delivery_stream(DeliveryStreamName=unique_name("v"),
                                              ExtendedS3DestinationConfiguration=s3_destination(size_mb=129, interval_s=901))
    assert error_code(e.value) == "ValidationException"
    assert error_message(e.value).startswith("2 validation errors detected: Value '129' at "
                                             "'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs'")
    with pytest.raises(ClientError) as e:
        fh_unvalidated.create_delivery_stream(DeliveryStreamName=unique_name("v"),
                                              ExtendedS3DestinationConfiguration=s3_destination(compression="LZ4"))
    assert "Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]" in error_message(e.value)
    # Both hints at their limits are fine.
    for size, interval in ((1, 0), (128, 900)):
        n = unique_name("lim")
        fh.create_delivery_stream(DeliveryStreamName=n,
                                  ExtendedS3DestinationConfiguration=s3_destination(size_mb=size, interval_s=interval))
        fh.delete_delivery_stream(DeliveryStreamName=n)

    name = create(fh, "limits", interval_s=60)
    # 500 records at the limit, 501 past it.
    assert fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a"}] * 500)["FailedPutCount"] == 0
    with pytest.raises(ClientError) as e:
        fh_unvalidated.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a"}] * 501)
    assert error_code(e.value) == "ValidationException"
    assert "at 'records' failed to satisfy constraint: Member must have length less than or equal to 500" in error_message(e.value)
    # 1,000 KiB per record at the limit, one byte past it.
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"b" * 1_024_000})
    with pytest.raises(ClientError) as e:
        fh_unvalidated.put_record(DeliveryStreamName=name, Record={"Data": b"b" * 1_024_001})
    assert error_code(e.value) == "ValidationException"
    assert error_message(e.value) == ("1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 "
                                      "cap=1024001]' at 'record.data' failed to satisfy constraint: Member must have "
                                      "length less than or equal to 1024000")
    # 4 MiB per call at the limit, one byte past it.
    at_limit = [{"Data": b"c" * 1_000_000}] * 4 + [{"Data": b"c" * (4 * 1024 * 1024 - 4_000_000)}]
    assert fh.put_record_batch(DeliveryStreamName=name, Records=at_limit)["FailedPutCount"] == 0
    past = at_limit[:4] + [{"Data": b"c" * (4 * 1024 * 1024 - 4_000_000 + 1)}]
    with pytest.raises(ClientError) as e:
        fh.put_record_batch(DeliveryStreamName=name, Records=past)
    assert error_code(e.value) == "InvalidArgumentException"
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_prefix_rules_and_unsupported_members(fh):
    def refused(**dest) -> str:
        with pytest.raises(ClientError) as e:
            fh.create_delivery_stream(DeliveryStreamName=unique_name("rule"),
                                      ExtendedS3DestinationConfiguration=s3_destination(**dest))
        assert error_code(e.value) == "InvalidArgumentException", e.value.response
        return error_message(e.value)

    assert "ErrorOutputPrefix can't be null when Prefix contains expressions" in refused(prefix="d/!{timestamp:yyyy}/")
    assert "error-output-type" in refused(prefix="d/", error_prefix="e/!{timestamp:yyyy}/")
    assert "Prefix can't contain" in refused(prefix="!{firehose:error-output-type}/", error_prefix="e/")
    assert "not a valid timestamp pattern" in refused(prefix="!{timestamp:qq}/", error_prefix="e/!{firehose:error-output-type}")
    assert "unsupported namespace" in refused(prefix="!{nope:x}/", error_prefix="e/!{firehose:error-output-type}")
    assert "dynamic partitioning is not enabled" in refused(prefix="c=!{partitionKeyFromQuery:c}/",
                                                            error_prefix="e/!{firehose:error-output-type}/")
    assert "DataFormatConversionConfiguration" in refused(size_mb=64, DataFormatConversionConfiguration={"Enabled": True})
    with pytest.raises(ClientError) as e:
        # (RedshiftDestinationConfiguration is served: tests/python/test_firehose_redshift.py.)
        fh.create_delivery_stream(DeliveryStreamName=unique_name("sp"), SplunkDestinationConfiguration={
            "HECEndpoint": "https://splunk.example.com:8088", "HECEndpointType": "Raw", "HECToken": "t",
            "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake"}})
    assert error_code(e.value) == "InvalidArgumentException"
    assert "SplunkDestinationConfiguration" in error_message(e.value)


def test_update_destination_encryption_and_tags(fh, lake):
    name = create(fh, "upd", prefix="upd-v1/", interval_s=1)
    with pytest.raises(ClientError) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="7",
                              DestinationId="destinationId-000000000001",
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert error_code(e.value) == "ConcurrentModificationException"
    assert error_message(e.value) == (f"Cannot update firehose: {name} since the current version id: 1 and "
                                      "specified version id: 7 do not match")
    with pytest.raises(ClientError) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                              DestinationId="destinationId-000000000009",
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert error_code(e.value) == "InvalidArgumentException"
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
                          DestinationId="destinationId-000000000001",
                          ExtendedS3DestinationUpdate={"Prefix": "upd-v2/", "CompressionFormat": "GZIP"})
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert d["VersionId"] == "2" and "LastUpdateTimestamp" in d
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["Prefix"] == "upd-v2/" and ext["CompressionFormat"] == "GZIP"
    assert ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"after update\n"})
    objs = wait_lines(lake, name, collections.Counter([b"after update\n"]), gzip.decompress, prefix="upd-v2/")
    key = next(iter(objs)).rsplit("/", 1)[-1]
    m = OBJECT_NAME.match(key)
    assert m and m["name"] == name and m["version"] == "2" and m["ext"] == ".gz", key

    # Encryption: the status only (objects are not encrypted at rest yet).
    fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc == {"KeyType": "AWS_OWNED_CMK", "Status": "ENABLED"}
    assert fh.put_record(DeliveryStreamName=name, Record={"Data": b"e\n"})["Encrypted"] is True
    with pytest.raises(ClientError) as e:
        fh.start_delivery_stream_encryption(DeliveryStreamName=name,
                                            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"})
    assert error_code(e.value) == "InvalidArgumentException"
    fh.stop_delivery_stream_encryption(DeliveryStreamName=name)
    enc = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    assert enc["Status"] == "DISABLED"

    # Tags.
    fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}])
    fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": "env", "Value": "prod"}])
    tags = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)
    assert tags["Tags"] == [{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "prod"}]
    assert tags["HasMoreTags"] is False
    page = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1)
    assert page["Tags"] == [{"Key": "team", "Value": "data"}] and page["HasMoreTags"] is True
    page = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, ExclusiveStartTagKey="team")
    assert page["Tags"] == [{"Key": "env", "Value": "prod"}]
    fh.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team"])
    assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as e:
        fh.tag_delivery_stream(DeliveryStreamName=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_code(e.value) == "LimitExceededException"
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_aws_cli(aws_cli, fh):
    name = unique_name("cli")
    out = aws_cli.run("firehose", "create-delivery-stream", "--delivery-stream-name", name,
                      "--extended-s3-destination-configuration",
                      json.dumps(s3_destination(interval_s=60)))
    assert out["DeliveryStreamARN"].endswith(f"deliverystream/{name}")
    d = aws_cli.run("firehose", "describe-delivery-stream", "--delivery-stream-name", name)
    assert d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    assert name in aws_cli.run("firehose", "list-delivery-streams", "--limit", "10000")["DeliveryStreamNames"]
    r = aws_cli.run("firehose", "put-record", "--delivery-stream-name", name,
                    "--record", json.dumps({"Data": base64.b64encode(b"from the cli\n").decode()}))
    assert r["RecordId"]
    aws_cli.run("firehose", "delete-delivery-stream", "--delivery-stream-name", name)


# --------------------------------------------------------------------------------------
# Delivery into the lake
# --------------------------------------------------------------------------------------

@needs_files
@pytest.mark.parametrize("compression", ["GZIP", "Snappy", "HADOOP_SNAPPY", "ZIP", "UNCOMPRESSED"])
def test_buffered_delivery_compressed(fh, lake, compression):
    name = create(fh, "deliv", size_mb=1, interval_s=1, compression=compression)
    lines = [f"{compression}-{i:05d}-{'x' * (i % 50)}\n".encode() for i in range(2000)]
    calls = 40
    for c in range(calls):
        put_all(fh, name, lines[c * 50:(c + 1) * 50])
    objs = wait_lines(lake, name, collections.Counter(lines), DECODE[compression])
    time.sleep(1.5)  # anything late would show up now
    objs = of_stream(objects(lake), name)
    got = collections.Counter(l for b in objs.values() for l in DECODE[compression](b).splitlines(keepends=True))
    assert got == collections.Counter(lines), "records lost or duplicated"
    # Buffered: far fewer objects than puts; named as Firehose names them, under YYYY/MM/dd/HH/.
    assert len(objs) <= calls // 4, f"{len(objs)} objects for {calls} puts"
    for key in objs:
        parts = key.split("/")
        assert len(parts) == 5 and re.fullmatch(r"\d{4}", parts[0]) and all(re.fullmatch(r"\d{2}", p) for p in parts[1:4]), key
        m = OBJECT_NAME.match(parts[4])
        assert m and m["name"] == name and m["version"] == "1" and m["ext"] == EXTENSION[compression], key
    fh.delete_delivery_stream(DeliveryStreamName=name)


@needs_files
def test_size_hint_makes_objects_before_the_interval(fh, lake):
    name = create(fh, "size", size_mb=1, interval_s=900)
    lines = [f"{i:06d}{'y' * 1000}\n".encode() for i in range(3000)]  # ~3 MB
    put_all(fh, name, lines)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(of_stream(objects(lake), name)) < 2:
        time.sleep(0.2)
    objs = of_stream(objects(lake), name)
    assert len(objs) >= 2, "the 1 MB size hint did not make objects before the 900 s interval"
    for body in objs.values():
        assert len(body) >= 1 << 20
    fh.delete_delivery_stream(DeliveryStreamName=name)


@needs_files
def test_custom_prefix_with_timestamp(fh, lake):
    name = create(fh, "pfx", prefix="data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/!{firehose:random-string}/",
                  error_prefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy}/")
    before = time.gmtime()
    lines = [f"p{i}\n".encode() for i in range(100)]
    put_all(fh, name, lines)
    objs = wait_lines(lake, name, collections.Counter(lines), prefix="data/")
    for key in objs:
        parts = key.split("/")
        assert parts[0] == "data"
        assert parts[1] == f"year={before.tm_year:04d}" and parts[2] == f"month={before.tm_mon:02d}", key
        assert re.fullmatch(r"[0-9a-z]{11}", parts[3]), key
        assert OBJECT_NAME.match(parts[4]), key
    fh.delete_delivery_stream(DeliveryStreamName=name)


@needs_files
def test_dynamic_partitioning_with_jq(fh, lake):
    name = unique_name("dyn")
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination(
        prefix="customer_id=!{partitionKeyFromQuery:customer_id}/",
        error_prefix="dyn-errors/!{firehose:error-output-type}/",
        size_mb=64, interval_s=1,
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer_id: .customer_id}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}))
    records = [json.dumps({"customer_id": f"c{i % 3}", "n": i}).encode() for i in range(300)]
    put_all(fh, name, records + [b"not json"])
    for c in range(3):
        want = collections.Counter(r + b"\n" for r in records if json.loads(r)["customer_id"] == f"c{c}")
        objs = wait_lines(lake, name, want, prefix=f"customer_id=c{c}/")
        got = collections.Counter(l for b in objs.values() for l in b.splitlines(keepends=True))
        assert got == want
    deadline = time.monotonic() + 20
    errors = {}
    while time.monotonic() < deadline and not errors:
        errors = of_stream(objects(lake, prefix="dyn-errors/processing-failed/"), name)
        time.sleep(0.2)
    [body] = errors.values()
    err = json.loads(body.splitlines()[0])
    assert base64.b64decode(err["rawData"]) == b"not json"
    assert err["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed"
    assert {"attemptsMade", "arrivalTimestamp", "errorMessage", "attemptEndingTimestamp"} <= set(err)
    # Dynamic partitioning needs a 64 MB buffer, and cannot be switched off.
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique_name("dyn"), ExtendedS3DestinationConfiguration=s3_destination(
            prefix="c=!{partitionKeyFromQuery:c}/", error_prefix="e/!{firehose:error-output-type}/", size_mb=1,
            DynamicPartitioningConfiguration={"Enabled": True}))
    assert error_code(e.value) == "InvalidArgumentException"
    fh.delete_delivery_stream(DeliveryStreamName=name)


TRANSFORM = '''import base64
def handler(event, context):
    out = []
    for r in event["records"]:
        d = base64.b64decode(r["data"]).decode()
        if d.startswith("drop"):
            out.append({"recordId": r["recordId"], "result": "Dropped"})
        elif d.startswith("fail"):
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            out.append({"recordId": r["recordId"], "result": "Ok",
                        "data": base64.b64encode(d.upper().encode()).decode()})
    return {"records": out}
'''


@needs_files
def test_lambda_transformation(fh, lake, endpoint):
    lam = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                region_name=REGION).client("lambda", endpoint_url=endpoint)
    fn = unique_name("fhxform")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", TRANSFORM)
    lam.create_function(FunctionName=fn, Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/lambda",
                        Handler="app.handler", Code={"ZipFile": buf.getvalue()}, Timeout=30)
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    name = create(fh, "xform", prefix="xform/", ProcessingConfiguration={"Enabled": True, "Processors": [
        {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": arn}]}]})
    keep = [f"keep-{i}\n".encode() for i in range(50)]
    drop = [f"drop-{i}\n".encode() for i in range(10)]
    fail = [f"fail-{i}\n".encode() for i in range(5)]
    put_all(fh, name, keep + drop + fail)
    objs = wait_lines(lake, name, collections.Counter(k.upper() for k in keep), prefix="xform/", timeout=60)
    # Without an ErrorOutputPrefix, failed records go under <prefix>processing-failed/.
    got = collections.Counter(l for k, b in objs.items() if "/processing-failed/" not in k
                              for l in b.splitlines(keepends=True))
    assert got == collections.Counter(k.upper() for k in keep)
    deadline = time.monotonic() + 30
    failed = []
    while time.monotonic() < deadline and len(failed) < len(fail):
        failed = [json.loads(l) for b in of_stream(objects(lake, prefix="xform/processing-failed/"), name).values()
                  for l in b.splitlines()]
        time.sleep(0.2)
    assert sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(fail)
    assert all(f["lambdaArn"] == arn and f["errorCode"] == "Lambda.ProcessingFailed" for f in failed)
    fh.delete_delivery_stream(DeliveryStreamName=name)
    lam.delete_function(FunctionName=fn)


@needs_files
def test_kinesis_stream_as_source_with_kpl_aggregation(fh, lake, kinesis):
    from aws_kinesis_agg.aggregator import RecordAggregator

    stream = unique_name("fhsrc")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    wait_active(kinesis, stream)
    stream_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream}"
    name = unique_name("fromkds")
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                              KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
                              ExtendedS3DestinationConfiguration=s3_destination(prefix="kds/"))
    d = wait_delivery_active(fh, name)
    assert d["DeliveryStreamType"] == "KinesisStreamAsSource"
    src = d["Source"]["KinesisStreamSourceDescription"]
    assert src["KinesisStreamARN"] == stream_arn and src["RoleARN"] == ROLE and "DeliveryStartTimestamp" in src

    plain = [f"plain-{i}\n".encode() for i in range(100)]
    for i in range(0, 100, 50):
        r = kinesis.put_records(StreamName=stream, Records=[{"Data": p, "PartitionKey": f"k{j}"}
                                                            for j, p in enumerate(plain[i:i + 50])])
        assert r["FailedRecordCount"] == 0
    aggregated = []
    agg = RecordAggregator()
    for i in range(200):
        data = f"agg-{i}\n".encode()
        aggregated.append(data)
        full = agg.add_user_record(f"pk{i}", data)
        if full:
            pk, ehk, blob = full.get_contents()
            kinesis.put_record(StreamName=stream, Data=blob, PartitionKey=pk)
    pk, ehk, blob = agg.clear_and_get().get_contents()
    assert blob[:4] == b"\xf3\x89\x9a\xc2"
    kinesis.put_record(StreamName=stream, Data=blob, PartitionKey=pk)

    want = collections.Counter(plain + aggregated)
    objs = wait_lines(lake, name, want, prefix="kds/")
    got = collections.Counter(l for b in objs.values() for l in b.splitlines(keepends=True))
    assert got == want

    with pytest.raises(ClientError) as e:
        fh.put_record(DeliveryStreamName=name, Record={"Data": b"x"})
    assert error_code(e.value) == "InvalidArgumentException"
    assert error_message(e.value) == "This operation is not permitted on KinesisStreamAsSource delivery stream type."
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique_name("fromkds"), DeliveryStreamType="KinesisStreamAsSource",
                                  KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn + "-nope",
                                                                    "RoleARN": ROLE},
                                  ExtendedS3DestinationConfiguration=s3_destination())
    assert error_code(e.value) == "InvalidArgumentException"
    fh.delete_delivery_stream(DeliveryStreamName=name)
    kinesis.delete_stream(StreamName=stream)


@needs_files
def test_metrics(fh, endpoint):
    name = create(fh, "metrics", interval_s=1)
    put_all(fh, name, [b"m\n"] * 10)
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"{endpoint}/metrics", timeout=10).read().decode()
        if f'sluice_firehose_delivery_to_s3_records_total{{delivery_stream="{name}"}} 10' in text:
            break
        time.sleep(0.3)
    assert f'sluice_firehose_incoming_records_total{{delivery_stream="{name}"}} 10' in text
    assert f'sluice_firehose_incoming_bytes_total{{delivery_stream="{name}"}} 20' in text
    assert f'sluice_firehose_delivery_to_s3_records_total{{delivery_stream="{name}"}} 10' in text
    assert f'sluice_firehose_delivery_to_s3_success{{delivery_stream="{name}"}} 1' in text
    assert f'sluice_firehose_delivery_to_s3_data_freshness_seconds{{delivery_stream="{name}"}}' in text
    fh.delete_delivery_stream(DeliveryStreamName=name)


# --------------------------------------------------------------------------------------
# Back-pressure and crashes (servers of their own)
# --------------------------------------------------------------------------------------

@pytest.mark.skipif(EXTERNAL, reason="starts its own server")
def test_backpressure_when_the_destination_fails(tmp_path, aws_env):
    data = tmp_path / "data"
    (data / "lake").mkdir(parents=True)
    # A file where the bucket's directory belongs: every object write fails.
    (data / "lake" / "blocked").write_text("not a directory")
    config = tmp_path / "sluice.toml"
    config.write_text("[firehose]\nbacklog_records_max = 200\nretry_backoff_ms_max = 200\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    srv = _start_server(data, logs, config=config)
    try:
        fh = firehose_client(srv.endpoint, attempts=1)
        name = create(fh, "slow", bucket="blocked", interval_s=0)
        put_all(fh, name, [b"r\n"] * 200, batch=100)
        time.sleep(1)
        with pytest.raises(ClientError) as e:
            fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"r\n"}])
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error_code(e.value) == "ServiceUnavailableException"
        assert error_message(e.value) == "Slow down."
        # The destination comes back: the backlog drains and puts are taken again.
        (data / "lake" / "blocked").unlink()
        deadline = time.monotonic() + 30
        while True:
            try:
                fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"r\n"}])
                break
            except ClientError as err:
                assert error_code(err) == "ServiceUnavailableException"
                assert time.monotonic() < deadline, "the backlog did not drain"
                time.sleep(0.2)
        objs = wait_lines(data / "lake", name, collections.Counter({b"r\n": 201}), bucket="blocked")
        assert sum(b.count(b"r\n") for b in objs.values()) >= 201
    finally:
        _stop(srv.proc)


@pytest.mark.skipif(EXTERNAL, reason="starts its own server")
def test_kill_9_during_delivery_loses_nothing_acknowledged(tmp_path, aws_env):
    data = tmp_path / "data"
    data.mkdir()
    logs1, logs2 = tmp_path / "logs1", tmp_path / "logs2"
    logs1.mkdir()
    logs2.mkdir()
    srv = _start_server(data, logs1)
    acked: list[bytes] = []
    try:
        fh = firehose_client(srv.endpoint)
        name = create(fh, "crash", interval_s=2, size_mb=1)
        for b in range(30):
            batch = [f"b{b:03d}-{i:03d}\n".encode() for i in range(100)]
            put_all(fh, name, batch)
            acked.extend(batch)
            if b == 14:
                time.sleep(2.5)  # some objects are written, the rest is still buffered
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
    finally:
        _stop(srv.proc)
    srv2 = _start_server(data, logs2)
    try:
        objs = wait_lines(data / "lake", name, collections.Counter(acked), timeout=60)
        got = collections.Counter(l for b in objs.values() for l in b.splitlines(keepends=True))
        assert set(got) == set(acked), "something acknowledged was lost, or something else appeared"
        duplicates = sum(got.values()) - len(acked)
        # Duplicates only from the buffer in flight at the kill (at most what came after the
        # last checkpoint: here, the second half).
        assert duplicates <= 1500, duplicates
        fh = firehose_client(srv2.endpoint)
        assert fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["VersionId"] == "1"
    finally:
        _stop(srv2.proc)


@needs_files
def test_objects_through_the_s3_api(fh, lake, endpoint):
    """The delivered objects are served by sluice's S3 API too, byte for byte."""
    s3 = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               region_name=REGION).client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    name = create(fh, "vias3", prefix="vias3/", compression="GZIP")
    lines = [f"s3-{i}\n".encode() for i in range(100)]
    put_all(fh, name, lines)
    files = wait_lines(lake, name, collections.Counter(lines), gzip.decompress, prefix="vias3/")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="vias3/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert set(files) <= keys
    for key, body in files.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    fh.delete_delivery_stream(DeliveryStreamName=name)
