"""The lake's S3 API against the real binary: boto3, the AWS CLI v1, presigned URLs with
urllib, raw HTTP for aws-chunked bodies and virtual-host style, and the same object operations
against an external S3-compatible server (moto in server mode) through the object_store back
end ([lake] endpoint)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, _start_server, _stop

MIB = 1024 * 1024


def s3_client(endpoint: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY, **cfg):
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION,
    ).client("s3", endpoint_url=endpoint, config=Config(
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 2, "mode": "standard"},
        connect_timeout=5, read_timeout=60, **cfg))


def new_bucket(s3, prefix: str = "b") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def status(e: ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


@pytest.fixture(scope="module")
def s3(endpoint):
    return s3_client(endpoint)


# ======================================================================================
# boto3: objects
# ======================================================================================

def test_put_get_head_and_ranges(s3):
    b = new_bucket(s3)
    body = bytes(range(256)) * 40
    put = s3.put_object(Bucket=b, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                        Metadata={"owner": "ana", "Purpose": "tests"}, CacheControl="no-cache")
    assert put["ETag"] == f'"{md5(body)}"'
    got = s3.get_object(Bucket=b, Key="dir/obj.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"owner": "ana", "purpose": "tests"}
    assert got["CacheControl"] == "no-cache"
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=b, Key="dir/obj.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert abs(head["LastModified"].timestamp() - time.time()) < 120
    r = s3.get_object(Bucket=b, Key="dir/obj.bin", Range="bytes=10-19")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert r["Body"].read() == body[10:20]
    assert s3.get_object(Bucket=b, Key="dir/obj.bin", Range="bytes=-5")["Body"].read() == body[-5:]
    assert s3.get_object(Bucket=b, Key="dir/obj.bin", Range="bytes=10000-")["Body"].read() == body[10000:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="dir/obj.bin", Range=f"bytes={len(body)}-")
    assert (status(e.value), code(e.value)) == (416, "InvalidRange")
    # An empty object.
    s3.put_object(Bucket=b, Key="empty", Body=b"")
    assert s3.get_object(Bucket=b, Key="empty")["Body"].read() == b""
    assert s3.head_object(Bucket=b, Key="empty")["ContentLength"] == 0
    # Keys with characters that need encoding.
    for key in ["with space/and+plus", "unicodé/ключ/鍵", "a%20literal", "q?x=1&y=#frag"]:
        s3.put_object(Bucket=b, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=b, Key=key)["Body"].read() == key.encode()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]}
    assert {"with space/and+plus", "unicodé/ключ/鍵", "a%20literal", "q?x=1&y=#frag"} <= keys


def test_conditional_requests(s3):
    b = new_bucket(s3)
    etag = s3.put_object(Bucket=b, Key="k", Body=b"v")["ETag"]
    assert s3.get_object(Bucket=b, Key="k", IfMatch=etag)["Body"].read() == b"v"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", IfMatch='"0000"')
    assert (status(e.value), code(e.value)) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", IfNoneMatch=etag)
    assert status(e.value) == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="k", IfModifiedSince="2100-01-01T00:00:00Z")
    assert status(e.value) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="k", IfUnmodifiedSince="2000-01-01T00:00:00Z")
    assert status(e.value) == 412
    # PutObject with If-None-Match: * writes only if absent.
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="k", Body=b"w", IfNoneMatch="*")
    assert status(e.value) == 412
    s3.put_object(Bucket=b, Key="k2", Body=b"w", IfNoneMatch="*")


def test_copy_object(s3):
    src, dst = new_bucket(s3, "src"), new_bucket(s3, "dst")
    etag = s3.put_object(Bucket=src, Key="a", Body=b"payload", ContentType="text/plain",
                         Metadata={"m": "1"})["ETag"]
    r = s3.copy_object(Bucket=dst, Key="b/c", CopySource={"Bucket": src, "Key": "a"})
    assert r["CopyObjectResult"]["ETag"] == etag
    got = s3.get_object(Bucket=dst, Key="b/c")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"payload", "text/plain", {"m": "1"})
    s3.copy_object(Bucket=dst, Key="b/c", CopySource=f"{src}/a", MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"n": "2"})
    h = s3.head_object(Bucket=dst, Key="b/c")
    assert (h["ContentType"], h["Metadata"]) == ("application/json", {"n": "2"})
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=src, Key="a", CopySource={"Bucket": src, "Key": "a"})
    assert code(e.value) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=dst, Key="x", CopySource={"Bucket": src, "Key": "missing"})
    assert code(e.value) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=dst, Key="x", CopySource={"Bucket": src, "Key": "a"},
                       CopySourceIfMatch='"nope"')
    assert status(e.value) == 412


def test_delete_object_and_objects(s3):
    b = new_bucket(s3)
    for k in ["a", "b/c", "b/d", "e"]:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    assert s3.delete_object(Bucket=b, Key="a")["ResponseMetadata"]["HTTPStatusCode"] == 204
    # Deleting what is not there is not an error.
    s3.delete_object(Bucket=b, Key="a")
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "b/c"}, {"Key": "b/d"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["b/c", "b/d", "zz"]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "e"}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    s3.delete_bucket(Bucket=b)


def test_list_objects_v2_delimiter_and_pagination(s3):
    b = new_bucket(s3)
    keys = sorted([f"logs/2024/{d:02d}/part-{i}.json" for d in range(1, 4) for i in range(3)]
                  + ["logs/readme.txt", "data-1", "data.csv", "data/x", "top"])
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"x")
    # Everything, four at a time, through the paginator.
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 4})
    got, n_pages = [], 0
    for p in pages:
        n_pages += 1
        assert p["KeyCount"] == len(p.get("Contents", []))
        got += [o["Key"] for o in p.get("Contents", [])]
    assert got == keys
    assert n_pages == (len(keys) + 3) // 4
    # Delimiter: common prefixes, in order with the keys.
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["data/", "logs/"]
    assert [o["Key"] for o in r["Contents"]] == ["data-1", "data.csv", "top"]
    r = s3.list_objects_v2(Bucket=b, Prefix="logs/2024/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/2024/01/", "logs/2024/02/", "logs/2024/03/"]
    assert "Contents" not in r
    # Paging with a delimiter: one item per page, prefixes counted like keys.
    items, token = [], None
    for _ in range(20):
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, Delimiter="/", MaxKeys=1, **kw)
        items += [p["Prefix"] for p in r.get("CommonPrefixes", [])] + [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert items == ["data-1", "data.csv", "data/", "logs/", "top"]
    # StartAfter, a string prefix, and objects' fields.
    r = s3.list_objects_v2(Bucket=b, StartAfter="logs/2024/03/part-1.json", Prefix="logs/")
    assert [o["Key"] for o in r["Contents"]] == ["logs/2024/03/part-2.json", "logs/readme.txt"]
    r = s3.list_objects_v2(Bucket=b, Prefix="dat", FetchOwner=True)
    o = r["Contents"][0]
    assert o["ETag"] == f'"{md5(b"x")}"' and o["Size"] == 1 and o["StorageClass"] == "STANDARD"
    assert "Owner" in o
    # ListObjects v1 with Marker.
    r = s3.list_objects(Bucket=b, Marker="logs/readme.txt")
    assert [o["Key"] for o in r["Contents"]] == ["top"]
    r = s3.list_objects(Bucket=b, Delimiter="/", MaxKeys=3)
    assert r["IsTruncated"] and r["NextMarker"] == "data/"
    r = s3.list_objects(Bucket=b, Delimiter="/", Marker="data/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/"]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=b, ContinuationToken="not a token!")
    assert code(e.value) == "InvalidArgument"


def test_multipart_upload_of_three_5_mib_parts(s3):
    b = new_bucket(s3)
    parts = [os.urandom(5 * MIB) for _ in range(3)]
    up = s3.create_multipart_upload(Bucket=b, Key="big/obj", ContentType="application/octet-stream",
                                    Metadata={"kind": "mp"})
    uid = up["UploadId"]
    etags = {}
    # Out of order.
    for n in (3, 1, 2):
        r = s3.upload_part(Bucket=b, Key="big/obj", UploadId=uid, PartNumber=n, Body=parts[n - 1])
        assert r["ETag"] == f'"{md5(parts[n - 1])}"'
        etags[n] = r["ETag"]
    listed = s3.list_parts(Bucket=b, Key="big/obj", UploadId=uid)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, 5 * MIB), (2, 5 * MIB), (3, 5 * MIB)]
    page = s3.list_parts(Bucket=b, Key="big/obj", UploadId=uid, MaxParts=2)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    uploads = s3.list_multipart_uploads(Bucket=b)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big/obj", uid)]
    # Wrong ETag, wrong order.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="big/obj", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etags[2]}]})
    assert code(e.value) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="big/obj", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": etags[2]}, {"PartNumber": 1, "ETag": etags[1]}]})
    assert code(e.value) == "InvalidPartOrder"
    done = s3.complete_multipart_upload(Bucket=b, Key="big/obj", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]})
    assert done["ETag"] == f'"{multipart_etag(parts)}"'
    got = s3.get_object(Bucket=b, Key="big/obj")
    assert got["ETag"] == done["ETag"]
    assert got["Metadata"] == {"kind": "mp"}
    assert got["Body"].read() == b"".join(parts)
    assert s3.list_multipart_uploads(Bucket=b).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=b, Key="big/obj", UploadId=uid, PartNumber=1, Body=b"x")
    assert (status(e.value), code(e.value)) == (404, "NoSuchUpload")
    # Too small a part before the last; abort.
    uid = s3.create_multipart_upload(Bucket=b, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=b, Key="small", UploadId=uid, PartNumber=1, Body=b"tiny")["ETag"]
    e2 = s3.upload_part(Bucket=b, Key="small", UploadId=uid, PartNumber=2, Body=b"end")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="small", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e.value) == "EntityTooSmall"
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=b, Key="small", UploadId=uid, PartNumber=10001, Body=b"x")
    assert code(e.value) == "InvalidArgument"
    s3.abort_multipart_upload(Bucket=b, Key="small", UploadId=uid)
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=b, Key="small", UploadId=uid)
    assert code(e.value) == "NoSuchUpload"


def test_upload_file_and_download_file_use_multipart(s3, tmp_path):
    b = new_bucket(s3)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(17 * MIB))
    s3.upload_file(str(src), b, "file.bin")
    assert s3.head_object(Bucket=b, Key="file.bin")["ETag"].endswith('-3"')
    dst = tmp_path / "dst.bin"
    s3.download_file(b, "file.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()


# ======================================================================================
# boto3: buckets and errors
# ======================================================================================

def test_buckets_and_their_errors(s3):
    b = new_bucket(s3)
    assert b in [x["Name"] for x in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=b)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == REGION
    assert s3.get_bucket_location(Bucket=b).get("LocationConstraint") is None
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=b)
    assert (status(e.value), code(e.value)) == (409, "BucketAlreadyOwnedByYou")
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=b)
    assert (status(e.value), code(e.value)) == (409, "BucketNotEmpty")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=b, Key="nope")
    assert (status(e.value), code(e.value)) == (404, "NoSuchKey")
    assert e.value.response["Error"]["Message"] == "The specified key does not exist."
    assert e.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=b, Key="nope")
    assert status(e.value) == 404
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    for call in (lambda: s3.get_object(Bucket=missing, Key="k"),
                 lambda: s3.list_objects_v2(Bucket=missing),
                 lambda: s3.put_object(Bucket=missing, Key="k", Body=b"v"),
                 lambda: s3.delete_bucket(Bucket=missing)):
        with pytest.raises(ClientError) as e:
            call()
        assert (status(e.value), code(e.value)) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=missing)
    assert status(e.value) == 404
    unchecked = s3_client(s3.meta.endpoint_url, parameter_validation=False)
    with pytest.raises(ClientError) as e:
        unchecked.create_bucket(Bucket="Not_Valid")
    assert (status(e.value), code(e.value)) == (400, "InvalidBucketName")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="k" * 1025, Body=b"v")
    assert code(e.value) == "KeyTooLongError"
    # Keys that are directories of each other, on the local lake.
    s3.put_object(Bucket=b, Key="p/q", Body=b"v")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="p", Body=b"v")
    assert (status(e.value), code(e.value)) == (409, "KeyConflict")
    # Operations sluice does not implement name themselves.
    with pytest.raises(ClientError) as e:
        s3.get_bucket_versioning(Bucket=b)
    assert status(e.value) == 501 and code(e.value) == "NotImplemented"
    assert "GetBucketVersioning" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert status(e.value) == 501
    s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k"}, {"Key": "p/q"}]})
    s3.delete_bucket(Bucket=b)
    assert b not in [x["Name"] for x in s3.list_buckets()["Buckets"]]


def test_an_object_is_a_plain_file_in_the_lake_directory(s3, server):
    if server.data_dir is None:
        pytest.skip("an external server's data directory is not known")
    import pyarrow as pa
    import pyarrow.parquet as pq

    b = new_bucket(s3, "lake")
    table = pa.table({"user": ["a", "b", "c"], "n": [1, 2, 3]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    s3.put_object(Bucket=b, Key="year=2026/month=11/part-0.parquet", Body=data)
    path = Path(server.data_dir) / "lake" / b / "year=2026" / "month=11" / "part-0.parquet"
    assert path.read_bytes() == data
    assert pq.read_table(path).equals(table)
    # The bucket's directory holds the objects and nothing else (metadata lives elsewhere).
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-0.parquet"]
    # A file another program puts there is an object too.
    (path.parent / "from-outside.csv").write_bytes(b"a,b\n")
    r = s3.list_objects_v2(Bucket=b, Prefix="year=2026/month=11/")
    assert [o["Key"] for o in r["Contents"]] == ["year=2026/month=11/from-outside.csv",
                                                 "year=2026/month=11/part-0.parquet"]
    assert s3.get_object(Bucket=b, Key="year=2026/month=11/from-outside.csv")["Body"].read() == b"a,b\n"


# ======================================================================================
# The AWS CLI
# ======================================================================================

def test_aws_cli_mb_cp_ls_sync_rm(aws_cli, tmp_path):
    def aws(*args: str) -> str:
        p = aws_cli.run(*args, check=False)
        assert p.returncode == 0, f"aws {' '.join(args)}: {p.stderr}"
        return p.stdout

    bucket = f"cli-{uuid.uuid4().hex[:10]}"
    q = "--only-show-errors"
    aws("s3", "mb", f"s3://{bucket}")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MIB))  # over the CLI's 8 MB threshold: multipart
    aws("s3", "cp", str(big), f"s3://{bucket}/dir/big.bin", q)
    small = tmp_path / "small.txt"
    small.write_text("hello\n")
    aws("s3", "cp", str(small), f"s3://{bucket}/small.txt", q)
    back = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/dir/big.bin", str(back), q)
    assert back.read_bytes() == big.read_bytes()
    lines = aws("s3", "ls", f"s3://{bucket}", "--recursive").strip().splitlines()
    assert [ln.split()[-1] for ln in lines] == ["dir/big.bin", "small.txt"]
    assert lines[0].split()[2] == str(12 * MIB)
    top = aws("s3", "ls", f"s3://{bucket}/")
    assert "PRE dir/" in top and "small.txt" in top
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    out = aws("s3", "sync", str(src), f"s3://{bucket}/tree")
    assert out.count("upload:") == 2, out
    # A second sync uploads nothing.
    out = aws("s3", "sync", str(src), f"s3://{bucket}/tree")
    assert "upload:" not in out, out
    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/tree", str(down), q)
    assert (down / "sub" / "b.txt").read_text() == "b"
    aws("s3", "rm", f"s3://{bucket}", "--recursive", q)
    assert aws("s3", "ls", f"s3://{bucket}", "--recursive").strip() == ""
    aws("s3", "rb", f"s3://{bucket}")
    listed = aws_cli.run("s3api", "list-buckets")
    assert bucket not in [b["Name"] for b in listed["Buckets"]]


# ======================================================================================
# Raw HTTP: presigned URLs, virtual-host style, aws-chunked, payload hashes
# ======================================================================================

class GivenHashAuth(S3SigV4Auth):
    """botocore's S3 signer, except that an x-amz-content-sha256 the request already carries
    (UNSIGNED-PAYLOAD, STREAMING-..., a wrong hash on purpose) is the one signed and sent."""

    def _modify_request_before_signing(self, request):
        given = request.headers.get("X-Amz-Content-SHA256")
        super()._modify_request_before_signing(request)
        if given is not None:
            del request.headers["X-Amz-Content-SHA256"]
            request.headers["X-Amz-Content-SHA256"] = given


def signed_request(endpoint: str, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                   host: str | None = None, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
    """Signs with botocore's S3 signer (the x-amz-content-sha256 header, when given, is what
    the signature covers) and sends with http.client; (status, headers, body)."""
    u = urllib.parse.urlsplit(endpoint)
    url = f"{u.scheme}://{host or u.netloc}{path}"
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    GivenHashAuth(Credentials(key, secret), "s3", REGION).add_auth(req)
    sent = dict(req.headers.items())
    sent["Host"] = host or u.netloc
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_virtual_host_style(s3, endpoint):
    b = new_bucket(s3, "vh")
    port = urllib.parse.urlsplit(endpoint).port
    for host in (f"{b}.localhost:{port}", f"{b}.s3.localhost:{port}"):
        st, _, _ = signed_request(endpoint, "PUT", "/v/key.txt", b"virtual", host=host)
        assert st == 200
        st, _, body = signed_request(endpoint, "GET", "/v/key.txt", host=host)
        assert (st, body) == (200, b"virtual")
        st, _, body = signed_request(endpoint, "GET", "/?list-type=2", host=host)
        assert st == 200 and b"<Key>v/key.txt</Key>" in body
    assert s3.get_object(Bucket=b, Key="v/key.txt")["Body"].read() == b"virtual"


def test_payload_hashes_are_checked(s3, endpoint):
    b = new_bucket(s3, "sha")
    st, _, body = signed_request(endpoint, "PUT", f"/{b}/k", b"data",
                                 headers={"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})
    assert st == 400 and b"XAmzContentSHA256Mismatch" in body
    st, _, body = signed_request(endpoint, "PUT", f"/{b}/k", b"data",
                                 headers={"Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()})
    assert st == 400 and b"BadDigest" in body
    crc = base64.b64encode(zlib.crc32(b"data").to_bytes(4, "big")).decode()
    st, h, _ = signed_request(endpoint, "PUT", f"/{b}/k", b"data",
                              headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": crc})
    assert st == 200 and h["x-amz-checksum-crc32"] == crc
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"data"


def chunked_body(chunks: list[bytes], signing_key: bytes | None, seed: str | None, amz_date: str,
                 scope: str, trailer: str | None = None) -> bytes:
    out = b""
    prev = seed
    empty = hashlib.sha256(b"").hexdigest()
    for c in chunks + [b""]:
        if signing_key is not None:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                             hashlib.sha256(c).hexdigest()])
            sig = hmac.new(signing_key, sts.encode(), hashlib.sha256).hexdigest()
            prev = sig
            out += f"{len(c):x};chunk-signature={sig}\r\n".encode()
        else:
            out += f"{len(c):x}\r\n".encode()
        out += c + (b"\r\n" if c else b"")
    if trailer is not None:
        out += trailer.encode() + b"\r\n"
    return out + b"\r\n"


def signing_key(secret: str, date: str) -> bytes:
    k = hmac.new(b"AWS4" + secret.encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def streaming_put(endpoint: str, path: str, chunks: list[bytes], key: str, secret: str,
                  tamper: bool = False):
    """A PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as the AWS CLI and SDKs send it."""
    u = urllib.parse.urlsplit(endpoint)
    data = b"".join(chunks)
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    req = AWSRequest(method="PUT", url=f"{endpoint}{path}", data=b"", headers=headers)
    GivenHashAuth(Credentials(key, secret), "s3", REGION).add_auth(req)
    amz_date = req.headers["X-Amz-Date"]
    seed = req.headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    body = chunked_body(chunks, signing_key(secret, amz_date[:8]), seed, amz_date, scope)
    if tamper:
        body = body.replace(b"zzz", b"zzy", 1)
    hdrs = dict(req.headers.items())
    hdrs["Content-Length"] = str(len(body))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("PUT", path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_unsigned_chunked_upload_with_a_checksum_trailer(s3, endpoint):
    b = new_bucket(s3, "chunk")
    chunks = [b"hello ", b"chunked ", b"world"]
    data = b"".join(chunks)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = chunked_body(chunks, None, None, "", "", trailer=f"x-amz-checksum-crc32:{crc}")
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
               "x-amz-decoded-content-length": str(len(data))}
    st, h, _ = signed_request(endpoint, "PUT", f"/{b}/t", body, headers=headers)
    assert st == 200 and h["etag"] == f'"{md5(data)}"'
    got = s3.get_object(Bucket=b, Key="t")
    assert got["Body"].read() == data
    assert "ContentEncoding" not in got  # aws-chunked is how it travelled, not what it is
    bad = chunked_body(chunks, None, None, "", "", trailer="x-amz-checksum-crc32:AAAAAA==")
    st, _, body = signed_request(endpoint, "PUT", f"/{b}/t2", bad, headers=headers)
    assert st == 400 and b"BadDigest" in body


# ---- a server that requires signatures --------------------------------------------------

KEYED_ID = "AKIDS3TESTKEY000001"
KEYED_SECRET = "s3-test-secret/with+chars"


@pytest.fixture(scope="module")
def keyed(aws_env, tmp_path_factory):
    srv = _start_server(tmp_path_factory.mktemp("s3-keyed-data"), tmp_path_factory.mktemp("s3-keyed-logs"),
                        extra_env={"SLUICE_ACCESS_KEY_ID": KEYED_ID, "SLUICE_SECRET_ACCESS_KEY": KEYED_SECRET})
    try:
        yield srv
    finally:
        _stop(srv.proc)


def test_signatures_are_required_and_checked(keyed):
    good = s3_client(keyed.endpoint, KEYED_ID, KEYED_SECRET)
    b = new_bucket(good, "auth")
    good.put_object(Bucket=b, Key="k", Body=b"secret data")
    # Keys whose path needs encoding: the canonical URI is the path encoded once, as S3 signs.
    for key in ["with space/and+plus=1&x", "unicodé/ключ", "a%20literal", "tilde~/star*(1)"]:
        good.put_object(Bucket=b, Key=key, Body=key.encode())
        assert good.get_object(Bucket=b, Key=key)["Body"].read() == key.encode()
    wrong = s3_client(keyed.endpoint, KEYED_ID, "not-the-secret")
    with pytest.raises(ClientError) as e:
        wrong.get_object(Bucket=b, Key="k")
    assert (status(e.value), code(e.value)) == (403, "SignatureDoesNotMatch")
    unknown = s3_client(keyed.endpoint, "AKIDUNKNOWN", KEYED_SECRET)
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert (status(e.value), code(e.value)) == (403, "InvalidAccessKeyId")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{keyed.endpoint}/{b}/k", timeout=10)
    assert e.value.code == 403


def test_presigned_get_urls(keyed):
    good = s3_client(keyed.endpoint, KEYED_ID, KEYED_SECRET, signature_version="s3v4")
    b = new_bucket(good, "presign")
    good.put_object(Bucket=b, Key="dir/file name.txt", Body=b"presigned bytes")
    url = good.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/file name.txt"},
                                      ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"presigned bytes"
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403
    other_key = good.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/other"},
                                            ExpiresIn=300)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(other_key.replace("dir/other", "dir/file%20name.txt"), timeout=10)
    assert e.value.code == 403
    expired = good.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "dir/file name.txt"},
                                          ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired, timeout=10)
    assert e.value.code == 403 and b"AccessDenied" in e.value.read()
    # Signature Version 2 (boto3's default for presigned S3 URLs) is refused, saying why.
    v2 = s3_client(keyed.endpoint, KEYED_ID, KEYED_SECRET).generate_presigned_url(
        "get_object", Params={"Bucket": b, "Key": "dir/file name.txt"}, ExpiresIn=300)
    if "AWSAccessKeyId=" in v2:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(v2, timeout=10)
        assert e.value.code == 403 and b"Signature Version 4 only" in e.value.read()


def test_presigned_urls_without_keys(s3, endpoint):
    b = new_bucket(s3, "presign-open")
    s3.put_object(Bucket=b, Key="k", Body=b"open")
    for version in ("s3v4", None):
        kw = {"signature_version": version} if version else {}
        url = s3_client(endpoint, **kw).generate_presigned_url(
            "get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=60)
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"open"


def test_signed_streaming_upload(keyed):
    good = s3_client(keyed.endpoint, KEYED_ID, KEYED_SECRET)
    b = new_bucket(good, "stream")
    chunks = [b"a" * 65536, b"zzz" * 1000, b"tail"]
    st, body = streaming_put(keyed.endpoint, f"/{b}/streamed", chunks, KEYED_ID, KEYED_SECRET)
    assert st == 200, body
    assert good.get_object(Bucket=b, Key="streamed")["Body"].read() == b"".join(chunks)
    st, body = streaming_put(keyed.endpoint, f"/{b}/tampered", chunks, KEYED_ID, KEYED_SECRET, tamper=True)
    assert st == 403 and b"SignatureDoesNotMatch" in body
    with pytest.raises(ClientError) as e:
        good.head_object(Bucket=b, Key="tampered")
    assert status(e.value) == 404


def test_aws_cli_with_keys(keyed, aws_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_env)
    env.update({"AWS_ACCESS_KEY_ID": KEYED_ID, "AWS_SECRET_ACCESS_KEY": KEYED_SECRET, "AWS_PAGER": ""})
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(9 * MIB))
    bucket = f"clikeys-{uuid.uuid4().hex[:8]}"

    def aws(*args):
        p = subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", keyed.endpoint,
                            "--region", REGION], env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return p.stdout

    aws("s3", "mb", f"s3://{bucket}")
    aws("s3", "cp", str(f), f"s3://{bucket}/f.bin")
    aws("s3", "cp", f"s3://{bucket}/f.bin", str(tmp_path / "g.bin"))
    assert (tmp_path / "g.bin").read_bytes() == f.read_bytes()


# ======================================================================================
# The same against an external S3-compatible server: moto through object_store
# ======================================================================================

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    pytest.importorskip("moto", reason="moto[server] is in tests/python/requirements.txt")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("moto.server exited at start")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def remote_sluice(moto, aws_env, tmp_path_factory):
    cfg = tmp_path_factory.mktemp("s3-remote-cfg") / "sluice.toml"
    cfg.write_text(f'[lake]\nendpoint = "{moto}"\naccess_key_id = "moto"\nsecret_access_key = "moto"\n')
    srv = _start_server(tmp_path_factory.mktemp("s3-remote-data"), tmp_path_factory.mktemp("s3-remote-logs"),
                        config=cfg)
    try:
        yield srv
    finally:
        _stop(srv.proc)


def test_objects_land_in_an_external_s3_server(remote_sluice, moto, tmp_path):
    via = s3_client(remote_sluice.endpoint)
    direct = s3_client(moto, "moto", "moto")
    b = f"remote-{uuid.uuid4().hex[:10]}"
    via.create_bucket(Bucket=b)
    assert b in [x["Name"] for x in direct.list_buckets()["Buckets"]]
    assert b in [x["Name"] for x in via.list_buckets()["Buckets"]]
    etag = via.put_object(Bucket=b, Key="a/b.json", Body=b'{"x":1}', ContentType="application/json",
                          Metadata={"who": "sluice"})["ETag"]
    d = direct.get_object(Bucket=b, Key="a/b.json")
    assert d["Body"].read() == b'{"x":1}'
    assert d["ContentType"] == "application/json" and d["Metadata"] == {"who": "sluice"}
    assert d["ETag"] == etag
    got = via.get_object(Bucket=b, Key="a/b.json")
    assert got["Body"].read() == b'{"x":1}' and got["Metadata"] == {"who": "sluice"}
    assert via.get_object(Bucket=b, Key="a/b.json", Range="bytes=1-3")["Body"].read() == b'"x"'
    direct.put_object(Bucket=b, Key="c/d.txt", Body=b"from moto")
    for k in ["a/c", "e"]:
        via.put_object(Bucket=b, Key=k, Body=k.encode())
    r = via.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]
    assert [o["Key"] for o in r["Contents"]] == ["e"]
    keys, token = [], None
    for _ in range(10):
        kw = {"ContinuationToken": token} if token else {}
        r = via.list_objects_v2(Bucket=b, MaxKeys=2, **kw)
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert keys == ["a/b.json", "a/c", "c/d.txt", "e"]
    assert via.get_object(Bucket=b, Key="c/d.txt")["Body"].read() == b"from moto"
    with pytest.raises(ClientError) as e:
        via.get_object(Bucket=b, Key="nope")
    assert code(e.value) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        via.put_object(Bucket=f"{b}-missing", Key="k", Body=b"v")
    assert code(e.value) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        via.create_bucket(Bucket=b)
    assert code(e.value) == "BucketAlreadyOwnedByYou"
    # Copy, multipart (3 parts of 5 MiB), delete.
    via.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "a/b.json"})
    assert direct.get_object(Bucket=b, Key="copy")["Body"].read() == b'{"x":1}'
    parts = [os.urandom(5 * MIB) for _ in range(3)]
    uid = via.create_multipart_upload(Bucket=b, Key="big")["UploadId"]
    etags = [via.upload_part(Bucket=b, Key="big", UploadId=uid, PartNumber=n + 1, Body=p)["ETag"]
             for n, p in enumerate(parts)]
    via.complete_multipart_upload(Bucket=b, Key="big", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    assert direct.get_object(Bucket=b, Key="big")["Body"].read() == b"".join(parts)
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(11 * MIB))
    via.upload_file(str(src), b, "uploaded.bin")
    assert direct.get_object(Bucket=b, Key="uploaded.bin")["Body"].read() == src.read_bytes()
    via.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in
                                                     ["a/b.json", "a/c", "c/d.txt", "e", "copy", "big", "uploaded.bin"]]})
    assert direct.list_objects_v2(Bucket=b).get("KeyCount", 0) == 0
    via.delete_bucket(Bucket=b)
    assert b not in [x["Name"] for x in direct.list_buckets()["Buckets"]]


def test_a_single_put_past_the_json_body_limit(s3):
    """The port's 14 MiB limit is the JSON services': S3 bodies are streamed to disk."""
    bucket = new_bucket(s3)
    body = os.urandom(20 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="big.bin", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.md5(got).digest() == hashlib.md5(body).digest()
