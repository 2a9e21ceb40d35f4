//! `GET /metrics` and `GET /health`: the Prometheus exporter of the `metrics` facade (rendered
//! by our own route, no listener of its own), the server's own gauges, and liveness and
//! readiness as JSON. What each series means: `docs/operations.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use sluice_kinesis::Service;
use sluice_streams::{LogHealth, ShardHealth, Streams};

/// Latency histograms (every histogram named `*_seconds`): 250 µs to 10 s, few buckets, as
/// there are three per stream.
const SECONDS_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
];
/// Records per group commit.
const COMMIT_RECORDS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
];
/// Bytes per group commit: 256 B to 64 MiB.
const COMMIT_BYTES_BUCKETS: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];
/// How often histogram samples are folded into their buckets between scrapes (bounds the
/// memory samples take under load).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder and describes every series. Call once,
/// before anything records.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("sluice_log_group_commit_records".into()),
            COMMIT_RECORDS_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("sluice_log_group_commit_bytes".into()),
            COMMIT_BYTES_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    sluice_kinesis::metrics::describe();
    metrics::gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("process_start_time_seconds").set(start);
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "sluice_build_info",
        "Always 1; the label `version` is the server's version."
    );
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "When the server started, in seconds since the Unix epoch."
    );
    describe_counter!(
        "sluice_requests_total",
        Unit::Count,
        "Requests to an AWS service, by service (signing name), operation and status class."
    );
    describe_gauge!("sluice_streams", Unit::Count, "Streams, any status.");
    describe_gauge!(
        "sluice_shards_open",
        Unit::Count,
        "Open shards (not closed by a reshard) of every stream."
    );
    describe_gauge!(
        "sluice_shards_poisoned",
        Unit::Count,
        "Open shards whose log refuses appends after an I/O error (poisoned or recovering)."
    );
    describe_gauge!(
        "sluice_shards_no_space",
        Unit::Count,
        "Open shards whose last commit failed for lack of disk space."
    );
    describe_gauge!(
        "sluice_subscriptions_open",
        Unit::Count,
        "SubscribeToShard subscriptions running now."
    );
    describe_gauge!(
        "sluice_data_dir_free_bytes",
        Unit::Bytes,
        "Space available to sluice on the data directory's file system."
    );
    describe_gauge!(
        "sluice_data_dir_size_bytes",
        Unit::Bytes,
        "Size of the data directory's file system."
    );
    describe_histogram!(
        "sluice_log_fsync_seconds",
        Unit::Seconds,
        "Time of each fdatasync of a shard log's group commit."
    );
    describe_histogram!(
        "sluice_log_group_commit_records",
        Unit::Count,
        "Records per group commit of a shard log."
    );
    describe_histogram!(
        "sluice_log_group_commit_bytes",
        Unit::Bytes,
        "Bytes per group commit of a shard log."
    );
    describe_gauge!(
        "sluice_log_append_queue_depth",
        Unit::Count,
        "Appends queued for the shard log writers, all shards together."
    );
    describe_counter!(
        "sluice_log_poisoned_total",
        Unit::Count,
        "Times a shard log was poisoned by a failed write or fsync."
    );
    describe_counter!(
        "sluice_log_no_space_total",
        Unit::Count,
        "Group commits that failed for lack of disk space."
    );
}

/// Folds histogram samples into buckets every few seconds, for the server's lifetime.
pub fn spawn_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// What `/metrics` and `/health` read.
pub struct Observer {
    pub prometheus: PrometheusHandle,
    pub streams: Arc<Streams>,
    pub kinesis: Arc<Service>,
    pub data_dir: PathBuf,
    pub started: Instant,
}

/// `GET /metrics`, `GET /health` and `GET /health/live`.
pub fn routes(observer: Arc<Observer>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_text))
        .route("/health", axum::routing::get(health))
        .route("/health/live", axum::routing::get(live))
        .with_state(observer)
}

/// The data directory's file system: (free to us, size), in bytes.
fn disk_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

/// A shard's state word in `/health`.
fn state_of(h: &LogHealth) -> &'static str {
    match h {
        LogHealth::Healthy => "ok",
        LogHealth::NoSpace { .. } => "no_space",
        LogHealth::Poisoned { .. } => "poisoned",
        LogHealth::Recovering => "recovering",
    }
}

fn shard_json(h: &ShardHealth) -> Value {
    let mut v = json!({
        "stream": h.stream,
        "shard": h.shard_id.to_string(),
        "open": h.open,
        "state": state_of(&h.log),
    });
    if let LogHealth::NoSpace { since_ms } | LogHealth::Poisoned { since_ms, .. } = &h.log {
        v["since_ms"] = json!(since_ms);
    }
    v
}

