//! `sluice demo`: the seeds' clickstream pipeline, end to end, on a server of its own.
//!
//! It starts `sluice serve` (this binary, a child process) on a fresh data directory with a
//! configuration holding one jq processor and one table, creates the streams and a Firehose
//! delivery stream, then puts simulated click events (`generator.rs`) into the raw stream:
//!
//! ```text
//! generator -> clicks -> [[processors]] clicks-enrich (jq: filter, enrich) -> clicks-processed
//!   -> Firehose clicks-to-lake (KinesisStreamAsSource, dynamic partitioning, Parquet)
//!   -> s3://clickstream/clicks/event_type=../dt=../hour=../*.parquet   (records jq fails on
//!      go to clicks-dead)
//! ```
//!
//! While it runs, one line shows records put, processed, filtered, in the lake, and the lag
//! (`progress.rs`, from the server's `/metrics` and the lake's directory). Once the generator
//! stops it waits, bounded, until every record put has been processed and every kept record
//! delivered, then reads the lake's files back (`summary.rs`) and checks them against what was
//! generated minus what was filtered. The server is stopped at the end (SIGTERM), on Ctrl-C
//! too, unless `--keep-running` keeps it up until Ctrl-C.
//!
//! `pipeline.rs` has everything the demo creates (program, table, delivery stream); when the
//! server refuses record format conversion, the delivery stream writes JSON lines instead and
//! the demo says so.

mod generator;
mod pipeline;
mod progress;
mod server;
mod summary;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use serde_json::{json, Value};
use sluice_client::{Client, ClientError};

use generator::{Generator, Kind, Record, EVENT_TYPES};
use pipeline::Format;
use progress::{bytes, thousands, Metrics};
use server::Server;
use summary::Summary;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// How long the pipeline may take to drain after the last put, past the flush interval.
const DRAIN_GRACE: Duration = Duration::from_secs(60);
const PUT_BATCH_MAX: usize = 500;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long to generate events (e.g. `30s`, `2m`); 30s when neither this nor --events is
    /// given. With both, whichever comes first.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long)]
    pub events: Option<u64>,
    /// Events put per second.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// The server's data directory (new or empty); by default a fresh `sluice-demo-<time>`
    /// in the working directory. It is kept: the lake's files are in it.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the server listens; by default 127.0.0.1:4567, or a free port if that is taken.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Leave the server running after the summary (until Ctrl-C), for `aws s3` and the other
    /// APIs.
    #[arg(long)]
    pub keep_running: bool,
    /// The simulated time the events cover, ending now (so a short run fills several hour
    /// partitions).
    #[arg(long, default_value = "3h", value_parser = humantime::parse_duration)]
    pub history: Duration,
    /// The delivery stream's BufferingHints.IntervalInSeconds: how often it writes files.
    #[arg(long, default_value_t = 10)]
    pub flush_interval: u32,
    /// Seed of the event generator (random by default), to repeat a run's events.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the processed JSON records instead of converting them to Parquet.
    #[arg(long)]
    pub json: bool,
}

/// What was generated and put.
#[derive(Debug, Default)]
struct Tally {
    put: u64,
    valid: u64,
    bots: u64,
    malformed: u64,
    not_json: u64,
    by_type: BTreeMap<String, u64>,
    by_hour: BTreeMap<(String, String), u64>,
}

