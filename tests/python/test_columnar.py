"""Parquet written by sluice-columnar, read back by pyarrow and DuckDB.

The files come from the crate's `to-parquet` example (JSON Lines in, one Parquet file out, the
records that did not convert printed as JSON lines), the same code a delivery stream with
DataFormatConversionConfiguration runs. Each compression Firehose offers (SNAPPY, GZIP,
UNCOMPRESSED) and both writer versions are checked: values and types round-trip, missing keys
are nulls, nested columns keep their shape. Spark reads a delivered file in
test_firehose_parquet.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc

TABLE = {
    "database": "lake",
    "name": "clicks",
    "columns": [
        {"name": "user", "type": "string"},
        {"name": "n", "type": "bigint"},
        {"name": "i", "type": "int"},
        {"name": "price", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {"name": "at", "type": "timestamp"},
        {"name": "day", "type": "date"},
        {"name": "amount", "type": "decimal(10,2)"},
        {"name": "device", "type": "struct<os:string,version:int>"},
        {"name": "tags", "type": "array<string>"},
        {"name": "props", "type": "map<string,bigint>"},
    ],
}

RECORDS = [
    {
        "User": "ann",
        "n": 9007199254740993,
        "i": -7,
        "price": 1.25,
        "ok": True,
        "at": "2018-02-07T15:13:01.392Z",
        "day": "2018-02-07",
        "amount": 12.345,
        "device": {"os": "ios", "version": 17},
        "tags": ["a", "b"],
        "props": {"x": 1, "y": 2},
    },
    # Epoch milliseconds, and every other key missing: nulls.
    {"user": "bob", "at": 1518016381000},
    # Epoch seconds; explicit nulls; an empty array; a struct with a missing field.
    {"user": "cy", "at": 1518016381, "tags": [], "device": {"os": "android"}, "price": None},
]
BAD = ['{"user": "dee", "n": "many"}', "not json"]

AT = dt.datetime(2018, 2, 7, 15, 13, 1, tzinfo=UTC)


def example_binary() -> Path:
    """The `to-parquet` example, built by `cargo build --workspace --all-targets` (CI's build
    step); built here if missing. SLUICE_COLUMNAR_EXAMPLE points at another build."""
    override = os.environ.get("SLUICE_COLUMNAR_EXAMPLE")
    if override:
        return Path(override)
    path = REPO / "target" / "debug" / "examples" / "to-parquet"
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "sluice-columnar", "--example", "to-parquet"],
            cwd=REPO,
            check=True,
        )
    return path


def convert(tmp_path: Path, table: dict, lines: list[str], *options: str) -> tuple[Path, list[dict]]:
    table_path = tmp_path / "table.json"
    table_path.write_text(json.dumps(table))
    input_path = tmp_path / "in.jsonl"
    input_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.parquet"
    done = subprocess.run(
        [str(example_binary()), str(table_path), str(input_path), str(out), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    return out, reports


@pytest.mark.parametrize(
    "compression,writer_version",
    [("SNAPPY", "V1"), ("GZIP", "V1"), ("UNCOMPRESSED", "V1"), ("SNAPPY", "V2"), ("GZIP", "V2")],
)
def test_values_and_types_round_trip(tmp_path, compression, writer_version):
    lines = [json.dumps(r) for r in RECORDS] + BAD
    path, reports = convert(
        tmp_path,
        TABLE,
        lines,
        "--compression",
        compression,
        "--writer-version",
        writer_version,
    )
    *errors, summary = reports
    assert summary["rows"] == 3
    assert [(e["index"], e["code"]) for e in errors] == [
        (3, "DataFormatConversion.MalformedData"),
        (4, "DataFormatConversion.ParseError"),
    ]
    assert errors[0]["message"].startswith("column `n`: expected bigint")

    # pyarrow: the codec of every column chunk, the types, the values.
    meta = pq.ParquetFile(path).metadata
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            assert meta.row_group(group).column(column).compression == compression
    table = pq.read_table(path)
    assert table.schema.field("user").type == pa.string()
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("i").type == pa.int32()
    assert table.schema.field("price").type == pa.float64()
    assert table.schema.field("ok").type == pa.bool_()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("amount").type == pa.decimal128(10, 2)
    assert table.schema.field("device").type == pa.struct(
        [("os", pa.string()), ("version", pa.int32())]
    )
    assert table.schema.field("tags").type.value_type == pa.string()
    assert table.schema.field("props").type == pa.map_(pa.string(), pa.int64())

    rows = table.to_pylist()
    assert rows[0] == {
        "user": "ann",
        "n": 9007199254740993,
        "i": -7,
        "price": 1.25,
        "ok": True,
        "at": AT.replace(microsecond=392000),
        "day": dt.date(2018, 2, 7),
        "amount": decimal.Decimal("12.35"),
        "device": {"os": "ios", "version": 17},
        "tags": ["a", "b"],
        "props": [("x", 1), ("y", 2)],
    }
    assert rows[1] == {
        "user": "bob",
        "n": None,
        "i": None,
        "price": None,
        "ok": None,
        "at": AT,
        "day": None,
        "amount": None,
        "device": None,
        "tags": None,
        "props": None,
    }
    assert rows[2]["at"] == AT
    assert rows[2]["tags"] == []
    assert rows[2]["device"] == {"os": "android", "version": None}
    assert rows[2]["price"] is None

    # DuckDB reads the same file in place.
    con = duckdb.connect()
    got = con.execute(
        """
        SELECT "user", n, i, price, ok, epoch_us("at"), typeof("at"), CAST("day" AS VARCHAR),
               CAST(amount AS VARCHAR), device.os, device.version, tags[1], len(tags),
               map_keys(props), map_values(props)
        FROM read_parquet(?) ORDER BY "user"
        """,
        [str(path)],
    ).fetchall()
    assert got[0] == (
        "ann", 9007199254740993, -7, 1.25, True, 1518016381392000,
        "TIMESTAMP WITH TIME ZONE", "2018-02-07", "12.35", "ios", 17, "a", 2,
        ["x", "y"], [1, 2],
    )
    assert got[1] == (
        "bob", None, None, None, None, 1518016381000000,
        "TIMESTAMP WITH TIME ZONE", None, None, None, None, None, None, None, None,
    )
    assert got[2][9:13] == ("android", None, None, 0)
    count = con.execute(
        "SELECT count(*), count(n), count(device) FROM read_parquet(?)", [str(path)]
    ).fetchone()
    assert count == (3, 1, 2)


def test_inferred_schema_reads_back(tmp_path):
    lines = [
        json.dumps({"id": 1, "score": 2, "name": "a", "flag": True, "geo": {"lat": 1.5}, "tags": ["x"]}),
        json.dumps({"id": 2, "score": 2.5, "geo": {"lon": 3}, "extra": None}),
    ]
    path, reports = convert(tmp_path, {"infer": True}, lines)
    summary = reports[-1]
    assert summary["rows"] == 2
    types = {c["name"]: c["type"] for c in summary["columns"]}
    assert types == {
        "extra": "string",
        "flag": "boolean",
        "geo": "struct<lat:double,lon:bigint>",
        "id": "bigint",
        "name": "string",
        "score": "double",
        "tags": "array<string>",
    }
    rows = pq.read_table(path).to_pylist()
    assert rows[0]["score"] == 2.0 and rows[1]["score"] == 2.5
    assert rows[1]["geo"] == {"lat": None, "lon": 3}
    assert rows[1]["name"] is None
    con = duckdb.connect()
    assert con.execute(
        "SELECT sum(id), max(geo.lat) FROM read_parquet(?)", [str(path)]
    ).fetchone() == (3, 1.5)


def test_hive_timestamp_formats(tmp_path):
    table = {"database": "d", "name": "t", "columns": [{"name": "ts", "type": "timestamp"}]}
    lines = [
        json.dumps({"ts": "07/02/2018 15:13:01"}),
        json.dumps({"TS": 1518016381000}),
        json.dumps({"ts": "2018-02-07 15:13:01.5"}),
        json.dumps({"ts": "2018-02-07T15:13:01Z"}),
    ]
    path, reports = convert(
        tmp_path, table, lines,
        "--hive", "--timestamp-format", "dd/MM/yyyy HH:mm:ss", "--timestamp-format", "millis",
    )
    *errors, summary = reports
    # The last one is no format given and not java.sql.Timestamp's form.
    assert [e["index"] for e in errors] == [3]
    assert summary["rows"] == 3
    values = pq.read_table(path).column("ts").to_pylist()
    assert values == [AT, AT, AT.replace(microsecond=500000)]
