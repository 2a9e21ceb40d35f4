"""Firehose record format conversion (DataFormatConversionConfiguration: JSON to Parquet) against
the real binary: boto3 creates delivery streams converting with the OpenX and the Hive JSON SerDe,
into a table declared in sluice's `[[tables]]` and into one sluice does not know (its schema
inferred from the first buffer and kept across a restart); the objects are read back with
pyarrow and DuckDB, and one with Spark (pyspark in a local session on the machine's Java);
records that do not convert land under the error prefix (`format-conversion-failed`) in the
documented shape; what Firehose refuses (and ORC) is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, _start_server, _stop, unique_name
from test_firehose import firehose_client, objects, put_all, wait_delivery_active

pytestmark = pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")),
                                reason="starts its own server with [[tables]] and reads its data directory")

ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"
GLUE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/glue"
BUCKET = "lake"

TABLES = """
[[tables]]
database = "shop"
name = "orders"
columns = [
  { name = "id", type = "int" },
  { name = "customer", type = "string" },
  { name = "amount", type = "decimal(10,2)" },
  { name = "paid", type = "boolean" },
  { name = "at", type = "timestamp" },
  { name = "day", type = "date" },
  { name = "tags", type = "array<string>" },
  { name = "attrs", type = "map<string,int>" },
  { name = "ship", type = "struct<city:string,zip:varchar(5)>" },
  { name = "ratio", type = "double" },
  { name = "user_name", type = "string" },
]

