use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sluice_log::LogConfig;

use crate::reshard::OnDemandScaling;
use crate::throughput::ThroughputConfig;

/// Settings of the stream registry.
///
/// (De)serializes as the `[streams]` section of sluice's configuration: the registry's own
/// limits and delays. The fields marked "not a key" come from other sections (`data_dir`,
/// `account_id` and `region` at the top, `[storage]`, `[throughput]`, `[on_demand]`), which the
/// binary fills in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Not a key: where streams, shard logs and the catalog live.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// Not a key: the `[storage]` section.
    #[serde(skip)]
    pub log: LogConfig,
    /// Open shards allowed across all streams (AWS's per-account shard quota). Default 500.
    pub shard_limit: u32,
    /// ON_DEMAND streams allowed (AWS's OnDemandStreamCountLimit). Default 50.
    pub on_demand_stream_limit: u32,
    /// How long a new stream stays CREATING, in milliseconds. Default 0.
    pub create_delay_ms: i64,
    /// How long a deleted stream stays DELETING before it is gone, in milliseconds. Default 0.
    pub delete_delay_ms: i64,
    /// How long a stream stays UPDATING after a reshard or mode change, in milliseconds (the
    /// change itself takes effect at once; another is refused until then). Default 0.
    pub update_delay_ms: i64,
    /// How long a registered consumer stays CREATING (and a deregistered one DELETING), in
    /// milliseconds. Default 0.
    pub consumer_delay_ms: i64,
    /// How often the host calls [`Streams::tick`](crate::Streams::tick) (retention, state
    /// changes, on-demand scaling), in milliseconds. Default 1000. The registry itself does not
    /// read it.
    pub maintenance_interval_ms: u64,
    /// Not a key: the `[throughput]` section.
    #[serde(skip)]
    pub throughput: ThroughputConfig,
    /// Not a key: the `[on_demand]` section.
    #[serde(skip)]
    pub on_demand: OnDemandScaling,
    /// Not a key: the account id in ARNs.
    #[serde(skip)]
    pub account_id: String,
    /// Not a key: the region in ARNs.
    #[serde(skip)]
    pub region: String,
}

impl StreamsConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StreamsConfig {
            data_dir: data_dir.into(),
            log: LogConfig::default(),
            shard_limit: 500,
            on_demand_stream_limit: 50,
            create_delay_ms: 0,
            delete_delay_ms: 0,
            update_delay_ms: 0,
            consumer_delay_ms: 0,
            maintenance_interval_ms: 1000,
            throughput: ThroughputConfig::default(),
            on_demand: OnDemandScaling::default(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }
}

/// The defaults, with the data directory `sluice-data` (the binary's default).
impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig::new("sluice-data")
    }
}
