"""The seeds' lab (Kinesis → Lambda → Firehose → S3 / Redshift) as the README walks through it,
with the files in examples/seed-lab: the AWS CLI creates the stream, the bucket, the function
ProcessRealTimeData and its trigger, and the delivery streams (one into the lake with GZIP, one
into PostgreSQL in Redshift's place, both transformed by the same function); the lab's producer
runs as a process with AWS_ENDPOINT_URL; the stream is resharded in the middle (Iteración 4).
Then: the trigger printed every record, the lake holds every click once (read back through
`aws s3 cp`), PostgreSQL holds the same rows, and views were dropped by the transformation.

The module starts its own server (its data directory is read by `sluice logs`), and PostgreSQL
from SLUICE_PG_BIN (skipped without it).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, AwsCli, _start_server, _stop
from test_firehose_redshift import PG_PASSWORD, pg, wait_for  # noqa: F401 (pg is a fixture)
from test_lambda import sluice_logs

if os.environ.get("SLUICE_ENDPOINT"):
    pytest.skip("needs its own server (reads its data directory)", allow_module_level=True)

LAB = REPO / "examples" / "seed-lab"
STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/RealTimeDataStream"
FIREHOSE_ROLE = "arn:aws:iam::000000000000:role/firehose"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    srv = _start_server(tmp_path_factory.mktemp("lab-data"), tmp_path_factory.mktemp("lab-logs"))
    try:
        yield srv
    finally:
        _stop(srv.proc)


def produce(endpoint: str, env: dict, count: int) -> None:
    proc = subprocess.run([sys.executable, str(LAB / "producer.py"), str(count), "0.02"],
                          env=dict(env, AWS_ENDPOINT_URL=endpoint), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


def sent_events(endpoint: str, cli: AwsCli) -> list[dict]:
    """Every event in the stream, read back from all its shards (parents and children)."""
    shards = cli.run("kinesis", "list-shards", "--stream-name", "RealTimeDataStream")["Shards"]
    events = []
    for shard in shards:
        it = cli.run("kinesis", "get-shard-iterator", "--stream-name", "RealTimeDataStream",
                     "--shard-id", shard["ShardId"], "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
        while it:
            got = cli.run("kinesis", "get-records", "--shard-iterator", it)
            events += [json.loads(base64.b64decode(r["Data"])) for r in got["Records"]]
            if not got["Records"] and got.get("MillisBehindLatest", 0) == 0:
                break
            it = got.get("NextShardIterator")
    return events


def s3(cli: AwsCli, *args: str) -> str:
    """`aws s3 ...`, which prints text, not JSON."""
    proc = cli.run("s3", *args, check=False)
    assert proc.returncode == 0, f"aws s3 {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def lake_lines(cli: AwsCli, tmp: Path) -> list[dict]:
    """`aws s3 ls` and `aws s3 cp` of the delivered objects, gunzipped, one JSON per line."""
    listing = cli.run("s3api", "list-objects-v2", "--bucket", "lab-lake", "--prefix", "clicks/")
    rows = []
    for obj in (listing or {}).get("Contents", []):
        dest = tmp / "got.gz"
        s3(cli, "cp", f"s3://lab-lake/{obj['Key']}", str(dest))
        rows += [json.loads(line) for line in gzip.decompress(dest.read_bytes()).splitlines()]
    return rows


def test_the_seeds_lab_end_to_end(lab_server, pg, aws_env, tmp_path):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws_env)
    env["AWS_PAGER"] = ""
    cli = AwsCli(lab_server.endpoint, env)

    # Iteración 1: the stream.
    cli.run("kinesis", "create-stream", "--stream-name", "RealTimeDataStream", "--shard-count", "1")
    cli.run("kinesis", "wait", "stream-exists", "--stream-name", "RealTimeDataStream")
    s3(cli, "mb", "s3://lab-lake")

    # Iteración 2: the function and its trigger.
    zip_path = tmp_path / "process.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.write(LAB / "process.py", "process.py")
    fn = cli.run("lambda", "create-function", "--function-name", "ProcessRealTimeData",
                 "--runtime", "python3.12", "--handler", "process.lambda_handler",
                 "--role", "arn:aws:iam::000000000000:role/lambda", "--zip-file", f"fileb://{zip_path}")
    assert fn["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:ProcessRealTimeData"
    esm = cli.run("lambda", "create-event-source-mapping", "--function-name", "ProcessRealTimeData",
                  "--event-source-arn", STREAM_ARN, "--starting-position", "TRIM_HORIZON")
    assert esm["State"] in ("Creating", "Enabled"), esm

    # Iteración 3: delivery into the lake and into PostgreSQL, both through the function.
    cli.run("firehose", "create-delivery-stream", "--delivery-stream-name", "ProcessedDataDeliveryStream",
            "--delivery-stream-type", "KinesisStreamAsSource",
            "--kinesis-stream-source-configuration", f"KinesisStreamARN={STREAM_ARN},RoleARN={FIREHOSE_ROLE}",
            "--extended-s3-destination-configuration", f"file://{LAB / 's3-destination.json'}")
    pg.psql((LAB / "clicks.sql").read_text())
    redshift = json.loads((LAB / "redshift-destination.json").read_text())
    assert redshift["ClusterJDBCURL"] == "jdbc:postgresql://127.0.0.1:5432/postgres"
    redshift["ClusterJDBCURL"] = pg.jdbc_url
    redshift["Password"] = PG_PASSWORD
    (tmp_path / "redshift.json").write_text(json.dumps(redshift))
    cli.run("firehose", "create-delivery-stream", "--delivery-stream-name", "ProcessedDataToPostgres",
            "--delivery-stream-type", "KinesisStreamAsSource",
            "--kinesis-stream-source-configuration", f"KinesisStreamARN={STREAM_ARN},RoleARN={FIREHOSE_ROLE}",
            "--redshift-destination-configuration", f"file://{tmp_path / 'redshift.json'}")
    for name in ("ProcessedDataDeliveryStream", "ProcessedDataToPostgres"):
        wait_for(f"{name} ACTIVE", lambda: cli.run(
            "firehose", "describe-delivery-stream", "--delivery-stream-name", name,
        )["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE", timeout=30)

    # The producer, then a reshard to two shards (Iteración 4), then the producer again.
    produce(lab_server.endpoint, env, 40)
    cli.run("kinesis", "update-shard-count", "--stream-name", "RealTimeDataStream",
            "--target-shard-count", "2", "--scaling-type", "UNIFORM_SCALING")
    cli.run("kinesis", "wait", "stream-exists", "--stream-name", "RealTimeDataStream")
    wait_for("the reshard", lambda: cli.run("kinesis", "describe-stream-summary", "--stream-name", "RealTimeDataStream")
             ["StreamDescriptionSummary"]["OpenShardCount"] == 2, timeout=30)
    produce(lab_server.endpoint, env, 40)

    sent = sent_events(lab_server.endpoint, cli)
    assert len(sent) == 80
    clicks = [e for e in sent if e["event_type"] == "click"]
    assert len(clicks) == 60

    # The trigger printed every record (the lab's print line), at least once each.
    def printed():
        out = sluice_logs(lab_server.data_dir, "ProcessRealTimeData").stdout
        return all(f"Processed record: {e!r}" in out for e in sent)
    wait_for("the trigger's prints of all 80 records", printed, timeout=90)

    # The lake: every click once, enriched; views dropped by the transformation.
    def in_lake():
        rows = lake_lines(cli, tmp_path)
        return rows if len(rows) >= len(clicks) else None
    rows = wait_for("60 clicks in the lake", in_lake, timeout=90)
    time.sleep(6)  # a later object would be a duplicate
    rows = lake_lines(cli, tmp_path)
    key = lambda e: (e["timestamp"], e["user_id"], e["page"])  # noqa: E731
    assert sorted(map(key, rows)) == sorted(map(key, clicks))
    for r in rows:
        assert r["event_type"] == "click"
        assert r["section"] == (r["page"].strip("/").split("/")[0] or "home")
        assert r["event_time"].startswith(time.strftime("%Y-%m-%d", time.gmtime(r["timestamp"] / 1000)))

    # PostgreSQL: the same 60 rows, loaded once.
    wait_for("60 rows in PostgreSQL", lambda: pg.count("clicks") >= len(clicks), timeout=90)
    time.sleep(6)
    got = pg.psql("SELECT \"timestamp\", user_id, page, section, "
                  "to_char(event_time, 'YYYY-MM-DD HH24:MI:SS.MS') FROM clicks")
    assert sorted((int(t), u, p) for t, u, p, _, _ in got) == sorted(map(key, clicks))
    by_ts = {r["timestamp"]: r for r in rows}
    for t, _, _, section, at in got:
        assert section == by_ts[int(t)]["section"] and at == by_ts[int(t)]["event_time"]

    # Iteración 4's monitoring: Firehose's and Kinesis's metrics on /metrics.
    metrics = urllib.request.urlopen(f"{lab_server.endpoint}/metrics", timeout=10).read().decode()
    assert 'sluice_firehose_delivery_to_s3_records_total{delivery_stream="ProcessedDataDeliveryStream"}' in metrics
    assert 'delivery_stream="ProcessedDataToPostgres"' in metrics
