//! EnableEnhancedMonitoring and DisableEnhancedMonitoring: which shard-level metrics a stream
//! has (its `EnhancedMonitoring` in DescribeStream), kept by [`crate::metrics::Metrics`].

use sluice_aws::value::{Input, Out};
use sluice_streams::{StreamStatus, StreamsError};

use crate::error::ApiError;
use crate::metrics::{ShardLevelSet, SHARD_LEVEL_METRICS};
use crate::ops::{Reply, Service};
use crate::validate::Validator;

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
        input: Input<'_>,
        enable: bool,
    ) -> Result<Reply, ApiError> {
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
        let name = self.require_stream(input, &mut v)?;
        v.finish()?;
        let change = names
            .iter()
            .filter_map(|n| ShardLevelSet::parse(n))
            .fold(ShardLevelSet::NONE, ShardLevelSet::union);
        let view = self
            .streams
            .describe(&name)
            .map_err(|e| self.ctx().map(e))?;
        if view.meta.status != StreamStatus::Active {
            return Err(self.ctx().map(StreamsError::StreamNotActive {
                name,
                status: view.meta.status,
            }));
        }
        let shards = view
            .shards
            .iter()
            .filter(|s| s.meta.is_open())
            .map(|s| s.meta.index);
        let (current, desired) = self.metrics.set_enhanced(&name, enable, change, shards);
        Ok(Reply::Body(
            Out::map()
                .str("StreamName", name.clone())
                .str("StreamARN", self.arn(&name))
                .set("CurrentShardLevelMetrics", names_out(current))
                .set("DesiredShardLevelMetrics", names_out(desired))
                .done(),
        ))
    }
}