/// Counts shards by state, for the gauges and `/health`.
struct Census {
    open: usize,
    closed: usize,
    poisoned: Vec<Value>,
    no_space: Vec<Value>,
}

fn census(shards: &[ShardHealth]) -> Census {
    let mut c = Census {
        open: 0,
        closed: 0,
        poisoned: Vec::new(),
        no_space: Vec::new(),
    };
    for h in shards {
        if h.open {
            c.open += 1;
        } else {
            c.closed += 1;
        }
        if h.is_writable() {
            continue;
        }
        match h.log {
            LogHealth::NoSpace { .. } => c.no_space.push(shard_json(h)),
            _ => c.poisoned.push(shard_json(h)),
        }
    }
    c
}

async fn metrics_text(State(o): State<Arc<Observer>>) -> Response {
    // Gauges of the server's state are sampled now, so a scrape sees the present.
    let shards = o.streams.shard_health();
    let c = census(&shards);
    metrics::gauge!("sluice_streams").set(o.streams.names().len() as f64);
    metrics::gauge!("sluice_shards_open").set(c.open as f64);
    metrics::gauge!("sluice_shards_poisoned").set(c.poisoned.len() as f64);
    metrics::gauge!("sluice_shards_no_space").set(c.no_space.len() as f64);
    metrics::gauge!("sluice_subscriptions_open").set(o.kinesis.subscriptions.len() as f64);
    if let Some((free, size)) = disk_space(&o.data_dir) {
        metrics::gauge!("sluice_data_dir_free_bytes").set(free as f64);
        metrics::gauge!("sluice_data_dir_size_bytes").set(size as f64);
    }
    let mut text = o.prometheus.render();
    o.kinesis.metrics.render_shard_level(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

/// Readiness: 200 with `"status": "ok"` while every open shard takes appends, 503 with
/// `"status": "degraded"` while one is poisoned, recovering or out of space.
/// `?verbose=1` lists every shard.
async fn health(State(o): State<Arc<Observer>>, uri: Uri) -> Response {
    let verbose = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| matches!(p, "verbose" | "verbose=1" | "verbose=true"))
    });
    let shards = o.streams.shard_health();
    let c = census(&shards);
    let ready = c.poisoned.is_empty() && c.no_space.is_empty();
    let mut shards_json = json!({
        "open": c.open,
        "closed": c.closed,
        "poisoned": c.poisoned,
        "no_space": c.no_space,
    });
    if verbose {
        shards_json["all"] = Value::Array(shards.iter().map(shard_json).collect());
    }
    let disk =
        disk_space(&o.data_dir).map(|(free, size)| json!({"free_bytes": free, "size_bytes": size}));
    let body = json!({
        "status": if ready { "ok" } else { "degraded" },
        "live": true,
        "ready": ready,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": o.started.elapsed().as_secs(),
        "streams": o.streams.names().len(),
        "shards": shards_json,
        "subscriptions": o.kinesis.subscriptions.len(),
        "data_dir": disk,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}

/// Liveness: 200 whenever the server answers HTTP at all.
async fn live() -> Response {
    json_response(StatusCode::OK, &json!({"status": "live"}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_streams::ShardId;

    fn shard(open: bool, log: LogHealth) -> ShardHealth {
        ShardHealth {
            stream: "s".into(),
            shard_id: ShardId(3),
            open,
            log,
        }
    }

    #[test]
    fn census_counts_unwritable_open_shards_only() {
        let c = census(&[
            shard(true, LogHealth::Healthy),
            shard(true, LogHealth::NoSpace { since_ms: 5 }),
            shard(true, LogHealth::Recovering),
            shard(
                true,
                LogHealth::Poisoned {
                    reason: "eio".into(),
                    since_ms: 7,
                },
            ),
            shard(false, LogHealth::Recovering),
        ]);
        assert_eq!((c.open, c.closed), (4, 1));
        assert_eq!(
            c.no_space,
            [
                json!({"stream": "s", "shard": "shardId-000000000003", "open": true, "state": "no_space", "since_ms": 5})
            ]
        );
        assert_eq!(c.poisoned.len(), 2);
        assert_eq!(c.poisoned[0]["state"], "recovering");
        assert_eq!(c.poisoned[1]["since_ms"], 7);
        assert!(
            c.poisoned[1].get("reason").is_none(),
            "no internal paths or errors"
        );
    }

    #[test]
    fn disk_space_of_a_real_directory() {
        let (free, size) = disk_space(std::path::Path::new(".")).unwrap();
        assert!(size > 0 && free <= size);
    }
}
