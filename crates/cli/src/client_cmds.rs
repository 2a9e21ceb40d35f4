//! The client commands: they talk to a server over the Kinesis API, like any AWS SDK would.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};
use sluice_client::{Client, SigningKey};
use sluice_streams::ShardId;

use crate::{
    BenchArgs, BenchFormat, BenchMode, BenchRead, Endpoint, PutArgs, StreamAction, TailArgs,
    TailFormat,
};

fn client(e: &Endpoint) -> anyhow::Result<Client> {
    Ok(Client::new(&e.endpoint, &e.region, SigningKey::from_env())?)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn stream(action: StreamAction, e: &Endpoint) -> anyhow::Result<()> {
    let c = client(e)?;
    match action {
        StreamAction::Create {
            name,
            shards,
            on_demand,
        } => {
            let mut body = json!({"StreamName": name, "ShardCount": shards});
            if on_demand {
                body =
                    json!({"StreamName": name, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}});
            }
            c.call("CreateStream", &body).await?;
            for _ in 0..300 {
                let d = c
                    .call("DescribeStreamSummary", &json!({"StreamName": name}))
                    .await?;
                if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
                    println!("stream {name} is ACTIVE");
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!("stream {name} was created but is not ACTIVE after 30 s");
        }
        StreamAction::List => {
            let mut token: Option<String> = None;
            loop {
                let body = match &token {
                    Some(t) => json!({"NextToken": t}),
                    None => json!({}),
                };
                let r = c.call("ListStreams", &body).await?;
                for s in r["StreamSummaries"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}",
                        s["StreamName"].as_str().unwrap_or(""),
                        s["StreamStatus"].as_str().unwrap_or("")
                    );
                }
                match r["NextToken"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => return Ok(()),
                }
            }
        }
        StreamAction::Describe { name } => {
            let summary = c
                .call("DescribeStreamSummary", &json!({"StreamName": name}))
                .await?;
            let shards = c.call("ListShards", &json!({"StreamName": name})).await?;
            let mut out = summary["StreamDescriptionSummary"].clone();
            out["Shards"] = shards["Shards"].clone();
            print_json(&out)?;
            Ok(())
        }
        StreamAction::Delete { name } => {
            c.call("DeleteStream", &json!({"StreamName": name})).await?;
            println!("stream {name} deleted");
            Ok(())
        }
    }
}

/// Sends one PutRecords batch, retrying the records the server throttled (bounded).
async fn put_batch(c: &Client, stream: &str, mut records: Vec<Value>) -> anyhow::Result<()> {
    const ATTEMPTS_MAX: u32 = 10;
    for attempt in 0..ATTEMPTS_MAX {
        let r = c
            .call(
                "PutRecords",
                &json!({"StreamName": stream, "Records": records}),
            )
            .await?;
        if r["FailedRecordCount"].as_u64().unwrap_or(0) == 0 {
            return Ok(());
        }
        let results = r["Records"].as_array().cloned().unwrap_or_default();
        records = records
            .into_iter()
            .zip(results)
            .filter(|(_, res)| res.get("ErrorCode").is_some())
            .map(|(rec, _)| rec)
            .collect();
        tokio::time::sleep(Duration::from_millis(50u64 << attempt.min(6))).await;
    }
    bail!(
        "{} records were still refused after {ATTEMPTS_MAX} attempts",
        records.len()
    )
}

pub async fn put(args: PutArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.batch > 500 {
        bail!("--batch must be between 1 and 500");
    }
    let c = client(&args.endpoint)?;
    let (lines, total_bytes): (
        Box<dyn Iterator<Item = std::io::Result<String>>>,
        Option<u64>,
    ) = if !args.records.is_empty() {
        (Box::new(args.records.clone().into_iter().map(Ok)), None)
    } else if let Some(path) = &args.file {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = f.metadata()?.len();
        (Box::new(std::io::BufReader::new(f).lines()), Some(len))
    } else {
        (Box::new(std::io::stdin().lock().lines()), None)
    };
    let show = std::io::stderr().is_terminal();
    let bar = match (show, total_bytes) {
        (true, Some(len)) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .context("progress bar template")?,
        ),
        (true, None) => indicatif::ProgressBar::new_spinner(),
        (false, _) => indicatif::ProgressBar::hidden(),
    };
    let mut batch = Vec::with_capacity(args.batch);
    let mut count: u64 = 0;
    for line in lines {
        let line = line?;
        bar.inc(line.len() as u64 + 1);
        let key = args
            .partition_key
            .clone()
            .unwrap_or_else(|| format!("{count}"));
        batch.push(json!({"Data": base64::engine::general_purpose::STANDARD.encode(line.as_bytes()), "PartitionKey": key}));
        count += 1;
        if batch.len() == args.batch {
            put_batch(&c, &args.stream, std::mem::take(&mut batch)).await?;
            bar.set_message(format!("{count} records"));
        }
    }
    if !batch.is_empty() {
        put_batch(&c, &args.stream, batch).await?;
    }
    bar.finish_and_clear();
    eprintln!("put {count} records into {}", args.stream);
    Ok(())
}

