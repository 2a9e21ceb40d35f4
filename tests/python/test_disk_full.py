"""A full disk under a running server, for real: the data directory on a small tmpfs, filled
until the kernel answers ENOSPC. Writes fail with an AWS-shaped error that says the disk is
full, the shard accepts writes again by itself once space is freed (no restart), and every
acknowledged record is intact, before and after a restart.

Mounting a tmpfs needs root (CI runs as root); without it the test fails and says so.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import boto3
from conftest import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    _start_server,
    _stop,
    read_shard,
    unique_name,
    wait_active,
)

DISK_BYTES = 24 * 1024 * 1024
RECORD = b"r" * 4096


def _client(endpoint: str):
    # No retries: the test looks at each answer.
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30)
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, config=cfg)


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"mounting a tmpfs for the disk-full test failed (needs root): {r.stderr}",
                    pytrace=False)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path, keep_free: int) -> None:
    """Writes a filler file until at most `keep_free` bytes are left."""
    with open(path, "wb") as f:
        chunk = b"\0" * (256 * 1024)
        while True:
            free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
            if free <= keep_free:
                break
            try:
                f.write(chunk[: max(4096, min(len(chunk), free - keep_free))])
                f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break


def _health(endpoint: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_disk_full_is_reported_and_clears_by_itself(small_disk, tmp_path):
    data = small_disk / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    srv = _start_server(data, logs)
    name = unique_name("diskfull")
    acked: list[bytes] = []
    try:
        k = _client(srv.endpoint)
        k.create_stream(StreamName=name, ShardCount=1)
        wait_active(k, name)
        for i in range(20):
            payload = b"%04d-" % i + RECORD
            k.put_record(StreamName=name, PartitionKey="p", Data=payload)
            acked.append(payload)

        filler = small_disk / "filler"
        _fill(filler, keep_free=0)

        # PutRecord: InternalFailure (500) that says the disk is full.
        failures = 0
        for i in range(50):
            payload = b"full-%04d-" % i + RECORD
            try:
                k.put_record(StreamName=name, PartitionKey="p", Data=payload)
                acked.append(payload)
            except ClientError as e:
                failures += 1
                assert e.response["Error"]["Code"] == "InternalFailure", e.response
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 500
                assert "disk" in e.response["Error"]["Message"] and "full" in e.response["Error"]["Message"], e.response
        assert failures > 0, "the disk never filled up"

        # PutRecords: each failed record says so too.
        r = k.put_records(StreamName=name, Records=[
            {"PartitionKey": "p", "Data": b"batch-%d-" % i + RECORD} for i in range(10)])
        assert r["FailedRecordCount"] == 10, r
        for e in r["Records"]:
            assert e["ErrorCode"] == "InternalFailure"
            assert "disk" in e["ErrorMessage"] and "full" in e["ErrorMessage"], e

        # Health reports the shard as out of space.
        status, body = _health(srv.endpoint)
        assert status == 503, (status, body)
        assert "no_space" in body, body

        # Space comes back: writes resume without a restart.
        filler.unlink()
        deadline = time.time() + 20
        while True:
            try:
                k.put_record(StreamName=name, PartitionKey="p", Data=b"after-" + RECORD)
                acked.append(b"after-" + RECORD)
                break
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InternalFailure", e.response
                assert time.time() < deadline, "writes did not resume after space was freed"
                time.sleep(0.2)
        for i in range(5):
            payload = b"later-%d-" % i + RECORD
            k.put_record(StreamName=name, PartitionKey="p", Data=payload)
            acked.append(payload)
        status, body = _health(srv.endpoint)
        assert status == 200, (status, body)

        shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        got = [r["Data"] for r in read_shard(k, name, shard)]
        assert got == acked
    finally:
        _stop(srv.proc)

    # A restart finds exactly the acknowledged records, nothing torn or extra.
    srv = _start_server(data, logs)
    try:
        k = _client(srv.endpoint)
        shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        got = [r["Data"] for r in read_shard(k, name, shard)]
        assert got == acked
    finally:
        _stop(srv.proc)
