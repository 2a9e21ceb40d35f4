//! `JqTarget` against a real `Streams` in a temporary directory: batches handed to `invoke`
//! as the poller would, outputs and dead-letter records read back from their streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sluice_jq::{JqTarget, ProcessorStreams, Program, Transform};
use sluice_poller::{Batch, Outcome, Record, Target};
use sluice_streams::{
    SequenceNumber, ShardId, ShardStart, StreamMode, StreamName, StreamSpec, Streams,
    StreamsConfig, SystemClock,
};

fn open(dir: &std::path::Path, f: impl FnOnce(&mut StreamsConfig)) -> Arc<Streams> {
    let mut config = StreamsConfig::new(dir);
    f(&mut config);
    Arc::new(Streams::open(config, Arc::new(SystemClock)).unwrap())
}

fn create(s: &Streams, name: &str, shards: u32) {
    s.create_stream(
        &StreamName::new(name).unwrap(),
        StreamSpec {
            shard_count: shards,
            mode: StreamMode::Provisioned,
            max_record_size_kib: 1024,
            tags: Default::default(),
        },
    )
    .unwrap();
}

fn target(
    s: &Arc<Streams>,
    program: &str,
    key: Option<&str>,
    dead_letter: Option<&str>,
) -> JqTarget {
    JqTarget::new(
        "clicks",
        sluice_jq::processor_arn("us-east-1", "000000000000", "clicks"),
        s.clone(),
        ProcessorStreams {
            source: "src".into(),
            output: "out".into(),
            dead_letter: dead_letter.map(str::to_string),
        },
        Arc::new(Transform::new(
            Program::compile(program).unwrap(),
            key.map(|k| Program::compile(k).unwrap()),
        )),
    )
}

/// A batch of (partition key, data) as shard 0 of `src` would give it.
fn batch(records: &[(&str, &[u8])]) -> Batch {
    Batch {
        shard_id: ShardId(0),
        shard_name: "shardId-000000000000".into(),
        stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/src".into(),
        records: records
            .iter()
            .enumerate()
            .map(|(i, (key, data))| Record {
                sequence_number: SequenceNumber::of_record(0, 0, i as u64),
                partition_key: key.to_string(),
                data: Bytes::copy_from_slice(data),
                arrival_ms: 1_700_000_000_000 + i as i64,
            })
            .collect(),
        window: None,
    }
}

fn success() -> Outcome {
    Outcome::Success {
        item_failures: vec![],
        state: None,
        unreadable: false,
    }
}

/// Every record of every shard of `stream`: (shard, partition key, data).
fn read_all(s: &Streams, stream: &str) -> Vec<(u32, String, Vec<u8>)> {
    let shards = s.describe(stream).unwrap().shards.len() as u32;
    let mut out = Vec::new();
    for shard in 0..shards {
        let mut cursor = s
            .cursor(stream, ShardId(shard), ShardStart::TrimHorizon)
            .unwrap();
        loop {
            let r = s.read(&cursor, 10_000, 64 << 20, false).unwrap();
            if r.records.is_empty() {
                break;
            }
            for (_, rec) in r.records {
                out.push((
                    shard,
                    String::from_utf8(rec.partition_key.to_vec()).unwrap(),
                    rec.data.to_vec(),
                ));
            }
            cursor = r.next.unwrap();
        }
    }
    out
}

