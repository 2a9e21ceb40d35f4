//! Registered consumers (enhanced fan-out): registration, deregistration, and the CREATING →
//! ACTIVE and DELETING → gone steps, stored with the stream in the catalog.

use std::sync::PoisonError;

use crate::error::StreamsError;
use crate::meta::{ConsumerMeta, ConsumerStatus, StreamMeta, StreamStatus};
use crate::streams::Streams;

/// Consumers one stream may have registered at once, as on AWS.
pub const CONSUMERS_MAX: usize = 20;
/// Consumers of one stream that may be CREATING at once, as on AWS.
pub const CONSUMERS_CREATING_MAX: usize = 5;

/// A consumer as clients see it, with what its ARN is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerView {
    pub stream: String,
    pub meta: ConsumerMeta,
}

impl Streams {
    /// Moves consumers whose delay has passed to their next state; says whether any moved.
    pub(crate) fn settle_consumers(&self, meta: &mut StreamMeta, now: i64) -> bool {
        let delay = self.config.consumer_delay_ms;
        let before = meta.consumers.len();
        meta.consumers
            .retain(|c| !(c.status == ConsumerStatus::Deleting && now >= c.status_ms + delay));
        let mut changed = meta.consumers.len() != before;
        for c in &mut meta.consumers {
            if c.status == ConsumerStatus::Creating && now >= c.status_ms + delay {
                c.status = ConsumerStatus::Active;
                c.status_ms = now;
                changed = true;
            }
        }
        changed
    }

    /// Registers `consumer` with the stream; it is CREATING, then ACTIVE.
    pub fn register_consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerView, StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let s = self.get(stream)?;
        let now = self.now_ms();
        let mut meta = s.meta.write().unwrap_or_else(PoisonError::into_inner);
        let status = self.effective_status(&meta, now);
        if !matches!(status, StreamStatus::Active | StreamStatus::Updating) {
            return Err(StreamsError::StreamNotActive {
                name: stream.to_string(),
                status,
            });
        }
        let mut next = meta.clone();
        self.settle_consumers(&mut next, now);
        if next.consumers.iter().any(|c| c.name == consumer) {
            return Err(StreamsError::ConsumerExists {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
            });
        }
        if next.consumers.len() >= CONSUMERS_MAX {
            return Err(StreamsError::ConsumerLimitExceeded {
                stream: stream.to_string(),
                limit: CONSUMERS_MAX as u32,
            });
        }
        let creating = next
            .consumers
            .iter()
            .filter(|c| c.status == ConsumerStatus::Creating)
            .count();
        if creating >= CONSUMERS_CREATING_MAX {
            return Err(StreamsError::ConsumersCreatingLimitExceeded {
                stream: stream.to_string(),
                limit: CONSUMERS_CREATING_MAX as u32,
            });
        }
        let c = ConsumerMeta {
            name: consumer.to_string(),
            created_ms: now,
            // CREATING, as AWS answers; ACTIVE once `consumer_delay_ms` has passed.
            status: ConsumerStatus::Creating,
            status_ms: now,
        };
        next.consumers.push(c.clone());
        self.catalog.put(&next)?;
        *meta = next;
        tracing::info!(stream, consumer, "consumer registered");
        Ok(ConsumerView {
            stream: stream.to_string(),
            meta: c,
        })
    }

    /// Starts deregistering a consumer: DELETING, then gone. `created_ms`, when given (from a
    /// consumer ARN), must match the registration's.
    pub fn deregister_consumer(
        &self,
        stream: &str,
        consumer: &str,
        created_ms: Option<i64>,
    ) -> Result<(), StreamsError> {
        let _guard = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let s = self.get(stream)?;
        let now = self.now_ms();
        let mut meta = s.meta.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = meta.clone();
        self.settle_consumers(&mut next, now);
        let c = next
            .consumers
            .iter_mut()
            .find(|c| {
                c.name == consumer && created_ms.is_none_or(|t| t / 1000 == c.created_ms / 1000)
            })
            .ok_or_else(|| StreamsError::ConsumerNotFound {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
            })?;
        if c.status != ConsumerStatus::Deleting {
            c.status = ConsumerStatus::Deleting;
            c.status_ms = now;
        }
        self.settle_consumers(&mut next, now);
        self.catalog.put(&next)?;
        *meta = next;
        tracing::info!(stream, consumer, "consumer deregistered");
        Ok(())
    }

    /// The stream's consumers, in registration order.
    pub fn consumers(&self, stream: &str) -> Result<Vec<ConsumerView>, StreamsError> {
        let view = self.describe(stream)?;
        Ok(view
            .meta
            .consumers
            .into_iter()
            .map(|meta| ConsumerView {
                stream: stream.to_string(),
                meta,
            })
            .collect())
    }

    /// One consumer; `created_ms` (from an ARN) must match when given.
    pub fn consumer(
        &self,
        stream: &str,
        consumer: &str,
        created_ms: Option<i64>,
    ) -> Result<ConsumerView, StreamsError> {
        self.consumers(stream)?
            .into_iter()
            .find(|c| {
                c.meta.name == consumer
                    && created_ms.is_none_or(|t| t / 1000 == c.meta.created_ms / 1000)
            })
            .ok_or_else(|| StreamsError::ConsumerNotFound {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
            })
    }
}
