//! Crash test: a child process appends under load and prints every acknowledgement; the parent
//! kills it with SIGKILL at a random moment, reopens the log and checks that every acknowledged
//! record is there, at its offset, intact, and that nothing else is corrupt. Several rounds run
//! on the same directory, so recovery of a log recovered before is covered too.
//!
//! A plain `main` (harness = false), so the same binary can be the child (`--child DIR`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use sluice_log::{Log, LogConfig, Record, SystemClock};

const THREADS: usize = 4;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 256 * 1024,
        index_interval_bytes: 4096,
        ..LogConfig::default()
    }
}

fn payload(thread: usize, seq: u64) -> Vec<u8> {
    let mut d = format!("t{thread}-s{seq}-").into_bytes();
    d.resize(
        40 + (seq as usize * 7919 + thread * 31) % 900,
        b'a' + (seq % 26) as u8,
    );
    d
}

fn child(dir: &str) {
    let log = Arc::new(Log::open(dir.as_ref(), config(), Arc::new(SystemClock)).expect("open"));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let start_seq: u64 = std::env::var("SEQ_BASE").unwrap().parse().unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                let mut seq = start_seq;
                loop {
                    let n = 1 + (seq % 5) as usize;
                    let records: Vec<Record> = (0..n as u64)
                        .map(|k| Record {
                            partition_key: format!("t{t}").into_bytes().into(),
                            explicit_hash_key: None,
                            data: payload(t, seq + k).into(),
                        })
                        .collect();
                    let ack = log.append_blocking(records).expect("append");
                    let mut o = out.lock().unwrap();
                    for k in 0..n as u64 {
                        writeln!(o, "{t} {} {}", seq + k, ack.first_offset + k).unwrap();
                    }
                    o.flush().unwrap();
                    seq += n as u64;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn parent() -> Result<(), String> {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("crash test seed {seed} (set CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(usize, u64, u64)> = Vec::new();
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .arg("--child")
            .arg(dir.path())
            .env("SEQ_BASE", (round * 10_000_000).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let kill_after = Duration::from_millis(rng.gen_range(50..400));
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut it = line.split(' ').map(|x| x.parse::<u64>().unwrap());
                let (t, s, o) = (
                    it.next().unwrap() as usize,
                    it.next().unwrap(),
                    it.next().unwrap(),
                );
                lines.push((t, s, o));
            }
            lines
        });
        let started = Instant::now();
        while started.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = reader.join().unwrap();
        println!(
            "round {round}: killed after {kill_after:?}, {} acknowledged records",
            got.len()
        );
        acked.extend(got);

        let log = Log::open(dir.path(), config(), Arc::new(SystemClock))
            .map_err(|e| format!("reopen failed: {e}"))?;
        let end = log.end_offset();
        let mut all = Vec::new();
        let mut at = 0;
        while at < end {
            let b = log
                .read(at, 10_000, 8 << 20)
                .map_err(|e| format!("read failed: {e}"))?;
            if b.records.is_empty() {
                return Err(format!("read at {at} returned nothing before end {end}"));
            }
            at = b.next_offset;
            all.extend(b.records);
        }
        for (i, r) in all.iter().enumerate() {
            if r.offset != i as u64 {
                return Err(format!("offset {} at position {i}", r.offset));
            }
            // Every record, acknowledged or not, must be one the child wrote, intact.
            let text = String::from_utf8_lossy(&r.data);
            let mut parts = text.splitn(3, '-');
            let t: usize = parts
                .next()
                .and_then(|p| p.strip_prefix('t'))
                .and_then(|p| p.parse().ok())
                .ok_or("bad record")?;
            let s: u64 = parts
                .next()
                .and_then(|p| p.strip_prefix('s'))
                .and_then(|p| p.parse().ok())
                .ok_or("bad record")?;
            if r.data != payload(t, s) {
                return Err(format!("record {i} corrupt"));
            }
        }
        for &(t, s, o) in &acked {
            let r = all
                .get(o as usize)
                .ok_or(format!("acknowledged offset {o} missing (end {end})"))?;
            if r.data != payload(t, s) {
                return Err(format!("acknowledged record at {o} has other data"));
            }
        }
        // Per writer thread, sequence order equals offset order.
        for t in 0..THREADS {
            let seqs: Vec<u64> = all
                .iter()
                .filter(|r| r.partition_key == format!("t{t}").into_bytes())
                .map(|r| {
                    String::from_utf8_lossy(&r.data).split('-').nth(1).unwrap()[1..]
                        .parse()
                        .unwrap()
                })
                .collect();
            if seqs.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("thread {t} records out of order"));
            }
        }
        println!(
            "round {round}: {} records recovered, all {} acknowledged present",
            all.len(),
            acked.len()
        );
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("crash_recovery_after_sigkill: test");
        return;
    }
    match parent() {
        Ok(()) => println!("crash: 1 passed, 0 failed"),
        Err(e) => {
            println!("crash: 0 passed, 1 failed: {e}");
            std::process::exit(1);
        }
    }
}
