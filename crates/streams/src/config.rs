use std::path::PathBuf;

use sluice_log::LogConfig;

use crate::reshard::OnDemandScaling;
use crate::throughput::ThroughputConfig;

/// Settings of the stream registry.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub data_dir: PathBuf,
    pub log: LogConfig,
    /// Open shards allowed across all streams (AWS's per-account shard quota).
    pub shard_limit: u32,
    /// ON_DEMAND streams allowed (AWS's OnDemandStreamCountLimit).
    pub on_demand_stream_limit: u32,
    /// How long a new stream stays CREATING.
    pub create_delay_ms: i64,
    /// How long a deleted stream stays DELETING before it is gone.
    pub delete_delay_ms: i64,
    /// How long a stream stays UPDATING after a reshard or mode change (the change itself
    /// takes effect at once; another is refused until then).
    pub update_delay_ms: i64,
    /// How long a registered consumer stays CREATING (and a deregistered one DELETING).
    pub consumer_delay_ms: i64,
    pub throughput: ThroughputConfig,
    pub on_demand: OnDemandScaling,
    pub account_id: String,
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
            throughput: ThroughputConfig::default(),
            on_demand: OnDemandScaling::default(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }
}
