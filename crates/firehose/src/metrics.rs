//! Firehose's CloudWatch metrics of each delivery stream as Prometheus series (label
//! `delivery_stream`): IncomingRecords / IncomingBytes, DeliveryToS3.Records / .Bytes /
//! .Success / .DataFreshness (for a Redshift destination: the intermediate S3 objects),
//! DeliveryToRedshift.Records / .Bytes / .Success, and the records waiting in the durable
//! buffer.

use metrics::{Counter, Gauge};

#[derive(Clone)]
pub struct StreamMetrics {
    pub incoming_records: Counter,
    pub incoming_bytes: Counter,
    pub delivered_records: Counter,
    pub delivered_bytes: Counter,
    /// 1 after a successful object write, 0 after a failed one (DeliveryToS3.Success).
    pub success: Gauge,
    /// Age of the oldest record of the last object written (DeliveryToS3.DataFreshness).
    pub freshness_seconds: Gauge,
    /// Records sent to the error output prefix.
    pub failed_records: Counter,
    /// Records accepted and not delivered yet (the backlog behind ServiceUnavailableException).
    pub backlog_records: Gauge,
    /// The Redshift destination (DeliveryToRedshift.Records / .Bytes / .Success): records and
    /// bytes of the staged objects loaded, 1 after a load and 0 after an object skipped.
    pub redshift_records: Counter,
    pub redshift_bytes: Counter,
    pub redshift_success: Gauge,
}

impl std::fmt::Debug for StreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamMetrics")
    }
}

impl StreamMetrics {
    pub fn new(name: &str) -> StreamMetrics {
        let l = || [("delivery_stream", name.to_string())];
        StreamMetrics {
            incoming_records: metrics::counter!("sluice_firehose_incoming_records_total", &l()),
            incoming_bytes: metrics::counter!("sluice_firehose_incoming_bytes_total", &l()),
            delivered_records: metrics::counter!(
                "sluice_firehose_delivery_to_s3_records_total",
                &l()
            ),
            delivered_bytes: metrics::counter!("sluice_firehose_delivery_to_s3_bytes_total", &l()),
            success: metrics::gauge!("sluice_firehose_delivery_to_s3_success", &l()),
            freshness_seconds: metrics::gauge!(
                "sluice_firehose_delivery_to_s3_data_freshness_seconds",
                &l()
            ),
            failed_records: metrics::counter!("sluice_firehose_error_output_records_total", &l()),
            backlog_records: metrics::gauge!("sluice_firehose_backlog_records", &l()),
            redshift_records: metrics::counter!(
                "sluice_firehose_delivery_to_redshift_records_total",
                &l()
            ),
            redshift_bytes: metrics::counter!(
                "sluice_firehose_delivery_to_redshift_bytes_total",
                &l()
            ),
            redshift_success: metrics::gauge!("sluice_firehose_delivery_to_redshift_success", &l()),
        }
    }
}
