"""The sluice client commands (`sluice stream ...`, `sluice put`, `sluice tail`) against a
server, checked with boto3.

The module starts its own fresh server unless SLUICE_ENDPOINT points the suite at one.
Every `sluice` invocation runs with a timeout.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import time
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError

from conftest import (
    _binary,
    _start_server,
    _stop,
    all_shards,
    error_code,
    make_client,
    md5_hash_key,
    read_shard,
    shard_for_hash,
    unique_name,
    wait_active,
    wait_gone,
)

CMD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def cli_endpoint(aws_env, tmp_path_factory):
    external = os.environ.get("SLUICE_ENDPOINT")
    if external:
        yield external.rstrip("/")
        return
    srv = _start_server(tmp_path_factory.mktemp("sluice-cli-data"),
                        tmp_path_factory.mktemp("sluice-cli-logs"))
    try:
        yield srv.endpoint
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def kc(cli_endpoint):
    """boto3 client on the CLI tests' server."""
    return make_client(cli_endpoint)


class Sluice:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.env["RUST_BACKTRACE"] = "0"

    def run(self, words: list[str], *rest: str, input: str | None = None, check: bool = True,
            via_env: bool = False, timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
        """`sluice <words> --endpoint E <rest>`; with via_env the endpoint goes in SLUICE_ENDPOINT."""
        env = dict(self.env)
        if via_env:
            cmd = [str(_binary()), *words, *rest]
            env["SLUICE_ENDPOINT"] = self.endpoint
        else:
            cmd = [str(_binary()), *words, "--endpoint", self.endpoint, *rest]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} failed with rc={proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def sluice(cli_endpoint) -> Sluice:
    if not _binary().exists():
        pytest.fail(f"sluice binary not found at {_binary()}", pytrace=False)
    return Sluice(cli_endpoint)


@dataclass
class Loaded:
    name: str
    create: subprocess.CompletedProcess
    args: list[str]
    file_lines: list[str]
    stdin_lines: list[str]
    fixed: list[str]
    puts: dict = field(default_factory=dict)

    @property
    def all_in_order(self) -> list[str]:
        return self.args + self.file_lines + self.stdin_lines + self.fixed


@pytest.fixture(scope="module")
def loaded(sluice, kc, tmp_path_factory) -> Loaded:
    """A 2-shard stream created with `sluice stream create`, filled with four `sluice put`s."""
    name = unique_name("cli")
    create = sluice.run(["stream", "create"], name, "--shards", "2")
    st = Loaded(
        name=name,
        create=create,
        args=["a", "b", "c"],
        file_lines=[f"file-{i:04d}-{'x' * (i % 7)}" for i in range(2000)],
        # A duplicate line (the check is on the multiset) and some non-ASCII.
        stdin_lines=[f"stdin-{i:03d}" for i in range(298)] + ["dup ünïcødé ✓", "dup ünïcødé ✓"],
        fixed=[f"fixed-{i:02d}" for i in range(20)],
    )
    path = tmp_path_factory.mktemp("cli-input") / "records.txt"
    path.write_text("\n".join(st.file_lines) + "\n", encoding="utf-8")
    st.puts["args"] = sluice.run(["put"], name, *st.args)
    st.puts["file"] = sluice.run(["put"], name, "--file", str(path))
    st.puts["stdin"] = sluice.run(["put"], name, input="\n".join(st.stdin_lines) + "\n")
    st.puts["fixed"] = sluice.run(["put"], name, "-k", "fixed", *st.fixed)
    yield st
    try:
        kc.delete_stream(StreamName=name)
    except ClientError:
        pass


def shard_records(kc, name: str) -> dict[str, list[dict]]:
    """Every record of every shard via boto3, in shard order."""
    return {s["ShardId"]: read_shard(kc, name, s["ShardId"], limit=10000)
            for s in all_shards(kc, name)}


# --------------------------------------------------------------------------------------
# sluice stream ...
# --------------------------------------------------------------------------------------

def test_stream_create_prints_active(loaded, kc):
    assert loaded.create.returncode == 0
    assert loaded.name in loaded.create.stdout and "ACTIVE" in loaded.create.stdout, loaded.create
    summary = kc.describe_stream_summary(StreamName=loaded.name)["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 2


def test_stream_list_tab_separated(sluice, loaded, kc):
    out = sluice.run(["stream", "list"], via_env=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line]
    assert all(len(r) == 2 for r in rows), out
    listed = dict(rows)
    assert listed.get(loaded.name) == "ACTIVE", out
    summaries = kc.list_streams()["StreamSummaries"]
    assert listed == {s["StreamName"]: s["StreamStatus"] for s in summaries}


def test_stream_describe_json(sluice, loaded, kc):
    out = sluice.run(["stream", "describe"], loaded.name).stdout
    doc = json.loads(out)
    assert doc["StreamName"] == loaded.name
    assert doc["StreamStatus"] == "ACTIVE"
    assert len(doc["Shards"]) == 2
    assert sorted(s["ShardId"] for s in doc["Shards"]) == sorted(s["ShardId"] for s in all_shards(kc, loaded.name))


def test_stream_delete(sluice, kc):
    name = unique_name("cli-del")
    sluice.run(["stream", "create"], name)
    wait_active(kc, name)
    sluice.run(["stream", "delete"], name)
    wait_gone(kc, name)
    with pytest.raises(ClientError) as ei:
        kc.describe_stream(StreamName=name)
    assert error_code(ei.value) == "ResourceNotFoundException", ei.value.response


# --------------------------------------------------------------------------------------
# sluice put
# --------------------------------------------------------------------------------------

def test_put_everything_stored_in_order(loaded, kc):
    """What the four puts stored, read with boto3: the multiset is what was put, every record
    is on the shard its partition key hashes to, and each shard holds its records in put order."""
    per_shard = shard_records(kc, loaded.name)
    shards = all_shards(kc, loaded.name)
    stored = [r["Data"].decode("utf-8") for recs in per_shard.values() for r in recs]
    assert collections.Counter(stored) == collections.Counter(loaded.all_in_order)
    for sid, recs in per_shard.items():
        for r in recs:
            assert shard_for_hash(shards, md5_hash_key(r["PartitionKey"])) == sid, r
    # Each shard's records in put order: the order of the distinct values put, filtered to the
    # values stored on that shard (each copy of the duplicate line counts at its first place).
    order = list(dict.fromkeys(loaded.all_in_order))
    for sid, recs in per_shard.items():
        got = list(dict.fromkeys(r["Data"].decode("utf-8") for r in recs))
        on_shard = set(got)
        assert got == [d for d in order if d in on_shard], sid


def test_put_default_keys_spread_records(loaded, kc):
    per_shard = shard_records(kc, loaded.name)
    file_set = set(loaded.file_lines)
    file_recs = {sid: [r for r in recs if r["Data"].decode() in file_set] for sid, recs in per_shard.items()}
    assert len(file_recs) == 2 and all(len(v) > 100 for v in file_recs.values()), \
        {k: len(v) for k, v in file_recs.items()}
    keys = [r["PartitionKey"] for recs in file_recs.values() for r in recs]
    assert len(set(keys)) == len(loaded.file_lines)


def test_put_fixed_key_single_shard(loaded, kc):
    per_shard = shard_records(kc, loaded.name)
    fixed_set = set(loaded.fixed)
    hits = {sid: [r for r in recs if r["Data"].decode() in fixed_set] for sid, recs in per_shard.items()}
    used = [sid for sid, recs in hits.items() if recs]
    assert used == [shard_for_hash(all_shards(kc, loaded.name), md5_hash_key("fixed"))], used
    recs = hits[used[0]]
    assert [r["Data"].decode() for r in recs] == loaded.fixed
    assert {r["PartitionKey"] for r in recs} == {"fixed"}


@pytest.mark.parametrize("source", ["args", "file", "stdin", "fixed"])
def test_put_exits_zero_and_reports_count(loaded, source):
    proc = loaded.puts[source]
    n = len(getattr(loaded, {"args": "args", "file": "file_lines", "stdin": "stdin_lines",
                             "fixed": "fixed"}[source]))
    assert proc.returncode == 0
    assert f"put {n} records" in proc.stderr, proc.stderr


def test_put_missing_stream_fails(sluice):
    proc = sluice.run(["put"], unique_name("missing-stream"), "x", check=False)
    assert proc.returncode != 0, proc.stdout
    assert "ResourceNotFoundException" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------
# sluice tail
# --------------------------------------------------------------------------------------

def test_tail_trim_horizon_data(sluice, loaded, kc):
    out = sluice.run(["tail"], loaded.name, "--from", "trim-horizon", "--no-follow").stdout
    lines = out.split("\n")
    assert lines[-1] == "", "output does not end with a newline"
    lines = lines[:-1]
    assert collections.Counter(lines) == collections.Counter(loaded.all_in_order)
    # Within each shard, tail prints the records in sequence-number order (checked on the
    # values put once: the two copies of the duplicate line may be on different shards).
    counts = collections.Counter(lines)
    position = {line: i for i, line in enumerate(lines) if counts[line] == 1}
    for sid, recs in shard_records(kc, loaded.name).items():
        uniq = [r["Data"].decode("utf-8") for r in recs if counts[r["Data"].decode("utf-8")] == 1]
        assert len(uniq) > 0, sid
        assert [position[d] for d in uniq] == sorted(position[d] for d in uniq), sid


def test_tail_json_lines(sluice, loaded, kc):
    out = sluice.run(["tail"], loaded.name, "--from", "trim-horizon", "--no-follow",
                     "--format", "json").stdout
    docs = [json.loads(line) for line in out.splitlines()]
    assert all(set(d) == {"shard_id", "sequence_number", "partition_key", "arrival", "data"} for d in docs), docs[:3]
    assert collections.Counter(d["data"] for d in docs) == collections.Counter(loaded.all_in_order)
    by_seq = {}
    for sid, recs in shard_records(kc, loaded.name).items():
        for r in recs:
            by_seq[r["SequenceNumber"]] = (sid, r)
    assert len(by_seq) == len(docs)
    last_seq: dict[str, int] = {}
    for d in docs:
        sid, r = by_seq[d["sequence_number"]]
        assert d["shard_id"] == sid
        assert d["partition_key"] == r["PartitionKey"]
        assert d["data"] == r["Data"].decode("utf-8")
        assert abs(float(d["arrival"]) - r["ApproximateArrivalTimestamp"].timestamp()) < 0.002, (d, r)
        seq = int(d["sequence_number"])
        assert seq > last_seq.get(sid, -1), d
        last_seq[sid] = seq


def _rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


@pytest.mark.parametrize("form", ["rfc3339", "epoch"])
def test_tail_from_timestamp(sluice, kc, form):
    """Records put before the --from time are skipped, those put after it are printed."""
    name = unique_name("cli-ts")
    sluice.run(["stream", "create"], name, "--shards", "2")
    try:
        before = [f"before-{i}" for i in range(30)]
        after = [f"after-{i}" for i in range(30)]
        sluice.run(["put"], name, *before)
        time.sleep(0.4)
        t = time.time()
        time.sleep(0.4)
        sluice.run(["put"], name, *after)
        since = _rfc3339(t) if form == "rfc3339" else f"{t:.3f}"
        out = sluice.run(["tail"], name, "--from", since, "--no-follow").stdout
        assert collections.Counter(out.splitlines()) == collections.Counter(after), since
        # Control: from trim-horizon both batches are there.
        full = sluice.run(["tail"], name, "--from", "trim-horizon", "--no-follow").stdout
        assert collections.Counter(full.splitlines()) == collections.Counter(before + after)
    finally:
        kc.delete_stream(StreamName=name)


def test_tail_from_future_time_fails(sluice, loaded):
    """A start time after now is refused by GetShardIterator (as by Kinesis)."""
    proc = sluice.run(["tail"], loaded.name, "--from", _rfc3339(time.time() + 3600), "--no-follow",
                      check=False)
    assert proc.returncode != 0, proc.stdout
    assert "InvalidArgumentException" in proc.stderr, proc.stderr


def test_tail_follows_children_after_split_and_merge_in_key_order(sluice, kc):
    """After a split and a merge, `tail` reads parents before children (the consumer core's
    lineage rule): every record once, and each key's records in the order they were put."""
    name = unique_name("cli-lineage")
    sluice.run(["stream", "create"], name, "--shards", "2")
    try:
        keys = [f"k{i}" for i in range(8)]
        put = []

        def put_round(tag: str):
            for k in keys:
                data = f"{k}-{tag}"
                kc.put_record(StreamName=name, PartitionKey=k, Data=data.encode())
                put.append(data)

        put_round("0")
        first = all_shards(kc, name)[0]
        lo = int(first["HashKeyRange"]["StartingHashKey"])
        hi = int(first["HashKeyRange"]["EndingHashKey"])
        kc.split_shard(StreamName=name, ShardToSplit=first["ShardId"],
                       NewStartingHashKey=str((lo + hi) // 2))
        put_round("1")
        open_shards = [s for s in all_shards(kc, name)
                       if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
        open_shards.sort(key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
        kc.merge_shards(StreamName=name, ShardToMerge=open_shards[0]["ShardId"],
                        AdjacentShardToMerge=open_shards[1]["ShardId"])
        put_round("2")
        out = sluice.run(["tail"], name, "--from", "trim-horizon", "--no-follow").stdout.splitlines()
        assert collections.Counter(out) == collections.Counter(put)
        for k in keys:
            mine = [line for line in out if line.startswith(f"{k}-")]
            assert mine == [f"{k}-0", f"{k}-1", f"{k}-2"], (k, mine)
    finally:
        kc.delete_stream(StreamName=name)


def test_tail_keeps_following_into_new_children(sluice, kc, tmp_path):
    """A split while `tail` is following: records put to the children afterwards are printed."""
    name = unique_name("cli-follow")
    sluice.run(["stream", "create"], name, "--shards", "1")
    out_path = tmp_path / "tail.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([str(_binary()), "tail", "--endpoint", sluice.endpoint, name,
                                 "--from", "trim-horizon"], stdout=out, stderr=subprocess.PIPE,
                                env=sluice.env)
    try:
        kc.put_record(StreamName=name, PartitionKey="a", Data=b"before-split")
        shard = all_shards(kc, name)[0]
        kc.split_shard(StreamName=name, ShardToSplit=shard["ShardId"],
                       NewStartingHashKey=str(2 ** 127))
        after = [f"after-{i}" for i in range(20)]
        for i, d in enumerate(after):
            kc.put_record(StreamName=name, PartitionKey=f"p{i}", Data=d.encode())
        deadline = time.time() + 20
        lines: list[str] = []
        while time.time() < deadline:
            lines = out_path.read_text().splitlines()
            if len(lines) >= 1 + len(after):
                break
            time.sleep(0.1)
        assert collections.Counter(lines) == collections.Counter(["before-split", *after]), lines
        assert lines[0] == "before-split"
    finally:
        proc.kill()
        proc.wait()
        kc.delete_stream(StreamName=name)


@pytest.mark.parametrize("read", ["poll", "efo"])
def test_bench_pipeline_reports_raw_passthrough_and_pipeline(sluice, kc, read):
    """`sluice bench --mode pipeline` with the stream as its own output: the raw and the
    pass-through phases run on scratch streams it deletes, and every record put is seen once."""
    name = unique_name("bench")
    out = sluice.run(["bench"], "--mode", "pipeline", "--stream", name, "--output-stream", name,
                     "--shards", "2", "--record-bytes", "100", "--batch", "50",
                     "--concurrency", "2", "--rate", "2000", "--duration", "1",
                     "--raw-put-duration", "0.5", "--passthrough-duration", "1",
                     "--drain-timeout", "20", "--read", read).stdout
    report = json.loads(out)
    assert report["mode"] == "pipeline" and report["read"] == read
    assert report["raw_put_records_per_s"] > 0
    assert report["raw_put"]["records"] > 0 and report["raw_put"]["errors"] == 0
    passthrough = report["passthrough"]
    assert passthrough["records_put"] > 0
    assert passthrough["records_processed"] == passthrough["records_put"]
    assert passthrough["records_lost"] == 0
    assert report["passthrough_records_per_s"] == passthrough["processed_records_per_s"] > 0
    assert report["records_put"] > 0
    assert report["records_processed"] == report["records_put"]
    assert (report["records_lost"], report["duplicates"], report["foreign_records"]) == (0, 0, 0)
    assert report["latency"]["samples"] == report["records_processed"]
    names = kc.list_streams()["StreamNames"]
    assert name in names
    assert not [n for n in names if n.startswith("sluice-loadgen-")], names
