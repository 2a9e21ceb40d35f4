"""Firehose's Redshift destination with a real PostgreSQL in Redshift's place: boto3 creates
delivery streams with RedshiftDestinationConfiguration pointing at a PostgreSQL server of the
module's own (initdb in a temporary directory, 127.0.0.1 on a free port), records are staged in
the lake and loaded with `json 'auto'` or delimited COPY options; PostgreSQL stopped in the middle
of the loads and started again loses and duplicates nothing; a table that does not exist gets an
error manifest under errors/ once RetryOptions.DurationInSeconds run out, and later objects still
load; validation errors; UpdateDestination with RedshiftDestinationUpdate.

PostgreSQL's binaries come from SLUICE_PG_BIN (scripts/test.sh sets it); without it the module is
skipped. Rows are read back with that installation's psql.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, error_code, error_message, unique_name
from test_firehose import firehose_client, objects, of_stream, wait_delivery_active

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
BUCKET = "redshift-stage"
PG_USER = "sluice"
PG_PASSWORD = "sluice-test-password"

pytestmark = pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")),
                                reason="reads the server's data directory")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """initdb into a temporary directory, pg_ctl start / stop; as root, run as `postgres`."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.port = _free_port()
        self.run_as = None
        if os.geteuid() == 0:
            import pwd
            user = "postgres"
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                user, pw = "nobody", pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.run_as = user
        pwfile = self.dir / "pw"
        pwfile.write_text(PG_PASSWORD)
        if self.run_as:
            import pwd
            os.chown(pwfile, pwd.getpwnam(self.run_as).pw_uid, -1)
        self._run("initdb", "-D", str(self.dir / "data"), "-U", PG_USER, "-E", "UTF8",
                  "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={pwfile}")
        self.start()

    def _run(self, program: str, *args: str, timeout: float = 90):
        cmd = [str(self.bin / program), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"{program} failed: {out.stdout}\n{out.stderr}"
        return out

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "-o", opts, "start")

    def stop(self, mode: str = "immediate"):
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def close(self):
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"

    def psql(self, sql: str) -> list[list[str]]:
        env = dict(os.environ, PGPASSWORD=PG_PASSWORD)
        out = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER,
             "-d", "postgres", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-c", sql],
            capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, f"psql failed: {out.stderr}"
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def count(self, table: str) -> int:
        return int(self.psql(f"SELECT count(*) FROM {table}")[0][0])


@pytest.fixture(scope="module")
def pg():
    bin_dir = os.environ.get("SLUICE_PG_BIN")
    if not bin_dir:
        pytest.skip("SLUICE_PG_BIN is not set (scripts/test.sh installs PostgreSQL and sets it)")
    server = Postgres(Path(bin_dir))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def fh(endpoint):
    return firehose_client(endpoint)


@pytest.fixture(scope="module")
def fh_unvalidated(endpoint):
    return firehose_client(endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def lake(server) -> Path:
    return server.data_dir / "lake"


def redshift_config(pg: Postgres, table: str, copy_options: str | None = "json 'auto'",
                    retry_s: int | None = None, prefix: str | None = None,
                    compression: str = "UNCOMPRESSED", columns: str | None = None, **extra) -> dict:
    copy = {"DataTableName": table}
    if copy_options is not None:
        copy["CopyOptions"] = copy_options
    if columns is not None:
        copy["DataTableColumns"] = columns
    s3 = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}",
          "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
          "CompressionFormat": compression}
    if prefix is not None:
        s3["Prefix"] = prefix
    c = {"RoleARN": ROLE, "ClusterJDBCURL": pg.jdbc_url, "CopyCommand": copy,
         "Username": PG_USER, "Password": PG_PASSWORD, "S3Configuration": s3}
    if retry_s is not None:
        c["RetryOptions"] = {"DurationInSeconds": retry_s}
    c.update(extra)
    return c


def create(fh, pg: Postgres, tag: str, table: str, **kw) -> str:
    name = unique_name(tag)
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              RedshiftDestinationConfiguration=redshift_config(pg, table, **kw))
    wait_delivery_active(fh, name)
    return name


def put(fh, name: str, records: list[bytes]):
    for i in range(0, len(records), 500):
        r = fh.put_record_batch(DeliveryStreamName=name,
                                Records=[{"Data": d} for d in records[i:i + 500]])
        assert r["FailedPutCount"] == 0, r