[[tables]]
database = "shop"
name = "visits"
columns = [
  { name = "page", type = "string" },
  { name = "seen", type = "timestamp" },
  { name = "n", type = "bigint" },
]
"""


def start(tmp: Path, data: Path, tag: str):
    config = tmp / "sluice.toml"
    config.write_text(TABLES)
    logs = tmp / f"logs-{tag}"
    logs.mkdir()
    return _start_server(data, logs, config=config)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, aws_env):
    tmp = tmp_path_factory.mktemp("parquet")
    data = tmp / "data"
    data.mkdir()
    s = start(tmp, data, "module")
    try:
        yield s
    finally:
        _stop(s.proc)


@pytest.fixture(scope="module")
def fh(srv):
    return firehose_client(srv.endpoint)


@pytest.fixture(scope="module")
def fh_unvalidated(srv):
    return firehose_client(srv.endpoint, parameter_validation=False)


def conversion(table: str, deserializer: dict | None = None, serializer: dict | None = None,
               database: str = "shop") -> dict:
    return {
        "Enabled": True,
        "SchemaConfiguration": {"DatabaseName": database, "TableName": table, "RoleARN": GLUE_ROLE,
                                "Region": REGION, "VersionId": "LATEST"},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}} if deserializer is None else deserializer},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}} if serializer is None else serializer},
    }


def destination(prefix: str, conv: dict, size_mb: int = 64, **extra) -> dict:
    d = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": prefix,
         "ErrorOutputPrefix": prefix + "errors/!{firehose:error-output-type}/",
         # IntervalInSeconds 1: the test does not wait for the 64 MiB.
         "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": 1},
         "CompressionFormat": "UNCOMPRESSED", "DataFormatConversionConfiguration": conv}
    d.update(extra)
    return d


def create(fh, tag: str, conv: dict, **extra) -> tuple[str, str]:
    name = unique_name(tag)
    prefix = f"{name}/"
    fh.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=destination(prefix, conv, **extra))
    wait_delivery_active(fh, name)
    return name, prefix


def lines(records: list) -> list[bytes]:
    return [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]


def wait_objects(lake: Path, prefix: str, data: int, error_records: int = 0,
                 timeout: float = 30.0) -> tuple[dict[str, bytes], list[dict]]:
    """The data objects under `prefix` (not the errors), once `data` of them and `error_records`
    error records are there."""
    deadline = time.monotonic() + timeout
    while True:
        objs = objects(lake, BUCKET, prefix)
        main = {k: v for k, v in objs.items() if not k.startswith(prefix + "errors/")}
        errors = [json.loads(l) for k, v in objs.items() if k.startswith(prefix + "errors/")
                  for l in v.decode().splitlines()]
        if (len(main) >= data and len(errors) >= error_records) or time.monotonic() > deadline:
            assert len(main) >= data and len(errors) >= error_records, (sorted(objs), errors)
            return main, errors


def error_objects(lake: Path, prefix: str) -> dict[str, bytes]:
    return {k: v for k, v in objects(lake, BUCKET, prefix + "errors/").items()}


def check_error_record(e: dict, raw: bytes, database: str, table: str) -> None:
    assert set(e) == {"attemptsMade", "arrivalTimestamp", "lastErrorCode", "lastErrorMessage",
                      "attemptEndingTimestamp", "rawData", "sequenceNumber", "subSequenceNumber",
                      "dataCatalogTable"}, e
    assert base64.b64decode(e["rawData"]) == raw
    assert e["attemptsMade"] == 1
    now_ms = time.time() * 1000
    assert now_ms - 120_000 < e["arrivalTimestamp"] <= e["attemptEndingTimestamp"] <= now_ms + 1000
    assert e["lastErrorCode"] in ("DataFormatConversion.ParseError", "DataFormatConversion.MalformedData")
    assert e["lastErrorMessage"]
    assert e["sequenceNumber"].isdigit()
    assert e["subSequenceNumber"] is None
    t = e["dataCatalogTable"]
    assert (t["databaseName"], t["tableName"], t["region"], t["versionId"], t["catalogId"]) == \
        (database, table, REGION, "LATEST", ACCOUNT)


# --------------------------------------------------------------------------------------
# A [[tables]] table, OpenX JSON SerDe
# --------------------------------------------------------------------------------------

def read_with_spark(path: Path) -> list[dict]:
    """The rows of a Parquet file as Spark reads it (a local session on this machine's Java,
    bound to 127.0.0.1, session time zone UTC), sorted by id."""
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("sluice-parquet")
             .config("spark.ui.enabled", "false")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    try:
        df = spark.read.parquet(str(path))
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        assert types["id"] == "int" and types["amount"] == "decimal(10,2)", types
        assert types["at"] == "timestamp" and types["day"] == "date", types
        assert types["attrs"].startswith("map<") and types["ship"].startswith("struct<"), types
        return sorted((r.asDict(recursive=True) for r in df.collect()), key=lambda r: r["id"])
    finally:
        spark.stop()


def test_openx_into_a_configured_table(fh, srv):
    lake = srv.data_dir / "lake"
    conv = conversion("ORDERS", {"OpenXJsonSerDe": {
        "ColumnToJsonKeyMappings": {"ratio": "pct"},
        "ConvertDotsInJsonKeysToUnderscores": True}})
    name, prefix = create(fh, "pq-openx", conv)
    good = [
        {"ID": 1, "Customer": "ann", "amount": "12.345", "paid": True, "at": "2024-05-01T12:34:56.789Z",
         "day": "2024-05-01", "tags": ["a", "b"], "attrs": {"x": 1, "y": 2},
         "ship": {"city": "Oslo", "zip": "0150123"}, "pct": 0.25, "user.name": "ann1"},
        {"id": 2, "customer": "bob", "amount": 7, "paid": "false", "at": 1714566896,
         "tags": [], "attrs": {}, "ship": None},
        {"id": 3},
    ]
    bad = [b"this is not json", json.dumps({"id": "three"}).encode(),
           json.dumps({"id": 4, "attrs": {"k": "not an int"}}).encode(), b"[1, 2]"]
    put_all(fh, name, lines(good[:2]) + bad[:2] + lines(good[2:]) + bad[2:])
    main, errors = wait_objects(lake, prefix, data=1, error_records=len(bad))
    assert len(main) == 1, sorted(main)
    key, body = next(iter(main.items()))
    assert key.endswith(".parquet") and key.rsplit("/", 1)[-1].startswith(name + "-1-"), key
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    path = lake / BUCKET / key

    # pyarrow: the table's types, and the values.
    f = pq.ParquetFile(path)
    assert f.metadata.row_group(0).column(0).compression == "SNAPPY"  # ParquetSerDe's default
    schema = f.schema_arrow
    assert schema.names == ["id", "customer", "amount", "paid", "at", "day", "tags", "attrs", "ship",
                            "ratio", "user_name"]
    assert schema.field("id").type == pa.int32()
    assert schema.field("customer").type == pa.string()
    assert schema.field("amount").type == pa.decimal128(10, 2)
    assert schema.field("paid").type == pa.bool_()
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("day").type == pa.date32()
    assert pa.types.is_list(schema.field("tags").type)
    assert pa.types.is_map(schema.field("attrs").type)
    assert schema.field("ship").type == pa.struct([("city", pa.string()), ("zip", pa.string())])
    assert schema.field("ratio").type == pa.float64()
    rows = sorted(f.read().to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 2, 3]
    first, second, third = rows
    assert first["customer"] == "ann" and first["user_name"] == "ann1"
    assert first["amount"] == decimal.Decimal("12.35")  # rounded half up to the scale
    assert first["paid"] is True and second["paid"] is False
    assert first["at"] == dt.datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=dt.timezone.utc)
    assert second["at"] == dt.datetime(2024, 5, 1, 12, 34, 56, tzinfo=dt.timezone.utc)
    assert first["day"] == dt.date(2024, 5, 1)
    assert first["tags"] == ["a", "b"] and second["tags"] == []
    assert dict(first["attrs"]) == {"x": 1, "y": 2}
    assert first["ship"] == {"city": "Oslo", "zip": "01501"}  # varchar(5) cuts
    assert second["ship"] is None
    assert first["ratio"] == 0.25
    assert second["amount"] == decimal.Decimal("7.00")
    assert third["customer"] is None and third["tags"] is None

    # DuckDB reads the same file.
    con = duckdb.connect()
    got = con.execute(
        "SELECT id, customer, amount, paid, epoch_ms(\"at\"), tags, attrs['y'], ship.city, ratio "
        f"FROM read_parquet('{path}') ORDER BY id").fetchall()
    assert got[0][:5] == (1, "ann", decimal.Decimal("12.35"), True, 1714566896789)
    assert got[0][5] == ["a", "b"]
    assert got[0][6] in (2, [2])  # map subscripts: a value (DuckDB >= 1.2) or a list
    assert got[0][7:] == ("Oslo", 0.25)
    assert [r[0] for r in got] == [1, 2, 3]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{path}'))").fetchall())
    assert types["id"] == "INTEGER" and types["amount"] == "DECIMAL(10,2)"
    assert types["at"] == "TIMESTAMP WITH TIME ZONE" and types["day"] == "DATE"

    # Spark (pyspark, local, on Java) reads the same file with the same types and values.
    spark_rows = read_with_spark(path)
    assert [r["id"] for r in spark_rows] == [1, 2, 3]
    s1, s2, s3 = spark_rows
    assert (s1["customer"], s1["amount"], s1["paid"]) == ("ann", decimal.Decimal("12.35"), True)
    assert s1["at"] == dt.datetime(2024, 5, 1, 12, 34, 56, 789000)  # the session's zone is UTC
    assert s1["day"] == dt.date(2024, 5, 1)
    assert s1["tags"] == ["a", "b"] and s2["tags"] == []
    assert s1["attrs"] == {"x": 1, "y": 2}
    assert (s1["ship"]["city"], s1["ship"]["zip"]) == ("Oslo", "01501")
    assert s1["ratio"] == 0.25 and s1["user_name"] == "ann1"
    assert s2["amount"] == decimal.Decimal("7.00") and s2["paid"] is False and s2["ship"] is None
    assert s3["customer"] is None and s3["tags"] is None

    # The records that did not convert, in the documented shape, under the error prefix.
    errs = error_objects(lake, prefix)
    assert all(k.startswith(prefix + "errors/format-conversion-failed/") for k in errs), sorted(errs)
    assert len(errors) == len(bad)
    by_raw = {base64.b64decode(e["rawData"]): e for e in errors}
    assert set(by_raw) == set(bad)
    for raw, e in by_raw.items():
        check_error_record(e, raw, "shop", "ORDERS")
    assert by_raw[b"this is not json"]["lastErrorCode"] == "DataFormatConversion.ParseError"
    assert by_raw[b"[1, 2]"]["lastErrorCode"] == "DataFormatConversion.ParseError"
    assert by_raw[json.dumps({"id": "three"}).encode()]["lastErrorCode"] == "DataFormatConversion.MalformedData"
    assert "id" in by_raw[json.dumps({"id": "three"}).encode()]["lastErrorMessage"]
    assert by_raw[json.dumps({"id": 4, "attrs": {"k": "not an int"}}).encode()]["lastErrorCode"] == \
        "DataFormatConversion.MalformedData"


# --------------------------------------------------------------------------------------
# Hive JSON SerDe, GZIP, FileExtension
# --------------------------------------------------------------------------------------

def test_hive_with_timestamp_formats_gzip_and_a_file_extension(fh, srv):
    lake = srv.data_dir / "lake"
    conv = conversion("visits", {"HiveJsonSerDe": {"TimestampFormats": ["yyyy/MM/dd HH:mm", "millis"]}},
                      {"ParquetSerDe": {"Compression": "GZIP", "WriterVersion": "V2",
                                        "EnableDictionaryCompression": True}})
    name, prefix = create(fh, "pq-hive", conv, FileExtension=".pq")
    records = lines([
        {"PAGE": "/home", "seen": "2024/02/29 23:59", "n": 5},
        {"page": "/cart", "seen": 1700000000123, "n": "6"},
        {"page": "/x", "seen": "2024-03-01 10:00:00.5"},  # java.sql.Timestamp form, always tried
    ])
    bad = [json.dumps({"page": "/y", "seen": "yesterday"}).encode()]
    put_all(fh, name, records + bad)
    main, errors = wait_objects(lake, prefix, data=1, error_records=1)
    key = next(iter(main))
    assert key.endswith(".pq"), key
    path = lake / BUCKET / key
    f = pq.ParquetFile(path)
    assert f.metadata.row_group(0).column(0).compression == "GZIP"
    table = f.read()
    assert table.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("n").type == pa.int64()
    rows = {r["page"]: r for r in table.to_pylist()}
    utc = dt.timezone.utc
    assert rows["/home"]["seen"] == dt.datetime(2024, 2, 29, 23, 59, tzinfo=utc)
    assert rows["/cart"]["seen"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc)
    assert rows["/x"]["seen"] == dt.datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=utc)
    assert rows["/cart"]["n"] == 6 and rows["/x"]["n"] is None
    got = duckdb.connect().execute(
        f"SELECT page, n, epoch_ms(seen) FROM read_parquet('{path}') ORDER BY page").fetchall()
    assert got == [("/cart", 6, 1700000000123), ("/home", 5, 1709251140000), ("/x", None, 1709287200500)]
    assert len(errors) == 1
    check_error_record(errors[0], bad[0], "shop", "visits")
    assert errors[0]["lastErrorCode"] == "DataFormatConversion.MalformedData"
    assert "seen" in errors[0]["lastErrorMessage"]


# --------------------------------------------------------------------------------------
# A table sluice does not know: inferred from the first buffer, kept across a restart
# --------------------------------------------------------------------------------------

def test_an_unknown_table_is_inferred_and_kept_across_a_restart(tmp_path, aws_env):
    data = tmp_path / "data"
    data.mkdir()
    lake = data / "lake"
    srv = start(tmp_path, data, "first")
    try:
        fh = firehose_client(srv.endpoint)
        name, prefix = create(fh, "pq-infer", conversion("clicks", database="web"))
        put_all(fh, name, lines([{"id": 1, "name": "a", "score": 1.5, "tags": ["x"], "user": {"id": 7}},
                                 {"id": 2, "name": "b", "score": 2, "tags": []}]))
        main, errors = wait_objects(lake, prefix, data=1)
        assert errors == []
        path = lake / BUCKET / next(iter(main))
        schema = pq.read_schema(path)
        assert schema.names == ["id", "name", "score", "tags", "user"]
        assert schema.field("id").type == pa.int64()
        assert schema.field("score").type == pa.float64()  # 1.5 and 2: double
        assert schema.field("user").type == pa.struct([("id", pa.int64())])
        rows = duckdb.connect().execute(
            f"SELECT id, name, score, tags, \"user\".id FROM read_parquet('{path}') ORDER BY id").fetchall()
        assert rows == [(1, "a", 1.5, ["x"], 7), (2, "b", 2.0, [], None)]
        kept = json.loads((data / "firehose" / "schemas" / f"{name}.json").read_text())
        assert (kept["database"], kept["name"]) == ("web", "clicks")
        assert [c["name"] for c in kept["columns"]] == ["id", "name", "score", "tags", "user"]
    finally:
        _stop(srv.proc)

    srv2 = start(tmp_path, data, "second")
    try:
        fh = firehose_client(srv2.endpoint)
        # The schema does not change: a string id does not fit, a new key is not a column.
        put_all(fh, name, lines([{"id": "three", "name": "c"}, {"id": 4, "name": "d", "extra": True}]))
        deadline = time.monotonic() + 30
        while True:
            main, errors = wait_objects(lake, prefix, data=1, error_records=1)
            if len(main) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(main) == 2, sorted(main)
        newest = max(main)  # object names sort by time
        table = pq.read_table(lake / BUCKET / newest)
        assert table.schema.names == ["id", "name", "score", "tags", "user"]
        assert table.to_pylist() == [{"id": 4, "name": "d", "score": None, "tags": None, "user": None}]
        assert len(errors) == 1
        check_error_record(errors[0], json.dumps({"id": "three", "name": "c"}).encode(), "web", "clicks")
        assert errors[0]["lastErrorCode"] == "DataFormatConversion.MalformedData"
        # Deleting the delivery stream forgets its inferred schema.
        fh.delete_delivery_stream(DeliveryStreamName=name)
        deadline = time.monotonic() + 15
        while (data / "firehose" / "schemas" / f"{name}.json").exists():
            assert time.monotonic() < deadline, "the inferred schema was not removed"
            time.sleep(0.1)
    finally:
        _stop(srv2.proc)


# --------------------------------------------------------------------------------------
# What Firehose refuses
# --------------------------------------------------------------------------------------

def refused(fh, conv: dict | None, size_mb: int = 64, **extra) -> str:
    name = unique_name("pq-bad")
    d = destination(f"{name}/", conv, size_mb=size_mb, **extra)
    if conv is None:
        del d["DataFormatConversionConfiguration"]
    with pytest.raises(ClientError) as e:
        fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=d)
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException", e.value.response
    with pytest.raises(ClientError) as gone:
        fh.describe_delivery_stream(DeliveryStreamName=name)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    return e.value.response["Error"]["Message"]


def test_orc_is_refused(fh):
    m = refused(fh, conversion("orders", serializer={"OrcSerDe": {"Compression": "SNAPPY"}}))
    assert "ORC" in m and "not supported by sluice" in m and "ParquetSerDe" in m


def test_a_buffer_under_64_mib_is_refused(fh):
    m = refused(fh, conversion("orders"), size_mb=63)
    assert "SizeInMBs must be at least 64" in m


def test_compression_must_be_uncompressed(fh):
    m = refused(fh, conversion("orders"), CompressionFormat="GZIP")
    assert "UNCOMPRESSED" in m


def test_configuration_rules(fh, fh_unvalidated):
    m = refused(fh, conversion("orders", {"OpenXJsonSerDe": {}, "HiveJsonSerDe": {}}))
    assert "exactly one of OpenXJsonSerDe and HiveJsonSerDe" in m
    m = refused(fh, conversion("orders", {}))
    assert "exactly one of OpenXJsonSerDe and HiveJsonSerDe" in m
    m = refused(fh, {"Enabled": True})
    assert "SchemaConfiguration is required" in m
    no_role = conversion("orders")
    del no_role["SchemaConfiguration"]["RoleARN"]
    assert "RoleARN is required" in refused(fh, no_role)
    m = refused(fh, conversion("orders", {"HiveJsonSerDe": {"TimestampFormats": ["xxxx-ww"]}}))
    assert "timestamp format `xxxx-ww`" in m
    # The model's minimums, which botocore would check on the client.
    m = refused(fh_unvalidated, conversion("orders", serializer={"ParquetSerDe": {"BlockSizeBytes": 1024}}))
    assert "BlockSizeBytes must be between 67108864" in m
    m = refused(fh_unvalidated, conversion("orders", serializer={"ParquetSerDe": {"PageSizeBytes": 1024}}))
    assert "PageSizeBytes" in m
    # Disabled: nothing else is needed, records are delivered as they are.
    name, prefix = create(fh, "pq-off", {"Enabled": False}, size_mb=1)
    d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    dest = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert dest["DataFormatConversionConfiguration"] == {"Enabled": False}


def test_update_destination_checks_and_turns_conversion_on(fh, srv):
    lake = srv.data_dir / "lake"
    name = unique_name("pq-upd")
    prefix = f"{name}/"
    d = destination(prefix, conversion("orders"), size_mb=64)
    del d["DataFormatConversionConfiguration"]
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=d)
    desc = wait_delivery_active(fh, name)
    with pytest.raises(ClientError) as e:
        fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId=desc["VersionId"],
                              DestinationId=desc["Destinations"][0]["DestinationId"],
                              ExtendedS3DestinationUpdate={"DataFormatConversionConfiguration": conversion(
                                  "orders", serializer={"OrcSerDe": {}})})
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    fh.update_destination(DeliveryStreamName=name, CurrentDeliveryStreamVersionId=desc["VersionId"],
                          DestinationId=desc["Destinations"][0]["DestinationId"],
                          ExtendedS3DestinationUpdate={"DataFormatConversionConfiguration": conversion("visits")})
    put_all(fh, name, lines([{"page": "/after", "n": 1}]))
    main, _ = wait_objects(lake, prefix, data=1)
    key = next(iter(main))
    assert key.endswith(".parquet") and key.rsplit("/", 1)[-1].startswith(name + "-2-"), key
    assert pq.read_table(lake / BUCKET / key).to_pylist() == [{"page": "/after", "seen": None, "n": 1}]
