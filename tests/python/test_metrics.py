"""`/metrics`, `/health` and Enable/DisableEnhancedMonitoring, with boto3 and the AWS CLI.

Every test uses a stream of its own, so its per-stream series start at 0 on the shared server.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import assert_client_error, read_shard, stream_arn

ALL = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
]
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def http_get(endpoint: str, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET path."""
    try:
        with urllib.request.urlopen(endpoint + path, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape(endpoint: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample of /metrics (checked to parse)."""
    status, ctype, body = http_get(endpoint, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        samples[(m.group(1)) + (m.group(2) or "")] = float(m.group(3))
    return samples


def series(samples: dict[str, float], name: str, stream: str) -> float:
    return samples[f'{name}{{stream="{stream}"}}']


def shard_series(samples: dict[str, float], stream: str) -> dict[str, float]:
    return {k: v for k, v in samples.items()
            if k.startswith("sluice_kinesis_shard_") and f'stream="{stream}"' in k}


def test_stream_series_count_what_was_put_and_read(kinesis, new_stream, endpoint):
    name = new_stream("met", shards=2)
    records = [{"Data": f"value-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(7)]
    out = kinesis.put_records(StreamName=name, Records=records)
    assert out["FailedRecordCount"] == 0
    kinesis.put_record(StreamName=name, Data=b"one more", PartitionKey="last")
    size = sum(len(r["Data"]) + len(r["PartitionKey"]) for r in records) + len(b"one more") + 4
    got = sum(len(read_shard(kinesis, name, s["ShardId"]))
              for s in kinesis.list_shards(StreamName=name)["Shards"])
    assert got == 8

    m = scrape(endpoint)
    assert series(m, "sluice_kinesis_incoming_records_total", name) == 8
    assert series(m, "sluice_kinesis_incoming_bytes_total", name) == size
    assert series(m, "sluice_kinesis_put_records_successful_records_total", name) == 7
    assert series(m, "sluice_kinesis_put_records_success_total", name) == 1
    assert series(m, "sluice_kinesis_put_record_success_total", name) == 1
    assert series(m, "sluice_kinesis_get_records_records_total", name) == 8
    assert series(m, "sluice_kinesis_get_records_bytes_total", name) == size
    assert series(m, "sluice_kinesis_get_records_success_total", name) >= 2
    assert series(m, "sluice_kinesis_put_records_latency_seconds_count", name) == 1
    assert 'sluice_requests_total{service="kinesis",operation="PutRecords",status="2xx"}' in m
    assert not shard_series(m, name)


def test_enable_and_disable_enhanced_monitoring_with_boto3(kinesis, new_stream, endpoint):
    name = new_stream("enh", shards=2)
    on = kinesis.enable_enhanced_monitoring(StreamName=name,
                                            ShardLevelMetrics=["OutgoingBytes", "IncomingBytes"])
    assert on["StreamName"] == name
    assert on["StreamARN"] == stream_arn(name)
    assert on["CurrentShardLevelMetrics"] == []
    assert on["DesiredShardLevelMetrics"] == ["IncomingBytes", "OutgoingBytes"]
    for desc in (kinesis.describe_stream(StreamName=name)["StreamDescription"],
                 kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]):
        assert desc["EnhancedMonitoring"] == [{"ShardLevelMetrics": ["IncomingBytes", "OutgoingBytes"]}]

    kinesis.put_record(StreamName=name, Data=b"abc", PartitionKey="k")
    shard = kinesis.list_shards(StreamName=name)["Shards"]
    m = shard_series(scrape(endpoint), name)
    assert len(m) == 4  # two metrics on two shards
    assert sum(v for k, v in m.items() if "incoming_bytes" in k) == 4

    # By ARN; ALL stands for the seven.
    all_on = kinesis.enable_enhanced_monitoring(StreamARN=stream_arn(name), ShardLevelMetrics=["ALL"])
    assert all_on["CurrentShardLevelMetrics"] == ["IncomingBytes", "OutgoingBytes"]
    assert all_on["DesiredShardLevelMetrics"] == ALL
    assert len(shard_series(scrape(endpoint), name)) == 7 * len(shard)

    off = kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes"])
    assert off["CurrentShardLevelMetrics"] == ALL
    assert off["DesiredShardLevelMetrics"] == ALL[1:]
    m = shard_series(scrape(endpoint), name)
    assert not [k for k in m if "incoming_bytes" in k]
    off = kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert off["DesiredShardLevelMetrics"] == []
    assert not shard_series(scrape(endpoint), name)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]


def test_enhanced_monitoring_with_the_aws_cli(aws_cli, new_stream):
    name = new_stream("enhcli")
    out = aws_cli.run("kinesis", "enable-enhanced-monitoring", "--stream-name", name,
                      "--shard-level-metrics", "IteratorAgeMilliseconds", "IncomingRecords")
    assert out["StreamName"] == name
    assert out["CurrentShardLevelMetrics"] == []
    assert out["DesiredShardLevelMetrics"] == ["IncomingRecords", "IteratorAgeMilliseconds"]
    desc = aws_cli.run("kinesis", "describe-stream-summary", "--stream-name", name)
    assert desc["StreamDescriptionSummary"]["EnhancedMonitoring"] == [
        {"ShardLevelMetrics": ["IncomingRecords", "IteratorAgeMilliseconds"]}]
    out = aws_cli.run("kinesis", "disable-enhanced-monitoring", "--stream-name", name,
                      "--shard-level-metrics", "ALL")
    assert out["CurrentShardLevelMetrics"] == ["IncomingRecords", "IteratorAgeMilliseconds"]
    assert out["DesiredShardLevelMetrics"] == []


def test_enhanced_monitoring_errors(kinesis, kinesis_unvalidated, new_stream):
    name = new_stream("enherr")
    with pytest.raises(ClientError) as e:
        kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingBytes", "Bogus"])
    assert_client_error(
        e, "ValidationException",
        "1 validation error detected: Value '[IncomingBytes, Bogus]' at 'shardLevelMetrics' failed to "
        "satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
        "[IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, "
        "WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, "
        "IteratorAgeMilliseconds, ALL]]")
    with pytest.raises(ClientError) as e:
        kinesis_unvalidated.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=[])
    assert_client_error(
        e, "ValidationException",
        "1 validation error detected: Value '[]' at 'shardLevelMetrics' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1")
    with pytest.raises(ClientError) as e:
        kinesis.enable_enhanced_monitoring(StreamName=name + "-missing", ShardLevelMetrics=["ALL"])
    assert_client_error(e, "ResourceNotFoundException",
                        f"Stream {name}-missing under account 000000000000 not found.")


def test_health_is_json_and_plain_get_still_works(endpoint):
    status, ctype, body = http_get(endpoint, "/health")
    h = json.loads(body)
    assert ctype == "application/json"
    assert h["status"] in ("ok", "degraded")
    assert status == (200 if h["status"] == "ok" else 503)
    assert h["ready"] is (h["status"] == "ok")
    assert h["live"] is True
    assert isinstance(h["streams"], int)
    assert set(h["shards"]) == {"open", "closed", "poisoned", "no_space"}
    assert h["data_dir"]["free_bytes"] > 0
    status, _, body = http_get(endpoint, "/health?verbose=1")
    all_shards = json.loads(body)["shards"]["all"]
    assert len(all_shards) == h["shards"]["open"] + h["shards"]["closed"]
    assert all({"stream", "shard", "open", "state"} <= set(s) for s in all_shards)
    assert http_get(endpoint, "/health/live")[0] == 200


def test_enhanced_monitoring_survives_a_restart(tmp_path, aws_env):
    """The stream's shard-level metrics setting is kept in the catalog: after a restart
    DescribeStream still shows it and /metrics still has the shard series."""
    from conftest import _start_server, _stop, make_client, wait_active

    data_dir = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    srv = _start_server(data_dir, logs)
    try:
        c = make_client(srv.endpoint)
        c.create_stream(StreamName="monitored", ShardCount=2)
        wait_active(c, "monitored")
        c.enable_enhanced_monitoring(StreamName="monitored",
                                     ShardLevelMetrics=["IncomingBytes", "IncomingRecords"])
    finally:
        _stop(srv.proc)
    srv = _start_server(data_dir, logs)
    try:
        c = make_client(srv.endpoint)
        d = c.describe_stream(StreamName="monitored")["StreamDescription"]
        assert sorted(d["EnhancedMonitoring"][0]["ShardLevelMetrics"]) == \
            ["IncomingBytes", "IncomingRecords"]
        c.put_record(StreamName="monitored", PartitionKey="k", Data=b"x")
        shards = shard_series(scrape(srv.endpoint), "monitored")
        assert any("incoming_records" in k for k in shards), shards
        r = c.disable_enhanced_monitoring(StreamName="monitored", ShardLevelMetrics=["ALL"])
        assert r["DesiredShardLevelMetrics"] == []
    finally:
        _stop(srv.proc)
    srv = _start_server(data_dir, logs)
    try:
        c = make_client(srv.endpoint)
        d = c.describe_stream(StreamName="monitored")["StreamDescription"]
        assert d["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    finally:
        _stop(srv.proc)