def wait_for(what: str, check, timeout: float = 60.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def wait_rows(pg: Postgres, table: str, n: int, timeout: float = 60.0):
    wait_for(f"{n} rows in {table}", lambda: pg.count(table) >= n, timeout)
    # Nothing more arrives: no duplicate load comes late.
    time.sleep(1.5)
    assert pg.count(table) == n


def test_json_auto_rows_arrive_and_describe(fh, pg, lake, endpoint):
    pg.psql("CREATE TABLE clicks (id integer PRIMARY KEY, page text, ms bigint, at timestamptz)")
    name = create(fh, pg, "rs-json", "clicks", prefix="stage/")
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    [dest] = d["Destinations"]
    rs = dest["RedshiftDestinationDescription"]
    assert "S3DestinationDescription" not in dest and "ExtendedS3DestinationDescription" not in dest
    assert rs["ClusterJDBCURL"] == pg.jdbc_url
    assert rs["Username"] == PG_USER
    assert "Password" not in rs and PG_PASSWORD not in json.dumps(d, default=str)
    assert rs["CopyCommand"] == {"DataTableName": "clicks", "CopyOptions": "json 'auto'"}
    assert rs["RetryOptions"] == {"DurationInSeconds": 3600}
    assert rs["S3BackupMode"] == "Disabled"
    assert rs["S3DestinationDescription"]["BucketARN"] == f"arn:aws:s3:::{BUCKET}"
    assert rs["S3DestinationDescription"]["Prefix"] == "stage/"
    assert rs["CloudWatchLoggingOptions"] == {"Enabled": False}

    records = [json.dumps({"id": i, "page": f"/p/{i}", "ms": 1_700_000_000_000 + i,
                           "at": "2024-05-01T10:20:30Z"}).encode() + b"\n" for i in range(300)]
    put(fh, name, records)
    wait_rows(pg, "clicks", 300)
    assert pg.psql("SELECT id, page FROM clicks WHERE id = 7") == [["7", "/p/7"]]
    # The objects were staged in the intermediate bucket under the prefix, as Firehose does.
    staged = of_stream(objects(lake, BUCKET, "stage/"), name)
    assert staged and b"".join(staged[k] for k in sorted(staged)).count(b"\n") == 300
    # One bookkeeping row per staged object, committed with its rows.
    rows = pg.psql(f"SELECT object_key, rows FROM sluice_firehose_loads WHERE delivery_stream = '{name}'")
    assert {r[0] for r in rows} == set(staged) and sum(int(r[1]) for r in rows) == 300
    text = urllib.request.urlopen(f"{endpoint}/metrics", timeout=10).read().decode()
    assert f'sluice_firehose_delivery_to_redshift_records_total{{delivery_stream="{name}"}} 300' in text
    assert f'sluice_firehose_delivery_to_redshift_success{{delivery_stream="{name}"}} 1' in text
    assert f'sluice_firehose_delivery_to_s3_records_total{{delivery_stream="{name}"}} 300' in text
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_delimited_gzip(fh, pg, lake):
    pg.psql("CREATE TABLE orders (id integer, item varchar(20), qty integer, note text)")
    name = create(fh, pg, "rs-delim", "orders", copy_options="delimiter '|' gzip",
                  compression="GZIP", columns="id,item,qty")
    records = [f"{i}|item-{i}|{i % 7}\n".encode() for i in range(120)]
    put(fh, name, records)
    wait_rows(pg, "orders", 120)
    assert pg.psql("SELECT item, qty, note IS NULL FROM orders WHERE id = 8") == [["item-8", "1", "t"]]
    staged = of_stream(objects(lake, BUCKET), name)
    assert staged and all(k.endswith(".gz") for k in staged)
    assert b"".join(gzip.decompress(v) for v in staged.values()).count(b"\n") == 120
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_postgres_restart_loses_and_duplicates_nothing(fh, pg):
    pg.psql("CREATE TABLE events (id integer, body text)")
    name = create(fh, pg, "rs-restart", "events", retry_s=600)
    put(fh, name, [json.dumps({"id": i, "body": "a"}).encode() for i in range(200)])
    wait_rows(pg, "events", 200)
    # Larger batches, PostgreSQL killed while they are staged and loaded, then started again.
    for round_ in range(3):
        base = 1000 * (round_ + 1)
        put(fh, name, [json.dumps({"id": base + i, "body": "x" * 200}).encode() for i in range(800)])
        time.sleep(0.8 + 0.4 * round_)
        pg.stop("immediate")
        time.sleep(1.5)
        pg.start()
    total = 200 + 3 * 800
    wait_rows(pg, "events", total, timeout=90)
    assert pg.psql("SELECT count(DISTINCT id) FROM events") == [[str(total)]]
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_missing_table_gets_an_error_manifest_and_later_objects_load(fh, pg, lake):
    name = create(fh, pg, "rs-missing", "not_there", retry_s=2, prefix="m/")
    put(fh, name, [json.dumps({"id": i}).encode() for i in range(10)])
    manifests = wait_for("an error manifest", lambda: {
        k: v for k, v in objects(lake, BUCKET, "m/errors/manifests/").items()
        if k.rsplit("/", 1)[-1].startswith(name + "-")}, timeout=60)
    [(key, body)] = manifests.items()
    parts = key.split("/")
    assert parts[:3] == ["m", "errors", "manifests"] and len(parts) == 8, key
    manifest = json.loads(body)
    [entry] = manifest["entries"]
    assert entry["mandatory"] is True
    assert entry["url"].startswith(f"s3://{BUCKET}/m/")
    skipped = entry["url"][len(f"s3://{BUCKET}/"):]
    assert skipped in objects(lake, BUCKET, "m/"), "the manifest names the staged object"
    assert skipped.rsplit("/", 1)[-1] == parts[-1]
    # Delivery moved on: once the table exists, later objects load.
    pg.psql("CREATE TABLE not_there (id integer)")
    put(fh, name, [json.dumps({"id": 100 + i}).encode() for i in range(5)])
    wait_rows(pg, "not_there", 5)
    assert pg.psql("SELECT min(id) FROM not_there") == [["100"]]
    fh.delete_delivery_stream(DeliveryStreamName=name)


def test_update_destination(fh, pg):
    pg.psql("CREATE TABLE upd_a (id integer)")
    pg.psql("CREATE TABLE upd_b (id integer, tag text)")
    name = create(fh, pg, "rs-update", "upd_a")
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    fh.update_destination(
        DeliveryStreamName=name, CurrentDeliveryStreamVersionId=d["VersionId"],
        DestinationId=d["Destinations"][0]["DestinationId"],
        RedshiftDestinationUpdate={"CopyCommand": {"DataTableName": "upd_b",
                                                   "CopyOptions": "json 'auto ignorecase'"},
                                   "RetryOptions": {"DurationInSeconds": 60},
                                   "S3Update": {"Prefix": "updated/"}})
    d2 = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert int(d2["VersionId"]) == int(d["VersionId"]) + 1
    rs = d2["Destinations"][0]["RedshiftDestinationDescription"]
    assert rs["CopyCommand"] == {"DataTableName": "upd_b", "CopyOptions": "json 'auto ignorecase'"}
    assert rs["RetryOptions"] == {"DurationInSeconds": 60}
    assert rs["S3DestinationDescription"]["Prefix"] == "updated/"
    assert rs["S3DestinationDescription"]["BucketARN"] == f"arn:aws:s3:::{BUCKET}"
    assert rs["Username"] == PG_USER
    put(fh, name, [json.dumps({"ID": i, "Tag": "t"}).encode() for i in range(20)])
    wait_rows(pg, "upd_b", 20)
    # Switching to S3 merges nothing: BucketARN is required.
    with pytest.raises(ClientError) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId=d2["VersionId"],
                              DestinationId="destinationId-000000000001",
                              ExtendedS3DestinationUpdate={"Prefix": "x/"})
    assert error_code(e.value) == "InvalidArgumentException"
    fh.delete_delivery_stream(DeliveryStreamName=name)


