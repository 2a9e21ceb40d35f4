//! EnableEnhancedMonitoring and DisableEnhancedMonitoring: which shard-level metrics a stream
//! has (its `EnhancedMonitoring` in DescribeStream), kept by [`crate::metrics::Metrics`].

use sluice_aws::value::{Input, Out};
use sluice_streams::{StreamStatus, StreamsError};

use crate::error::ApiError;
use crate::metrics::{ShardLevelSet, SHARD_LEVEL_METRICS};
use crate::ops::{present, stream_member, Reply, Service, StreamTarget};
use crate::validate::Validator;

/// EnableEnhancedMonitoring and DisableEnhancedMonitoring (the same members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedMonitoringRequest {
    pub stream: StreamTarget,
    /// The metrics to enable or disable (`ALL` is every one).
    pub shard_level_metrics: ShardLevelSet,
}

pub type EnableEnhancedMonitoringRequest = EnhancedMonitoringRequest;
pub type DisableEnhancedMonitoringRequest = EnhancedMonitoringRequest;

impl EnhancedMonitoringRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<EnhancedMonitoringRequest, ApiError> {
        let mut v = Validator::new();
        let list = input.list("ShardLevelMetrics")?;
        v.required(list, "shardLevelMetrics");
        let names: Vec<&str> = match list {
            Some(l) => l
                .iter()
                .map(Input::string_element)
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if list.is_some() {
            let shown = format!("[{}]", names.join(", "));
            v.count(
                names.len(),
                "shardLevelMetrics",
                1,
                SHARD_LEVEL_METRICS.len(),
                || shown.clone(),
            );
            if names.iter().any(|n| ShardLevelSet::parse(n).is_none()) {
                let allowed: Vec<&str> =
                    SHARD_LEVEL_METRICS.iter().copied().chain(["ALL"]).collect();
                v.fail(
                    Some(&shown),
                    "shardLevelMetrics",
                    &format!(
                        "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                        allowed.join(", ")
                    ),
                );
            }
        }
        let stream = stream_member(&mut v, input, true, account)?;
        v.finish()?;
        let shard_level_metrics = names
            .iter()
            .filter_map(|n| ShardLevelSet::parse(n))
            .fold(ShardLevelSet::NONE, ShardLevelSet::union);
        Ok(EnhancedMonitoringRequest {
            stream: present(stream)?,
            shard_level_metrics,
        })
    }
}

fn names_out(set: ShardLevelSet) -> Out {
    Out::Array(
        set.names()
            .into_iter()
            .map(|n| Out::Str(n.to_string()))
            .collect(),
    )
}

impl Service {
    /// `EnhancedMonitoring` of DescribeStream and DescribeStreamSummary.
    pub(crate) fn enhanced_monitoring(&self, stream: &str) -> Out {
        Out::Array(vec![Out::map()
            .set(
                "ShardLevelMetrics",
                names_out(self.metrics.enhanced(stream)),
            )
            .done()])
    }

    /// EnableEnhancedMonitoring (`enable`) or DisableEnhancedMonitoring.
    pub(crate) fn enhanced_monitoring_change(
        &self,
        request: EnhancedMonitoringRequest,
        enable: bool,
    ) -> Result<Reply, ApiError> {
        let name = request.stream.as_str();
        let change = request.shard_level_metrics;
        let view = self.streams.describe(name).map_err(|e| self.ctx().map(e))?;
        if view.meta.status != StreamStatus::Active {
            return Err(self.ctx().map(StreamsError::StreamNotActive {
                name: name.to_string(),
                status: view.meta.status,
            }));
        }
        let shards = view
            .shards
            .iter()
            .filter(|s| s.meta.is_open())
            .map(|s| s.meta.index);
        // The stream's setting is kept in the catalog first, so it survives a restart.
        let current = self.metrics.enhanced(name);
        let desired = if enable {
            current.union(change)
        } else {
            current.minus(change)
        };
        let names = desired.names().into_iter().map(String::from).collect();
        self.streams
            .set_shard_level_metrics(name, names)
            .map_err(|e| self.ctx().map(e))?;
        let (current, desired) = self.metrics.set_enhanced(name, enable, change, shards);
        Ok(Reply::Body(
            Out::map()
                .str("StreamName", name)
                .str("StreamARN", self.arn(name))
                .set("CurrentShardLevelMetrics", names_out(current))
                .set("DesiredShardLevelMetrics", names_out(desired))
                .done(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use sluice_aws::Format;

    use super::*;
    use crate::ops::json_tree;

    fn parse(body: &str) -> Result<EnhancedMonitoringRequest, ApiError> {
        EnhancedMonitoringRequest::parse(
            Input::root(&json_tree(body), Format::Json)?,
            "123456789012",
        )
    }

    #[test]
    fn shard_level_metrics_become_a_set() {
        let r =
            parse(r#"{"StreamName":"s1","ShardLevelMetrics":["IncomingBytes","OutgoingRecords"]}"#)
                .unwrap();
        assert_eq!(r.stream.as_str(), "s1");
        assert_eq!(
            r.shard_level_metrics,
            ShardLevelSet::parse("IncomingBytes")
                .unwrap()
                .union(ShardLevelSet::parse("OutgoingRecords").unwrap())
        );
        let r = parse(r#"{"StreamName":"s1","ShardLevelMetrics":["ALL"]}"#).unwrap();
        assert_eq!(r.shard_level_metrics, ShardLevelSet::ALL);
    }

    #[test]
    fn the_metrics_are_checked_before_the_stream() {
        let e = parse(r#"{"StreamName":"a b","ShardLevelMetrics":["Nope"]}"#).unwrap_err();
        let m = e.message.unwrap();
        assert!(
            m.starts_with("2 validation errors detected: Value '[Nope]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, "),
            "{m}"
        );
        assert!(m.ends_with("Value 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"), "{m}");
    }
}