impl Tally {
    fn add(&mut self, r: &Record) {
        self.put += 1;
        match r.kind {
            Kind::Valid => {
                self.valid += 1;
                *self.by_type.entry(r.event_type.to_string()).or_default() += 1;
                *self.by_hour.entry(r.date_hour.clone()).or_default() += 1;
            }
            Kind::Bot => self.bots += 1,
            Kind::Malformed => self.malformed += 1,
            Kind::NotJson => self.not_json += 1,
        }
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.rate == 0 {
        bail!("--rate must be at least 1");
    }
    if args.events == Some(0) {
        bail!("--events must be at least 1");
    }
    if !(1..=900).contains(&args.flush_interval) {
        bail!("--flush-interval must be 1 to 900 seconds");
    }
    let data_dir = prepare_data_dir(args.data_dir.as_deref())?;
    let config = data_dir.join("sluice.toml");
    let tables = write_config(&config)?;
    let listen = match args.listen {
        Some(l) => l,
        None => default_listen(),
    };
    let log = data_dir.join("server.log");
    let server = tokio::task::block_in_place(|| Server::start(&data_dir, &config, listen, &log))?;
    let mut demo = Demo {
        args,
        data_dir,
        config,
        log,
        server,
        tables,
    };
    let outcome = tokio::select! {
        r = demo.run() => r,
        s = interrupted() => Err(Interrupted(s).into()),
    };
    let outcome = match outcome {
        Ok(()) if demo.args.keep_running => {
            println!();
            println!(
                "The server keeps running at http://{} (pid {}); Ctrl-C stops it.",
                demo.server.addr,
                demo.server.pid()
            );
            let _ = std::io::stdout().flush();
            tokio::select! {
                _ = interrupted() => {}
                _ = demo.server_exit() => {}
            }
            Ok(())
        }
        other => other,
    };
    if outcome.is_err() && is_tty() {
        println!();
    }
    let server_exited = demo.server.exited();
    tokio::task::block_in_place(|| demo.server.stop());
    if let (Some(status), Err(e)) = (server_exited, &outcome) {
        if e.downcast_ref::<Interrupted>().is_none() {
            eprintln!(
                "the demo's server exited ({status}); its log: {}",
                demo.log.display()
            );
        }
    }
    if let Err(e) = &outcome {
        if e.downcast_ref::<Interrupted>().is_some() {
            println!(
                "{e}: the server is stopped; what was delivered so far is in {}",
                demo.lake_root().display()
            );
            let _ = std::io::stdout().flush();
            std::process::exit(130);
        }
    }
    outcome
}

/// Ctrl-C or SIGTERM during the demo.
#[derive(Debug)]
struct Interrupted(&'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Ctrl-C or SIGTERM, by name.
async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

fn is_tty() -> bool {
    std::io::stdout().is_terminal()
}

/// The data directory: the one given (new or empty), or a new `sluice-demo-<time>` here.
fn prepare_data_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(d)
                    .with_context(|| format!("reading {}", d.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "{} is not empty: give `sluice demo` a new or empty --data-dir",
                    d.display()
                );
            }
            d.to_path_buf()
        }
        None => {
            let stamp = generator::iso_ms(now_ms());
            // 2026-01-02T10:00:00.123Z -> 20260102-100000
            let name: String = stamp[..19]
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'T')
                .map(|c| if c == 'T' { '-' } else { c })
                .collect();
            let mut dir = PathBuf::from(format!("sluice-demo-{name}"));
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("sluice-demo-{name}-{n}"));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.canonicalize()?)
}

/// Writes the server's configuration; returns whether it declares the table (`[[tables]]`),
/// which this build's configuration may not know yet (then the schema is inferred).
fn write_config(path: &Path) -> anyhow::Result<bool> {
    std::fs::write(path, pipeline::config_toml(true))
        .with_context(|| format!("writing {}", path.display()))?;
    if crate::config::Config::load(Some(path), |_| None, &[]).is_ok() {
        return Ok(true);
    }
    std::fs::write(path, pipeline::config_toml(false))
        .with_context(|| format!("writing {}", path.display()))?;
    crate::config::Config::load(Some(path), |_| None, &[]).context("the demo's configuration")?;
    Ok(false)
}

