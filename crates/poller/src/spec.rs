//! What a poller does: one event source mapping's settings, checked against their ranges.

use std::sync::Arc;

use sluice_streams::ConsumerName;

use crate::failure::FailureDestination;
use crate::filter::Filter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    /// ms since the epoch.
    AtTimestamp(i64),
}

/// One mapping's settings (validated by whoever built it; see [`crate::limits`]).
#[derive(Debug, Clone)]
pub struct PollerSpec {
    /// The mapping's UUID: names its consumer checkpoints and its failure objects.
    pub uuid: String,
    /// The consumer name its checkpoints live under (e.g. `lambda-esm/<uuid>`).
    pub consumer: ConsumerName,
    pub stream: String,
    pub stream_arn: String,
    pub starting_position: StartingPosition,
    pub batch_size: u32,
    pub batching_window_ms: u64,
    pub parallelization_factor: u32,
    pub bisect_on_error: bool,
    /// `None`: retry until the records expire (-1).
    pub maximum_retry_attempts: Option<u32>,
    /// `None`: no age limit (-1).
    pub maximum_record_age_ms: Option<u64>,
    pub report_batch_item_failures: bool,
    /// ORed; empty means every record.
    pub filters: Vec<Arc<Filter>>,
    /// 0: no tumbling window.
    pub tumbling_window_s: u32,
    pub on_failure: Option<FailureDestination>,
}

impl PollerSpec {
    /// A spec with Lambda's defaults.
    pub fn new(uuid: &str, consumer: ConsumerName, stream: &str, stream_arn: &str) -> PollerSpec {
        PollerSpec {
            uuid: uuid.to_string(),
            consumer,
            stream: stream.to_string(),
            stream_arn: stream_arn.to_string(),
            starting_position: StartingPosition::Latest,
            batch_size: crate::limits::BATCH_SIZE_DEFAULT,
            batching_window_ms: 0,
            parallelization_factor: 1,
            bisect_on_error: false,
            maximum_retry_attempts: None,
            maximum_record_age_ms: None,
            report_batch_item_failures: false,
            filters: Vec::new(),
            tumbling_window_s: 0,
            on_failure: None,
        }
    }
}