/// `trim-horizon`, `latest`, RFC 3339 or epoch seconds → the GetShardIterator members.
fn start_position(from: &str) -> anyhow::Result<Value> {
    Ok(match from {
        "trim-horizon" | "TRIM_HORIZON" => json!({"ShardIteratorType": "TRIM_HORIZON"}),
        "latest" | "LATEST" => json!({"ShardIteratorType": "LATEST"}),
        t => {
            let secs = match t.parse::<f64>() {
                Ok(s) => s,
                Err(_) => rfc3339_secs(t).with_context(|| {
                    format!("--from {t}: expected trim-horizon, latest, RFC 3339 or epoch seconds")
                })?,
            };
            json!({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": secs})
        }
    })
}

/// RFC 3339 with any UTC offset (`Z`, `+01:00`, `-05:30`) → epoch seconds.
fn rfc3339_secs(t: &str) -> anyhow::Result<f64> {
    let (naive, offset_s) = match t.rfind(['+', '-']).filter(|&i| i > 10) {
        Some(i) => {
            let (base, off) = t.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let digits: String = off[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            if digits.len() != 4 {
                bail!("bad UTC offset {off}");
            }
            let (h, m): (i64, i64) = (digits[..2].parse()?, digits[2..].parse()?);
            (base.to_string(), sign * (h * 3600 + m * 60))
        }
        None => (t.trim_end_matches(['Z', 'z']).to_string(), 0),
    };
    let at = humantime::parse_rfc3339_weak(&naive)?;
    Ok(at.duration_since(std::time::UNIX_EPOCH)?.as_secs_f64() - offset_s as f64)
}

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    match tail_records(args).await {
        // The reader went away (`sluice tail | head`): a normal way to stop.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// One shard as `tail` follows it.
enum Follow {
    /// Waiting for its parents to be read to their ends.
    Waiting,
    Reading(String),
    Finished,
}

/// Follows every shard of the stream over the API, parents before children (the consumer
/// core's lineage rule, `sluice_streams::lineage`), so each key's records print in order across
/// splits and merges. Shards that appear later (a reshard while tailing) are read from their
/// start.
async fn tail_records(args: TailArgs) -> anyhow::Result<()> {
    let c = client(&args.endpoint)?;
    let start = start_position(&args.from)?;
    let latest = start["ShardIteratorType"] == "LATEST";
    let mut shards: BTreeMap<u32, (String, [Option<u32>; 2], Follow)> = BTreeMap::new();
    let mut first_listing = true;
    let stdout = std::io::stdout();
    let mut listed_at = std::time::Instant::now();
    loop {
        if first_listing || listed_at.elapsed() >= Duration::from_secs(1) {
            listed_at = std::time::Instant::now();
            for s in list_all_shards(&c, &args.stream).await? {
                let id = s["ShardId"].as_str().unwrap_or_default().to_string();
                let Some(index) = ShardId::parse(&id).map(|i| i.0) else {
                    continue;
                };
                let parent = |k: &str| s[k].as_str().and_then(ShardId::parse).map(|p| p.0);
                let closed = s["SequenceNumberRange"]["EndingSequenceNumber"].is_string();
                shards.entry(index).or_insert_with(|| {
                    // Under LATEST, shards already closed when tailing starts hold nothing new.
                    let follow = if first_listing && latest && closed {
                        Follow::Finished
                    } else {
                        Follow::Waiting
                    };
                    (
                        id,
                        [parent("ParentShardId"), parent("AdjacentParentShardId")],
                        follow,
                    )
                });
            }
        }
        // Start every shard whose parents are done.
        let ready: Vec<u32> = shards
            .iter()
            .filter(|(_, (_, parents, f))| {
                matches!(f, Follow::Waiting)
                    && sluice_streams::lineage::is_ready(
                        *parents,
                        |p| shards.contains_key(&p),
                        |p| matches!(shards.get(&p), Some((_, _, Follow::Finished))),
                    )
            })
            .map(|(i, _)| *i)
            .collect();
        for index in ready {
            let Some((id, _, follow)) = shards.get_mut(&index) else {
                continue;
            };
            let mut req = if first_listing {
                start.clone()
            } else {
                json!({"ShardIteratorType": "TRIM_HORIZON"})
            };
            req["StreamName"] = json!(args.stream);
            req["ShardId"] = json!(id);
            let it = c.call("GetShardIterator", &req).await?;
            *follow = match it["ShardIterator"].as_str() {
                Some(it) => Follow::Reading(it.to_string()),
                None => Follow::Finished,
            };
        }
        first_listing = false;
        let mut got_any = false;
        let mut all_caught_up = true;
        let mut finished_one = false;
        for (id, _, follow) in shards.values_mut() {
            let Follow::Reading(current) = follow else {
                continue;
            };
            let r = match c
                .call("GetRecords", &json!({"ShardIterator": current}))
                .await
            {
                Ok(r) => r,
                Err(e) if e.aws_type() == Some("ExpiredIteratorException") => {
                    bail!("shard iterator for {id} expired")
                }
                Err(e) => return Err(e.into()),
            };
            let mut out = stdout.lock();
            for rec in r["Records"].as_array().into_iter().flatten() {
                got_any = true;
                print_record(&mut out, args.format, id, rec)?;
            }
            out.flush()?;
            if r["MillisBehindLatest"].as_i64().unwrap_or(0) > 0 {
                all_caught_up = false;
            }
            *follow = match r["NextShardIterator"].as_str() {
                Some(next) => Follow::Reading(next.to_string()),
                None => {
                    finished_one = true;
                    Follow::Finished
                }
            };
        }
        if finished_one {
            // Children may be ready now: list again at once.
            listed_at -= Duration::from_secs(1);
            continue;
        }
        let waiting = shards
            .values()
            .any(|(_, _, f)| matches!(f, Follow::Waiting));
        if args.no_follow && all_caught_up && !got_any && !waiting {
            return Ok(());
        }
        if !got_any {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every shard of the stream, through ListShards' pages.
async fn list_all_shards(c: &Client, stream: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut req = json!({"StreamName": stream});
    loop {
        let page = c.call("ListShards", &req).await?;
        all.extend(page["Shards"].as_array().into_iter().flatten().cloned());
        match page["NextToken"].as_str() {
            Some(t) => req = json!({"NextToken": t}),
            None => return Ok(all),
        }
    }
}

fn print_record(
    out: &mut impl Write,
    format: TailFormat,
    shard: &str,
    rec: &Value,
) -> anyhow::Result<()> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(rec["Data"].as_str().unwrap_or_default())
        .unwrap_or_default();
    match format {
        TailFormat::Data => {
            out.write_all(&data)?;
            out.write_all(b"\n")?;
        }
        TailFormat::Json => {
            let line = json!({
                "shard_id": shard,
                "sequence_number": rec["SequenceNumber"],
                "partition_key": rec["PartitionKey"],
                "arrival": rec["ApproximateArrivalTimestamp"],
                "data": String::from_utf8_lossy(&data),
            });
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.duration > 600.0 {
        bail!("--duration is at most 600 seconds");
    }
    if matches!(args.mode, BenchMode::Pipeline) && args.output_stream.is_none() {
        bail!("--mode pipeline needs --output-stream (the --stream itself measures put-to-get)");
    }
    let c = client(&args.endpoint)?;
    let options = sluice_loadgen::Options {
        mode: match args.mode {
            BenchMode::Put => sluice_loadgen::Mode::Put,
            BenchMode::E2e => sluice_loadgen::Mode::E2e,
            BenchMode::Efo => sluice_loadgen::Mode::Efo,
            BenchMode::Read => sluice_loadgen::Mode::Read,
            BenchMode::Pipeline => sluice_loadgen::Mode::Pipeline,
            BenchMode::Delivery => sluice_loadgen::Mode::Delivery,
        },
        stream: args.stream,
        shards: args.shards,
        record_bytes: args.record_bytes,
        batch: args.batch,
        concurrency: args.concurrency,
        duration_s: args.duration,
        records_max: args.records_max,
        rate: args.rate.unwrap_or(1000),
        seed: 42,
        pipeline: sluice_loadgen::PipelineOptions {
            output_stream: args.output_stream.unwrap_or_default(),
            rate_per_s: args.rate,
            drain_timeout_s: args.drain_timeout,
            raw_put_s: if args.skip_raw_put {
                0.0
            } else {
                args.raw_put_duration
            },
            passthrough_s: args.passthrough_duration,
            read: match args.read {
                BenchRead::Poll => sluice_loadgen::ReadMethod::Poll,
                BenchRead::Efo => sluice_loadgen::ReadMethod::Efo,
            },
        },
        delivery: sluice_loadgen::DeliveryOptions {
            delivery_stream: args.delivery_stream,
            bucket: args.bucket,
            format: match args.format {
                BenchFormat::Parquet => sluice_loadgen::DeliveryFormat::Parquet,
                BenchFormat::Json => sluice_loadgen::DeliveryFormat::Json,
            },
            buffer_mb: args.buffer_mb,
            buffer_interval_s: args.buffer_interval,
            rate_per_s: args.rate,
            drain_timeout_s: args.drain_timeout,
            raw_put_s: if args.skip_raw_put {
                0.0
            } else {
                args.raw_put_duration
            },
        },
    };
    let report = sluice_loadgen::run(c, options).await?;
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = args.output {
        std::fs::write(&path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offsets() {
        let z = rfc3339_secs("2026-11-22T06:00:50Z").unwrap();
        assert_eq!(rfc3339_secs("2026-11-22T07:00:50+01:00").unwrap(), z);
        assert_eq!(rfc3339_secs("2026-11-22T00:30:50-05:30").unwrap(), z);
        assert_eq!(rfc3339_secs("2026-11-22T06:00:50.250Z").unwrap(), z + 0.25);
        assert!(rfc3339_secs("yesterday").is_err());
    }
}