fn json_of(data: &[u8]) -> Value {
    serde_json::from_slice(data).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_are_written_in_order_with_the_inputs_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 3);
    let t = target(
        &s,
        r#"select(.event_type == "click") | .processed_at = $arrival_ms"#,
        None,
        None,
    );
    let mut input = Vec::new();
    for i in 0..60 {
        let kind = if i % 3 == 0 { "view" } else { "click" };
        let data = json!({"event_type": kind, "user_id": format!("u{}", i % 4), "n": i});
        input.push((format!("u{}", i % 4), serde_json::to_vec(&data).unwrap()));
    }
    let records: Vec<(&str, &[u8])> = input.iter().map(|(k, d)| (k.as_str(), &d[..])).collect();
    assert_eq!(t.invoke(batch(&records)).await, success());

    let got = read_all(&s, "out");
    assert_eq!(got.len(), 40);
    // Per partition key, the outputs are the clicks of that key in input order.
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (_, key, data) in &got {
        let v = json_of(data);
        assert_eq!(v["event_type"], "click");
        assert_eq!(v["user_id"], json!(key));
        let n = v["n"].as_i64().unwrap();
        assert_eq!(v["processed_at"], json!(1_700_000_000_000_i64 + n));
        by_key.entry(key.clone()).or_default().push(n);
    }
    for (key, ns) in by_key {
        let want: Vec<i64> = (0..60)
            .filter(|i| i % 3 != 0 && format!("u{}", i % 4) == key)
            .collect();
        assert_eq!(ns, want, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_program_routes_each_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 4);
    let t = target(&s, ".items[]", Some(".sku"), None);
    let data = br#"{"items":[{"sku":"a"},{"sku":"b"},{"sku":"c"},{"sku":"a"}]}"#;
    assert_eq!(t.invoke(batch(&[("order-1", data)])).await, success());
    let got = read_all(&s, "out");
    let mut keys: Vec<_> = got.iter().map(|(_, k, _)| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "a", "b", "c"]);
    let view = s.describe("out").unwrap();
    for (shard, key, data) in &got {
        assert_eq!(json_of(data)["sku"], json!(key));
        // Each went to the shard its own key hashes to.
        let h = sluice_streams::hash_key_of(key.as_bytes());
        let range = &view.shards[*shard as usize].meta;
        assert!(
            range.hash_start <= h && h <= range.hash_end,
            "{key} in shard {shard}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_records_go_to_the_dead_letter_stream() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 1);
    create(&s, "dlq", 1);
    let t = target(&s, ".a.b", None, Some("dlq"));
    let outcome = t
        .invoke(batch(&[
            ("k1", br#"{"a":{"b":1}}"#),
            ("k2", b"Hello, World!"),
            ("k3", br#"{"a":5}"#),
            ("k4", br#"{"a":{"b":2}}"#),
        ]))
        .await;
    assert_eq!(outcome, success());
    let out: Vec<_> = read_all(&s, "out")
        .into_iter()
        .map(|(_, k, d)| (k, json_of(&d)))
        .collect();
    assert_eq!(
        out,
        [("k1".to_string(), json!(1)), ("k4".to_string(), json!(2))]
    );
    let dead = read_all(&s, "dlq");
    assert_eq!(dead.len(), 2);
    let (_, key, data) = &dead[0];
    assert_eq!(key, "k2");
    let d = json_of(data);
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .starts_with("the record's data is not JSON: "),
        "{d}"
    );
    assert_eq!(d["processor"], "clicks");
    assert_eq!(d["stream"], "src");
    assert_eq!(d["shardId"], "shardId-000000000000");
    assert_eq!(
        d["sequenceNumber"],
        SequenceNumber::of_record(0, 0, 1).to_string()
    );
    assert_eq!(d["partitionKey"], "k2");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(d["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"Hello, World!");
    assert_eq!(d["approximateArrivalTimestamp"], json!(1_700_000_000.001));
    let (_, key, data) = &dead[1];
    assert_eq!(key, "k3");
    assert_eq!(json_of(data)["error"], "cannot index 5 with \"b\"");
}

/// Outputs are byte for byte what `Transform::apply` makes of each record, in order, over
/// several puts (more than 500 outputs), whatever the records: non-ASCII strings, escapes,
/// numbers past 64 bits, several outputs, none, invalid JSON (dead-lettered).
#[tokio::test(flavor = "multi_thread")]
async fn outputs_are_what_the_transform_makes_of_each_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 1);
    create(&s, "dlq", 1);
    let program = r#"select(.kind != "drop") | .n as $n | (.items[]? // .) | .seq = $sequence_number | .n = $n"#;
    let t = target(&s, program, None, Some("dlq"));
    let reference = Transform::new(Program::compile(program).unwrap(), None);
    let mut input: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..600 {
        let data = match i % 8 {
            0 => format!(r#"{{"kind":"click","n":{i},"text":"é 中文 😀 \u00e9\n\"q\""}}"#),
            1 => format!(r#"{{"kind":"drop","n":{i}}}"#),
            2 => {
                format!(r#"{{"kind":"split","n":{i},"items":[{{"a":1}},{{"a":"ü"}},{{"b":[]}}]}}"#)
            }
            3 => format!(
                r#"{{"n":{i},"big":18446744073709551616,"u":18446744073709551615,"f":1.50,"e":-0.0}}"#
            ),
            4 => format!("not json {i}"),
            5 => format!(r#"{{"kind":"split","n":{i},"items":[]}}"#),
            6 => format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(i * 50)),
            _ => format!(r#"{{"n":{i},"items":7}}"#),
        };
        input.push((format!("k{}-é", i % 5), data.into_bytes()));
    }
    let records: Vec<(&str, &[u8])> = input.iter().map(|(k, d)| (k.as_str(), &d[..])).collect();
    let b = batch(&records);
    let mut want = Vec::new();
    let mut failed = Vec::new();
    for r in &b.records {
        let vars = sluice_jq::Vars {
            partition_key: r.partition_key.clone(),
            sequence_number: r.sequence_number.to_string(),
            arrival_ms: r.arrival_ms,
            shard_id: b.shard_name.clone(),
            stream: "src".into(),
        };
        match reference.apply(&r.data, &vars) {
            Ok(outputs) => {
                want.extend(outputs.into_iter().map(|o| (o.partition_key, o.data)));
            }
            Err(e) => failed.push((r.partition_key.clone(), e.to_string())),
        }
    }
    assert!(want.len() > 500, "{}", want.len());
    assert_eq!(t.invoke(b).await, success());
    let got: Vec<_> = read_all(&s, "out")
        .into_iter()
        .map(|(_, k, d)| (k, d))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want);
    let dead: Vec<_> = read_all(&s, "dlq")
        .into_iter()
        .map(|(_, k, d)| (k, json_of(&d)["error"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(dead, failed);
    assert_eq!(dead.len(), 75);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_record_too_large_for_a_record_leaves_the_data_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 1);
    create(&s, "dlq", 1);
    let t = target(&s, "error(\"no\")", None, Some("dlq"));
    // 900 KB of JSON: its base64 (1.2 MB) does not fit a 1 MiB record.
    let big = serde_json::to_vec(&json!({"pad": "x".repeat(900_000)})).unwrap();
    assert_eq!(t.invoke(batch(&[("k", &big)])).await, success());
    let dead = read_all(&s, "dlq");
    let d = json_of(&dead[0].2);
    assert_eq!(
        (d["data"].clone(), d["dataOmitted"].clone()),
        (Value::Null, json!(true))
    );
    assert_eq!(d["error"], "no");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_dead_letter_stream_failures_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 1);
    let t = target(&s, ".a + 1", None, None);
    let outcome = t
        .invoke(batch(&[
            ("k", br#"{"a":1}"#),
            ("k", b"{]"),
            ("k", br#"{"a":2}"#),
        ]))
        .await;
    assert_eq!(outcome, success());
    let out: Vec<_> = read_all(&s, "out")
        .into_iter()
        .map(|(_, _, d)| json_of(&d))
        .collect();
    assert_eq!(out, [json!(2), json!(3)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_stream_makes_the_poller_retry() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    let t = target(&s, ".", None, Some("dlq"));
    let b = batch(&[("k", br#"{"ok":true}"#), ("k", b"not json")]);
    match t.invoke(b.clone()).await {
        Outcome::NotInvoked { reason } => assert!(reason.contains("stream out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    create(&s, "out", 1);
    // The output is there, the dead-letter stream not yet: still not delivered.
    match t.invoke(b.clone()).await {
        Outcome::NotInvoked { reason } => assert!(reason.contains("stream dlq"), "{reason}"),
        other => panic!("{other:?}"),
    }
    create(&s, "dlq", 1);
    assert_eq!(t.invoke(b).await, success());
    // At least once: the output of the attempt that failed on the dead-letter stream is there
    // twice.
    assert_eq!(read_all(&s, "out").len(), 2);
    assert_eq!(read_all(&s, "dlq").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_write_makes_the_poller_retry() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |c| {
        c.throughput.enforce = true;
        c.throughput.write_records_per_sec = 5;
    });
    create(&s, "out", 1);
    let t = target(&s, "range(10)", None, None);
    match t.invoke(batch(&[("k", b"null")])).await {
        Outcome::NotInvoked { reason } => {
            assert!(
                reason.contains("could not be written to stream out"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// With throughput enforced a put can fail in part: the puts after it are not sent, so what
/// was written is the start of the outputs, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_put_throttled_in_part_stops_the_puts_after_it() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), |c| {
            c.throughput.enforce = true;
            c.throughput.write_records_per_sec = 700;
        });
        create(&s, "out", 1);
        // 8 records of 500 outputs each, numbered 0 to 3999.
        let t = target(&s, "range(500) as $i | . * 500 + $i", None, None);
        let inputs: Vec<String> = (0..8).map(|n| n.to_string()).collect();
        let records: Vec<(&str, &[u8])> = inputs.iter().map(|d| ("k", d.as_bytes())).collect();
        let outcome = t.invoke(batch(&records)).await;
        assert!(
            matches!(outcome, Outcome::NotInvoked { .. }),
            "round {round}: {outcome:?}"
        );
        let got: Vec<_> = read_all(&s, "out")
            .into_iter()
            .map(|(_, _, d)| json_of(&d))
            .collect();
        assert!(!got.is_empty() && got.len() < 4000, "round {round}");
        let want: Vec<_> = (0..got.len()).map(|i| json!(i)).collect();
        assert!(
            got == want,
            "round {round}: {} records written, not the first ones in order; the last: {:?}",
            got.len(),
            &got[got.len().saturating_sub(5)..]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_fan_out_is_written_in_several_puts_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    create(&s, "out", 1);
    create(&s, "dlq", 1);
    let t = target(
        &s,
        "if . == 1 then error(\"one\") else range(400) as $i | [., $i] end",
        None,
        Some("dlq"),
    );
    let outcome = t
        .invoke(batch(&[("k", b"0"), ("k", b"1"), ("k", b"2"), ("k", b"3")]))
        .await;
    assert_eq!(outcome, success());
    let got: Vec<_> = read_all(&s, "out")
        .into_iter()
        .map(|(_, _, d)| json_of(&d))
        .collect();
    let want: Vec<_> = [0, 2, 3]
        .into_iter()
        .flat_map(|n| (0..400).map(move |i| json!([n, i])))
        .collect();
    assert_eq!(got, want);
    assert_eq!(read_all(&s, "dlq").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_target_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), |_| {});
    let t = target(&s, ".", None, None);
    assert_eq!(
        t.arn(),
        "arn:aws:sluice:us-east-1:000000000000:processor/clicks"
    );
    assert_eq!(t.payload(&batch(&[("k", b"1")])), None);
    assert_eq!(t.invoke(batch(&[])).await, success());
}