/// 127.0.0.1:4567 when it is free, else a port the system picks.
fn default_listen() -> SocketAddr {
    let usual = SocketAddr::from(([127, 0, 0, 1], 4567));
    match std::net::TcpListener::bind(usual) {
        Ok(_) => usual,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Demo {
    args: DemoArgs,
    data_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    server: Server,
    tables: bool,
}

impl Demo {
    fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    fn lake_root(&self) -> PathBuf {
        self.data_dir
            .join("lake")
            .join(pipeline::BUCKET)
            .join(pipeline::PREFIX_ROOT.trim_end_matches('/'))
    }

    /// Resolves when the server exits.
    async fn server_exit(&mut self) {
        loop {
            if self.server.exited().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let kinesis = Client::new(&self.endpoint(), REGION, None)?;
        let firehose = kinesis.with_service("Firehose_20150804", "firehose");
        for (name, shards) in [
            (pipeline::RAW_STREAM, pipeline::RAW_SHARDS),
            (pipeline::PROCESSED_STREAM, 1),
            (pipeline::DEAD_LETTER_STREAM, 1),
        ] {
            create_stream(&kinesis, name, shards).await?;
        }
        let format = self.create_delivery_stream(&firehose).await?;
        self.print_header(format);

        let mut progress = Progress::new(self.lake_root(), format);
        let tally = self.generate(&kinesis, &mut progress).await?;
        let (drained, last) = self.drain(&kinesis, &tally, &mut progress).await?;
        println!();
        println!(
            "Generated {} events: {} from people, {} from crawlers (filtered out), {} malformed (filtered out), {} not JSON (dead-letter stream {}).",
            thousands(tally.put),
            thousands(tally.valid),
            thousands(tally.bots),
            thousands(tally.malformed),
            thousands(tally.not_json),
            pipeline::DEAD_LETTER_STREAM,
        );
        match drained {
            Some(t) => println!("Pipeline drained {t:.1} s after the last put."),
            None => println!(
                "The pipeline did not drain within {} s after the last put; the summary shows what is in the lake so far.",
                (u64::from(self.args.flush_interval) + DRAIN_GRACE.as_secs())
            ),
        }
        let root = self.lake_root();
        let summary = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || Summary::read(&root, format)).await??
        };
        let matches = self.print_summary(&summary, &tally, format);
        if let Some(m) = last.filter(|m| m.delivery_errors > 0) {
            println!(
                "  {} records went to the delivery stream's error output: s3://{}/errors/ ({}/lake/{}/errors/)",
                thousands(m.delivery_errors),
                pipeline::BUCKET,
                self.data_dir.display(),
                pipeline::BUCKET
            );
        }
        self.print_commands(format);
        if drained.is_none() {
            bail!(
                "the pipeline did not drain in time (server log: {})",
                self.log.display()
            );
        }
        if !matches {
            bail!("the lake does not hold what was generated minus what was filtered");
        }
        Ok(())
    }

    /// Creates the delivery stream converting to Parquet (or writing JSON with --json, or when
    /// the server cannot convert yet), and waits until it is ACTIVE.
    async fn create_delivery_stream(&self, firehose: &Client) -> anyhow::Result<Format> {
        let interval = self.args.flush_interval;
        let mut format = if self.args.json {
            Format::Json
        } else {
            Format::Parquet
        };
        let request = pipeline::create_delivery_stream(REGION, ACCOUNT, format, interval);
        match firehose.call("CreateDeliveryStream", &request).await {
            Ok(_) => {}
            Err(ClientError::Api { message, .. })
                if format == Format::Parquet && message.contains("DataFormatConversion") =>
            {
                println!("note: this server cannot convert records to Parquet yet ({message}); the demo writes JSON lines instead.");
                format = Format::Json;
                let request = pipeline::create_delivery_stream(REGION, ACCOUNT, format, interval);
                firehose
                    .call("CreateDeliveryStream", &request)
                    .await
                    .context("CreateDeliveryStream")?;
            }
            Err(e) => return Err(anyhow!(e).context("CreateDeliveryStream")),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = firehose
                .call(
                    "DescribeDeliveryStream",
                    &json!({"DeliveryStreamName": pipeline::DELIVERY_STREAM}),
                )
                .await?;
            if d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
                return Ok(format);
            }
            if Instant::now() > deadline {
                bail!("the delivery stream did not become ACTIVE");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn print_header(&self, format: Format) {
        let a = &self.args;
        let what = match (a.events, a.duration) {
            (Some(n), Some(d)) => format!(
                "{} events or {} (whichever comes first)",
                thousands(n),
                humantime::format_duration(d)
            ),
            (Some(n), None) => format!("{} events", thousands(n)),
            (None, d) => format!(
                "{} of events",
                humantime::format_duration(d.unwrap_or(DEFAULT_DURATION))
            ),
        };
        let written = match format {
            Format::Parquet => "Parquet",
            Format::Json => "JSON lines",
        };
        println!("sluice demo: the clickstream pipeline, end to end");
        println!(
            "  server     {} (pid {}; log {})",
            self.endpoint(),
            self.server.pid(),
            self.log.display()
        );
        println!("  data dir   {}", self.data_dir.display());
        println!(
            "  config     {}{}",
            self.config.display(),
            if self.tables {
                ""
            } else {
                " (no [[tables]] in this build: the Parquet schema is inferred)"
            }
        );
        println!(
            "  pipeline   generator -> stream {} ({} shards) -> jq processor {} (drops crawlers and malformed events;",
            pipeline::RAW_STREAM,
            pipeline::RAW_SHARDS,
            pipeline::PROCESSOR
        );
        println!(
            "             adds dt, hour, device_class, referrer_type, processed_at) -> stream {}",
            pipeline::PROCESSED_STREAM
        );
        println!(
            "             -> Firehose {} (KinesisStreamAsSource, dynamic partitioning, {written}, every {} s)",
            pipeline::DELIVERY_STREAM,
            a.flush_interval
        );
        println!(
            "             -> s3://{}/{}event_type=*/dt=*/hour=*/   (records jq cannot read -> stream {})",
            pipeline::BUCKET,
            pipeline::PREFIX_ROOT,
            pipeline::DEAD_LETTER_STREAM
        );
        println!(
            "  generating {what} at {}/s; event times cover the last {}",
            thousands(a.rate),
            humantime::format_duration(a.history)
        );
        println!();
    }

    /// Puts events until --events or --duration, showing progress.
    async fn generate(&self, kinesis: &Client, progress: &mut Progress) -> anyhow::Result<Tally> {
        let a = &self.args;
        let duration = match (a.events, a.duration) {
            (Some(_), None) => None,
            (_, d) => Some(d.unwrap_or(DEFAULT_DURATION)),
        };
        let expected = match (a.events, duration) {
            (Some(n), Some(d)) => n.min((a.rate as f64 * d.as_secs_f64()) as u64),
            (Some(n), None) => n,
            (None, d) => (a.rate as f64 * d.unwrap_or(DEFAULT_DURATION).as_secs_f64()) as u64,
        };
        let seed = a.seed.unwrap_or_else(rand::random);
        let history_ms = a.history.as_millis().min(i64::MAX as u128) as i64;
        let mut generator = Generator::new(seed, expected.max(1), history_ms, now_ms());
        let mut tally = Tally::default();
        let started = Instant::now();
        progress.started = started;
        loop {
            let elapsed = started.elapsed();
            if duration.is_some_and(|d| elapsed >= d) || a.events.is_some_and(|n| tally.put >= n) {
                break;
            }
            let mut due = (a.rate as f64 * elapsed.as_secs_f64()) as u64 + 1;
            if let Some(n) = a.events {
                due = due.min(n);
            }
            let n = due.saturating_sub(tally.put).min(PUT_BATCH_MAX as u64) as usize;
            if n == 0 {
                progress.maybe_show(kinesis, tally.put).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let batch: Vec<Record> = (0..n).map(|_| generator.next_record()).collect();
            put_records(kinesis, &batch).await?;
            for r in &batch {
                tally.add(r);
            }
            progress.maybe_show(kinesis, tally.put).await;
        }
        progress.put_secs = Some(started.elapsed().as_secs_f64());
        Ok(tally)
    }

    /// Waits until everything put has been processed and delivered (bounded); returns how long
    /// that took (None if it did not in time) and the last metrics read.
    async fn drain(
        &self,
        kinesis: &Client,
        tally: &Tally,
        progress: &mut Progress,
    ) -> anyhow::Result<(Option<f64>, Option<Metrics>)> {
        let started = Instant::now();
        let limit = Duration::from_secs(u64::from(self.args.flush_interval)) + DRAIN_GRACE;
        let mut last = None;
        loop {
            let m = progress.show(kinesis, tally.put).await;
            last = m.or(last);
            if m.is_some_and(|m| m.drained(tally.put)) {
                progress.finish();
                return Ok((Some(started.elapsed().as_secs_f64()), last));
            }
            if started.elapsed() > limit {
                progress.finish();
                return Ok((None, last));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Prints what the lake holds; returns whether it matches what was generated minus what
    /// was filtered.
    fn print_summary(&self, s: &Summary, tally: &Tally, format: Format) -> bool {
        let kind = match format {
            Format::Parquet => "Parquet",
            Format::Json => "JSON",
        };
        println!();
        println!(
            "The lake: {} {kind} files, {}, in {}/",
            thousands(s.files),
            bytes(s.bytes),
            self.lake_root().display()
        );
        println!("  read back from the files:");
        println!("    {:<16}{:>10}{:>12}", "event_type", "rows", "generated");
        let mut types: Vec<&str> = EVENT_TYPES.to_vec();
        for t in s.by_type.keys().chain(tally.by_type.keys()) {
            if !types.contains(&t.as_str()) {
                types.push(t);
            }
        }
        for t in &types {
            let got = s.by_type.get(*t).copied().unwrap_or(0);
            let want = tally.by_type.get(*t).copied().unwrap_or(0);
            println!("    {:<16}{:>10}{:>12}", t, thousands(got), thousands(want));
        }
        println!(
            "    {:<16}{:>10}{:>12}",
            "dt hour (UTC)", "rows", "generated"
        );
        let mut hours: Vec<&(String, String)> = s.by_hour.keys().collect();
        for h in tally.by_hour.keys() {
            if !hours.contains(&h) {
                hours.push(h);
            }
        }
        hours.sort();
        for h in hours {
            let got = s.by_hour.get(h).copied().unwrap_or(0);
            let want = tally.by_hour.get(h).copied().unwrap_or(0);
            println!(
                "    {:<16}{:>10}{:>12}",
                format!("{} {}:00", h.0, h.1),
                thousands(got),
                thousands(want)
            );
        }
        let classes: Vec<String> = s
            .device_classes
            .iter()
            .map(|(k, v)| format!("{k} {:.0}%", 100.0 * *v as f64 / s.rows.max(1) as f64))
            .collect();
        let purchases = s.by_type.get("purchase").copied().unwrap_or(0);
        println!(
            "  {} rows ({} distinct events), {} sessions, {} users; devices: {}; revenue {} from {} purchases",
            thousands(s.rows),
            thousands(s.event_ids.len() as u64),
            thousands(s.sessions.len() as u64),
            thousands(s.users.len() as u64),
            if classes.is_empty() { "-".to_string() } else { classes.join(", ") },
            money(s.revenue),
            thousands(purchases)
        );
        let filtered = tally.bots + tally.malformed + tally.not_json;
        let matches =
            s.rows == tally.valid && s.by_type == tally.by_type && s.by_hour == tally.by_hour;
        let sum = format!(
            "{} generated - {} crawlers - {} malformed - {} not JSON = {}",
            thousands(tally.put),
            thousands(tally.bots),
            thousands(tally.malformed),
            thousands(tally.not_json),
            thousands(tally.put - filtered)
        );
        if matches {
            println!("  OK: the lake holds what was generated minus what was filtered ({sum}), per event type and hour.");
        } else {
            println!(
                "  MISMATCH: the lake holds {} rows; expected {sum}.",
                thousands(s.rows)
            );
        }
        matches
    }

    fn print_commands(&self, format: Format) {
        let root = self.lake_root();
        let endpoint = self.endpoint();
        println!();
        println!("Look at it:");
        match format {
            Format::Parquet => {
                println!(
                    "  duckdb -c \"select event_type, count(*) from read_parquet('{}/**/*.parquet', hive_partitioning=true) group by 1 order by 2 desc\"",
                    root.display()
                );
                println!(
                    "  duckdb -c \"select dt, hour, device_class, count(*) as events, count(distinct session_id) as sessions from read_parquet('{}/**/*.parquet', hive_partitioning=true) group by all order by all\"",
                    root.display()
                );
            }
            Format::Json => {
                println!(
                    "  duckdb -c \"select event_type, count(*) from read_json_auto('{}/**/*.json', hive_partitioning=true) group by 1 order by 2 desc\"",
                    root.display()
                );
            }
        }
        let server_note = if self.args.keep_running {
            String::new()
        } else {
            format!(
                "      # with the server up: sluice demo --keep-running, or sluice serve --config {} --data-dir {} --listen {}\n",
                self.config.display(),
                self.data_dir.display(),
                self.server.addr
            )
        };
        print!(
            "  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws s3 ls s3://{}/ --recursive --endpoint-url {endpoint} --region {REGION}\n{server_note}",
            pipeline::BUCKET
        );
        println!(
            "  sluice tail {} --from trim-horizon --no-follow --endpoint {endpoint}   # what jq could not read",
            pipeline::DEAD_LETTER_STREAM
        );
        let _ = std::io::stdout().flush();
    }
}

/// The progress line: refreshed in place on a terminal, every few seconds otherwise.
struct Progress {
    root: PathBuf,
    format: Format,
    tty: bool,
    last: Option<Instant>,
    last_printed: Option<Instant>,
    /// When putting started (the line's clock).
    started: Instant,
    /// Seconds putting took, once it is over (the rate shown is then the average).
    put_secs: Option<f64>,
    shown: bool,
}

impl Progress {
    fn new(root: PathBuf, format: Format) -> Progress {
        Progress {
            root,
            format,
            tty: is_tty(),
            // The first line after half a second of putting.
            last: Some(Instant::now()),
            last_printed: None,
            started: Instant::now(),
            put_secs: None,
            shown: false,
        }
    }

    async fn maybe_show(&mut self, kinesis: &Client, put: u64) {
        if self
            .last
            .is_some_and(|l| l.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        self.show(kinesis, put).await;
    }

    /// Reads the metrics and shows a line (on a terminal; otherwise one every 2 s); returns the
    /// metrics (None if /metrics did not answer).
    async fn show(&mut self, kinesis: &Client, put: u64) -> Option<Metrics> {
        self.last = Some(Instant::now());
        let m = match kinesis.get_text("/metrics").await {
            Ok(text) => Metrics::parse(&text),
            Err(_) => return None,
        };
        if !self.tty
            && self
                .last_printed
                .is_some_and(|l| l.elapsed() < Duration::from_secs(2))
        {
            return Some(m);
        }
        self.last_printed = Some(Instant::now());
        let (files, file_bytes) = progress::scan_files(&self.root, self.format.extension());
        let elapsed = self.started.elapsed().as_secs_f64();
        let line = progress::Line {
            elapsed_s: elapsed,
            put,
            put_rate: put as f64 / self.put_secs.unwrap_or(elapsed).max(0.001),
            m: &m,
            files,
            file_bytes,
        };
        if self.tty {
            // One terminal row, or `\r` would not get back to its start.
            let mut line = line.to_string();
            if let Ok(w) = rustix::termios::tcgetwinsize(std::io::stdout()) {
                let width = usize::from(w.ws_col).saturating_sub(1);
                if width > 0 && line.len() > width {
                    line.truncate(width);
                }
            }
            print!("\r\x1b[2K{line}");
        } else {
            println!("{line}");
        }
        let _ = std::io::stdout().flush();
        self.shown = true;
        Some(m)
    }

    fn finish(&mut self) {
        if self.tty && self.shown {
            println!();
        }
    }
}

/// `$6,340.42`.
fn money(amount: f64) -> String {
    let cents = (amount * 100.0).round().max(0.0) as u64;
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}

async fn create_stream(kinesis: &Client, name: &str, shards: u32) -> anyhow::Result<()> {
    kinesis
        .call(
            "CreateStream",
            &json!({"StreamName": name, "ShardCount": shards}),
        )
        .await
        .with_context(|| format!("creating the stream {name}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = kinesis
            .call("DescribeStreamSummary", &json!({"StreamName": name}))
            .await?;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the stream {name} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One PutRecords call, retrying the records the server did not take (bounded).
async fn put_records(kinesis: &Client, batch: &[Record]) -> anyhow::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pending: Vec<&Record> = batch.iter().collect();
    for attempt in 0..10u32 {
        let records: Vec<Value> = pending
            .iter()
            .map(|r| json!({"Data": b64.encode(&r.data), "PartitionKey": r.partition_key}))
            .collect();
        let answer = kinesis
            .call(
                "PutRecords",
                &json!({"StreamName": pipeline::RAW_STREAM, "Records": records}),
            )
            .await
            .context("PutRecords")?;
        if answer["FailedRecordCount"].as_u64().unwrap_or(0) == 0 {
            return Ok(());
        }
        let results = answer["Records"].as_array().cloned().unwrap_or_default();
        pending = pending
            .into_iter()
            .zip(results.iter())
            .filter(|(_, res)| res.get("ErrorCode").is_some_and(|c| !c.is_null()))
            .map(|(r, _)| r)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
    }
    bail!(
        "PutRecords: {} records still refused after 10 tries",
        pending.len()
    )
}