def invalid(fh, config: dict, code: str, contains: str, extra: dict | None = None):
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=unique_name("rs-bad"),
                                  RedshiftDestinationConfiguration=config, **(extra or {}))
    assert error_code(e.value) == code, error_message(e.value)
    assert contains in error_message(e.value), error_message(e.value)
    return error_message(e.value)


def test_validation_errors(fh, fh_unvalidated, pg):
    for compression in ["Snappy", "ZIP", "HADOOP_SNAPPY"]:
        invalid(fh, redshift_config(pg, "t", compression=compression), "InvalidArgumentException",
                "The compression formats SNAPPY or ZIP cannot be specified in "
                "RedshiftDestinationConfiguration.S3Configuration")
    invalid(fh_unvalidated, redshift_config(pg, "t", retry_s=7201), "ValidationException",
            "at 'redshiftDestinationConfiguration.retryOptions.durationInSeconds' failed to satisfy "
            "constraint: Member must have value less than or equal to 7200")
    invalid(fh_unvalidated, redshift_config(pg, "t", retry_s=-1), "ValidationException",
            "Member must have value greater than or equal to 0")
    msg = invalid(fh_unvalidated, dict(redshift_config(pg, "t"), Password="short"), "ValidationException",
                  "at 'redshiftDestinationConfiguration.password' failed to satisfy constraint: "
                  "Member must have length greater than or equal to 6")
    assert "short" not in msg
    cfg = redshift_config(pg, "t")
    del cfg["CopyCommand"]
    invalid(fh_unvalidated, cfg, "ValidationException",
            "Value null at 'redshiftDestinationConfiguration.copyCommand' failed to satisfy "
            "constraint: Member must not be null")
    invalid(fh, dict(redshift_config(pg, "t"), ClusterJDBCURL="jdbc:mysql://127.0.0.1:3306/db"),
            "InvalidArgumentException", "ClusterJDBCURL")
    invalid(fh, redshift_config(pg, "t", copy_options="format as parquet"),
            "InvalidArgumentException", "CopyCommand")
    cfg = redshift_config(pg, "t")
    del cfg["Password"]
    invalid(fh, cfg, "InvalidArgumentException", "Username and Password are required")
    invalid(fh, redshift_config(pg, "t"), "InvalidArgumentException", "Only one destination",
            extra={"ExtendedS3DestinationConfiguration": {"RoleARN": ROLE,
                                                          "BucketARN": f"arn:aws:s3:::{BUCKET}"}})
    invalid(fh, redshift_config(pg, "t", SecretsManagerConfiguration={"Enabled": True}),
            "InvalidArgumentException", "SecretsManagerConfiguration")
