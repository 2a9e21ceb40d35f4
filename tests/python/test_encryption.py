"""Encryption at rest of the lake's objects (SSE-KMS / SSE-S3 with `[[keys]]` key files in KMS's
place) against the real binary: boto3 puts with SSE headers read back as plaintext with the
headers, the files under <data_dir>/lake are ciphertext, a delivery stream whose destination
names a KMS key writes encrypted objects, and a key that is not configured is refused."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, _start_server, _stop

ACCOUNT = "000000000000"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
KEY2_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/second"
UNKNOWN_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/not-configured"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    keys = tmp_path_factory.mktemp("sluice-keys")
    (keys / "lake.key").write_text(os.urandom(32).hex() + "\n")
    (keys / "second.key").write_text(os.urandom(32).hex())
    for f in keys.iterdir():
        f.chmod(0o600)
    config = keys / "sluice.toml"
    config.write_text(
        "[[keys]]\n"
        f'arn = "{KEY_ARN}"\n'
        'alias = "alias/lake"\n'
        'file = "lake.key"\n'
        "default = true\n"
        "\n[[keys]]\n"
        f'arn = "{KEY2_ARN}"\n'
        'file = "second.key"\n'
    )
    data_dir = tmp_path_factory.mktemp("sluice-sse-data")
    s = _start_server(data_dir, tmp_path_factory.mktemp("sluice-sse-logs"), config=config)
    try:
        yield s
    finally:
        _stop(s.proc)


def client(srv, service: str):
    cfg = {"retries": {"total_max_attempts": 2, "mode": "standard"}, "connect_timeout": 5, "read_timeout": 60}
    if service == "s3":
        cfg["s3"] = {"addressing_style": "path"}
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client(service, endpoint_url=srv.endpoint, config=Config(**cfg))


@pytest.fixture(scope="module")
def s3(srv):
    return client(srv, "s3")


def new_bucket(s3) -> str:
    name = f"sse-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def on_disk(srv, bucket: str, key: str) -> bytes:
    return (Path(srv.data_dir) / "lake" / bucket / key).read_bytes()


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def test_sse_kms_put_get_head_and_ranges(srv, s3):
    b = new_bucket(s3)
    body = b"secret payload " * 10_000
    r = s3.put_object(Bucket=b, Key="k/kms", Body=body, ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="alias/lake")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == KEY_ARN
    got = s3.get_object(Bucket=b, Key="k/kms")
    assert got["Body"].read() == body
    assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == KEY_ARN
    h = s3.head_object(Bucket=b, Key="k/kms")
    assert h["ContentLength"] == len(body) and h["ServerSideEncryption"] == "aws:kms"
    assert h["SSEKMSKeyId"] == KEY_ARN
    part = s3.get_object(Bucket=b, Key="k/kms", Range="bytes=70000-70099")
    assert part["Body"].read() == body[70000:70100]
    assert part["ContentRange"] == f"bytes 70000-70099/{len(body)}"
    raw = on_disk(srv, b, "k/kms")
    assert raw != body and b"secret payload" not in raw
    # Listings give the object's size, not the file's.
    listed = s3.list_objects_v2(Bucket=b)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k/kms", len(body))]


def test_sse_s3_and_kms_default_key(srv, s3):
    b = new_bucket(s3)
    r = s3.put_object(Bucket=b, Key="aes", Body=b"hello AES256", ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in r
    got = s3.get_object(Bucket=b, Key="aes")
    assert got["Body"].read() == b"hello AES256" and got["ServerSideEncryption"] == "AES256"
    assert b"hello AES256" not in on_disk(srv, b, "aes")
    # aws:kms without a key id: the default key (S3's aws/s3).
    s3.put_object(Bucket=b, Key="dflt", Body=b"default key", ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket=b, Key="dflt")["SSEKMSKeyId"] == KEY_ARN
    # Not encrypted: no header, plain file.
    s3.put_object(Bucket=b, Key="plain", Body=b"in the clear")
    h = s3.head_object(Bucket=b, Key="plain")
    assert "ServerSideEncryption" not in h
    assert on_disk(srv, b, "plain") == b"in the clear"


def test_copy_and_multipart(srv, s3):
    b = new_bucket(s3)
    s3.put_object(Bucket=b, Key="src", Body=b"copy me", ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY2_ARN)
    # Copied without SSE headers: the copy stays encrypted under the source's key.
    r = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == KEY2_ARN
    assert s3.get_object(Bucket=b, Key="dst")["Body"].read() == b"copy me"
    # Re-encrypted in place under another key.
    s3.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"}, ServerSideEncryption="AES256")
    got = s3.get_object(Bucket=b, Key="src")
    assert got["Body"].read() == b"copy me" and got["ServerSideEncryption"] == "AES256"
    # Multipart with SSE-KMS.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId="lake-key")
    assert up["ServerSideEncryption"] == "aws:kms" and up["SSEKMSKeyId"] == KEY_ARN
    p1, p2 = os.urandom(5 * 1024 * 1024), b"the end"
    parts = []
    for n, p in ((1, p1), (2, p2)):
        e = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=p)["ETag"]
        parts.append({"PartNumber": n, "ETag": e})
    done = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "aws:kms"
    got = s3.get_object(Bucket=b, Key="mp")
    assert got["Body"].read() == p1 + p2 and got["SSEKMSKeyId"] == KEY_ARN
    assert on_disk(srv, b, "mp")[-7:] != b"the end"


def test_unknown_keys_and_bad_headers_are_refused(srv, s3):
    b = new_bucket(s3)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="x", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=UNKNOWN_ARN)
    assert code(e.value) == "KMS.NotFoundException"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # A key id without aws:kms.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="x", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId=KEY_ARN)
    assert code(e.value) == "InvalidArgument"


def test_a_tampered_object_is_an_error(srv, s3):
    b = new_bucket(s3)
    s3.put_object(Bucket=b, Key="t", Body=b"do not alter", ServerSideEncryption="AES256")
    path = Path(srv.data_dir) / "lake" / b / "t"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(Exception):
        s3.get_object(Bucket=b, Key="t")["Body"].read()


def wait_objects(s3, bucket: str, prefix: str, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        if keys:
            return keys
        time.sleep(0.3)
    raise AssertionError(f"no object under {bucket}/{prefix} within {timeout}s")


def test_firehose_delivers_encrypted_objects(srv, s3):
    fh = client(srv, "firehose")
    b = new_bucket(s3)
    name = f"sse-{uuid.uuid4().hex[:8]}"
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{b}",
            "Prefix": "enc/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": KEY2_ARN}},
        },
    )
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["EncryptionConfiguration"] == {"KMSEncryptionConfig": {"AWSKMSKeyARN": KEY2_ARN}}
    records = [json.dumps({"n": i, "msg": "confidential"}).encode() + b"\n" for i in range(20)]
    fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    keys = wait_objects(s3, b, "enc/")
    got = b""
    for k in keys:
        o = s3.get_object(Bucket=b, Key=k)
        assert o["ServerSideEncryption"] == "aws:kms" and o["SSEKMSKeyId"] == KEY2_ARN
        got += o["Body"].read()
        assert b"confidential" not in on_disk(srv, b, k)
    # Everything put is delivered (at least once), decrypted.
    assert set(records) <= set(got.splitlines(keepends=True))
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_firehose_stream_encryption_with_the_default_key(srv, s3):
    fh = client(srv, "firehose")
    b = new_bucket(s3)
    name = f"sse-{uuid.uuid4().hex[:8]}"
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"},
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{b}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    fh.put_record(DeliveryStreamName=name, Record={"Data": b"owned key\n"})
    k = wait_objects(s3, b, "")[0]
    o = s3.get_object(Bucket=b, Key=k)
    assert o["ServerSideEncryption"] == "AES256" and o["Body"].read() == b"owned key\n"
    assert b"owned key" not in on_disk(srv, b, k)
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_firehose_refuses_keys_that_are_not_configured(srv):
    fh = client(srv, "firehose")
    dest = {
        "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
        "BucketARN": "arn:aws:s3:::sse-refused",
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": UNKNOWN_ARN}},
    }
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=f"sse-{uuid.uuid4().hex[:8]}",
                                  ExtendedS3DestinationConfiguration=dest)
    assert code(e.value) == "InvalidKMSResourceException"
    del dest["EncryptionConfiguration"]
    name = f"sse-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": UNKNOWN_ARN},
            ExtendedS3DestinationConfiguration=dest)
    assert code(e.value) == "InvalidKMSResourceException"
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dest)
    for _ in range(50):
        if fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE":
            break
        time.sleep(0.2)
    with pytest.raises(ClientError) as e:
        fh.start_delivery_stream_encryption(
            DeliveryStreamName=name,
            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": UNKNOWN_ARN})
    assert code(e.value) == "InvalidKMSResourceException"
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_a_bad_key_file_stops_the_start(tmp_path):
    (tmp_path / "short.key").write_text("abcd")
    config = tmp_path / "sluice.toml"
    config.write_text(f'[[keys]]\narn = "{KEY_ARN}"\nfile = "short.key"\n')
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir()
    logs.mkdir()
    with pytest.raises(BaseException) as e:
        s = _start_server(data, logs, config=config)
        _stop(s.proc)
    assert "short.key" in (logs / "sluice.stderr").read_text(errors="replace") or "short.key" in str(e.value)
