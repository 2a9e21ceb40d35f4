//! The `sluice` binary: command-line parsing and glue. `serve` runs the server; `logs` reads a
//! function's log in the data directory; the other commands are clients of a running server
//! over the Kinesis API.

mod client_cmds;
mod config;
mod demo;
mod logs;
mod observe;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

// The request path allocates many small buffers (parsed members, records, response
// strings); mimalloc's thread-local free lists make that markedly cheaper than glibc malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "A self-hosted, Kinesis-compatible real-time data ingestion server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where client commands send their requests.
#[derive(clap::Args, Debug, Clone)]
pub struct Endpoint {
    /// The sluice (or any Kinesis-compatible) endpoint.
    #[arg(
        long,
        env = "SLUICE_ENDPOINT",
        default_value = "http://127.0.0.1:4567",
        global = true
    )]
    pub endpoint: String,
    /// The region to sign requests for (when AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", global = true)]
    pub region: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create, list, describe and delete streams.
    Stream {
        #[command(subcommand)]
        action: StreamAction,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Put records: the arguments, each line of --file, or each line of standard input.
    Put(PutArgs),
    /// Print a stream's records as they arrive, from every shard.
    Tail(TailArgs),
    /// Load-generate against a Kinesis-compatible endpoint and print a JSON report.
    Bench(BenchArgs),
    /// Print what a Lambda function's processes wrote (its log in the data directory).
    Logs(LogsArgs),
    /// Run the seeds' clickstream pipeline end to end on a server of its own: simulated click
    /// events -> a stream -> a jq processor -> Firehose -> Parquet in the lake, then a summary.
    Demo(demo::DemoArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML configuration file (see sluice.example.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where data lives (overrides the config file and SLUICE_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:4567; port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// `group_commit` (durable before acknowledgement) or `interval`.
    #[arg(long)]
    pub sync: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The function's name.
    pub function: String,
    /// Keep printing lines as they are written.
    #[arg(long, short)]
    pub follow: bool,
    /// The server's data directory (overrides the config file and SLUICE_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML configuration file, for its data directory.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum StreamAction {
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// ON_DEMAND capacity mode instead of PROVISIONED.
        #[arg(long)]
        on_demand: bool,
    },
    List,
    Describe {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct PutArgs {
    pub stream: String,
    /// Records to put; without any, --file or standard input is read, one record per line.
    pub records: Vec<String>,
    /// Partition key for every record; by default each record gets its own, so records spread
    /// over all shards.
    #[arg(long, short = 'k')]
    pub partition_key: Option<String>,
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Records per PutRecords request (1 to 500).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TailFormat {
    /// The data of each record, one per line.
    Data,
    /// One JSON object per record, with shard, sequence number, partition key and arrival time.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    pub stream: String,
    /// `trim-horizon`, `latest`, or a time (RFC 3339, or epoch seconds).
    #[arg(long, default_value = "latest")]
    pub from: String,
    /// Stop once every shard is read to its end instead of waiting for more.
    #[arg(long)]
    pub no_follow: bool,
    #[arg(long, value_enum, default_value = "data")]
    pub format: TailFormat,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchMode {
    Put,
    E2e,
    /// Put-to-push latency through SubscribeToShard (enhanced fan-out).
    Efo,
    Read,
    /// A stream-to-stream pipeline: JSON records put into --stream, matched by id on
    /// --output-stream (put-to-processed latency, lost, duplicates), after a raw PutRecords
    /// phase for comparison.
    Pipeline,
    /// PutRecordBatch into a Firehose delivery stream (--delivery-stream, created converting to
    /// Parquet when missing) and the rate records reach objects (from the endpoint's delivery
    /// metrics), after the same raw PutRecords phase.
    Delivery,
}

/// What a delivery stream the delivery mode creates writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchFormat {
    /// Parquet by record format conversion, the schema inferred from the first buffer.
    Parquet,
    /// The JSON records as they are.
    Json,
}

/// How the pipeline mode reads the output stream.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchRead {
    /// GetRecords loops (any endpoint; adds about 1-2 ms of polling to each latency).
    Poll,
    /// SubscribeToShard through a registered consumer (enhanced fan-out): records are pushed.
    Efo,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "put")]
    pub mode: BenchMode,
    #[arg(long, default_value = "bench")]
    pub stream: String,
    /// Shards of the stream, if the bench creates it.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to run (at most 600).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many records.
    #[arg(long, alias = "records")]
    pub records_max: Option<u64>,
    /// Records per second: e2e and efo (default 1000); pipeline (default: as fast as the
    /// source takes them).
    #[arg(long)]
    pub rate: Option<u64>,
    /// pipeline mode: the stream the pipeline writes to (the --stream itself measures
    /// put-to-get).
    #[arg(long)]
    pub output_stream: Option<String>,
    /// pipeline and delivery modes: seconds to keep reading the output (waiting for delivery)
    /// after the last put, for records still missing (at most 600); those not seen by then are
    /// reported lost (not delivered).
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// pipeline and delivery modes: seconds of raw PutRecords into a scratch stream before the
    /// measured phase (at most 600).
    #[arg(long, default_value_t = 3.0)]
    pub raw_put_duration: f64,
    /// pipeline and delivery modes: skip the raw PutRecords phase.
    #[arg(long)]
    pub skip_raw_put: bool,
    /// pipeline mode: seconds of puts into a scratch stream that is also its own output, read
    /// as the output is, before the measured phase: what the puts and reads reach with nothing
    /// between them (0, the default, skips it; at most 600).
    #[arg(long, default_value_t = 0.0)]
    pub passthrough_duration: f64,
    /// pipeline mode: how the output stream is read.
    #[arg(long, value_enum, default_value = "poll")]
    pub read: BenchRead,
    /// delivery mode: the delivery stream (created when missing).
    #[arg(long, default_value = "bench-delivery")]
    pub delivery_stream: String,
    /// delivery mode: the bucket of a created delivery stream.
    #[arg(long, default_value = "bench-lake")]
    pub bucket: String,
    /// delivery mode: what a created delivery stream writes.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: BenchFormat,
    /// delivery mode: BufferingHints.SizeInMBs of a created delivery stream (Parquet: 64-128).
    #[arg(long, default_value_t = 64)]
    pub buffer_mb: u32,
    /// delivery mode: BufferingHints.IntervalInSeconds of a created delivery stream.
    #[arg(long, default_value_t = 1)]
    pub buffer_interval: u32,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = {
        use clap::{CommandFactory, FromArgMatches};
        // The environment variables come from the one table in config.rs.
        let command = Cli::command().mut_subcommand("serve", |c| c.after_help(config::env_help()));
        Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Stream { action, endpoint } => client_cmds::stream(action, &endpoint).await,
            Command::Put(args) => client_cmds::put(args).await,
            Command::Tail(args) => client_cmds::tail(args).await,
            Command::Bench(args) => client_cmds::bench(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    })
}
