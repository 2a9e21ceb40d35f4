//! Per-stage timing of the transform over 100k bench-like records (release: `cargo test
//! --release -p sluice-jq timing -- --ignored --nocapture`).

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::program::{parse_json, Program, Vars};
use crate::transform::{BatchRun, Transform};
use crate::value::{self, Budget};
use sluice_poller::Record;

const N: usize = 100_000;
const PROGRAM: &str = r#"select(.kind == "click") | .processed_at = now"#;

fn records() -> Vec<Vec<u8>> {
    (0..N)
        .map(|i| {
            let head = format!(
                r#"{{"id":{i},"ts_us":1764300000000000,"run":3735928559,"kind":"click","pad":""#
            );
            let pad = 100usize.saturating_sub(head.len() + 2);
            format!("{head}{}\"}}", "x".repeat(pad)).into_bytes()
        })
        .collect()
}

fn report(stage: &str, t: Instant) {
    let ns = t.elapsed().as_nanos() as f64 / N as f64;
    println!(
        "{stage:<40} {ns:>8.0} ns/record  {:>8.0}k records/s",
        1e6 / ns
    );
}

#[test]
#[ignore]
fn timing() {
    let recs = records();
    let program = Program::compile(PROGRAM).unwrap();
    let vars = Vars {
        partition_key: "12345".into(),
        sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
        arrival_ms: 1_700_000_000_123,
        shard_id: "shardId-000000000000".into(),
        stream: "src".into(),
    };
    let batch = batch_of(&recs);
    for _ in 0..2 {
        let t = Instant::now();
        let parsed: Vec<_> = recs.iter().map(|r| parse_json(r).unwrap()).collect();
        report("parse (serde_json -> Val)", t);

        let t = Instant::now();
        let vals: Vec<_> = recs
            .iter()
            .map(|r| serde_json::from_slice::<serde_json::Value>(r).unwrap())
            .collect();
        report("  (serde_json -> serde_json::Value)", t);
        drop(vals);

        let t = Instant::now();
        let mut outs = Vec::with_capacity(N);
        for v in parsed {
            outs.extend(program.run_val(v, &vars).unwrap());
        }
        report("run (vars, ctx, program)", t);

        let id = Program::compile(".").unwrap();
        let parsed: Vec<_> = recs.iter().map(|r| parse_json(r).unwrap()).collect();
        let t = Instant::now();
        for v in parsed {
            std::hint::black_box(id.run_val(v, &vars).unwrap());
        }
        report("  run `.` (vars, ctx overhead)", t);

        let t = Instant::now();
        let mut total = 0;
        for v in &outs {
            let mut b = Budget::new(crate::limits::OUTPUT_BYTES_PER_RECORD_MAX);
            total += value::to_bytes(v, &mut b).unwrap().len();
        }
        report("serialize (to_bytes)", t);
        std::hint::black_box(total);
        drop(outs);

        let transform = Transform::new(Program::compile(PROGRAM).unwrap(), None);
        let t = Instant::now();
        for r in &recs {
            std::hint::black_box(transform.apply(r, &vars).unwrap());
        }
        report("Transform::apply (all)", t);

        let mut reader = crate::read::Reader::default();
        let t = Instant::now();
        for r in &batch {
            std::hint::black_box(reader.parse(&r.data).unwrap());
        }
        report("Reader::parse (+ drop)", t);

        let t = Instant::now();
        let mut run = BatchRun::new(&transform, "src", "shardId-000000000000");
        let mut out = Vec::new();
        let mut n = 0;
        for r in &batch {
            run.apply(r, &mut out).unwrap();
            n += out.len();
        }
        assert_eq!(n, N);
        report("BatchRun::apply (all)", t);
        println!();
    }
}

/// Only the batch path, long enough to profile (`perf record` the test binary).
#[test]
#[ignore]
fn timing_batch_only() {
    let recs = records();
    let batch = batch_of(&recs);
    let transform = Transform::new(Program::compile(PROGRAM).unwrap(), None);
    for _ in 0..10 {
        let t = Instant::now();
        let mut run = BatchRun::new(&transform, "src", "shardId-000000000000");
        let mut out = Vec::new();
        for r in &batch {
            run.apply(r, &mut out).unwrap();
            std::hint::black_box(&out);
        }
        report("BatchRun::apply (all)", t);
    }
}

/// The records as a stream's batch (one shard, positions in order).
fn batch_of(recs: &[Vec<u8>]) -> Vec<Record> {
    recs.iter()
        .enumerate()
        .map(|(i, r)| Record {
            sequence_number: sluice_streams::SequenceNumber::of_record(1, 0, i as u64),
            partition_key: i.to_string(),
            data: bytes::Bytes::from(r.clone()),
            arrival_ms: 1_700_000_000_123,
        })
        .collect()
}
