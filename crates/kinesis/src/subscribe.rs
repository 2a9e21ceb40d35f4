//! SubscribeToShard: enhanced fan-out. The response is an AWS event stream
//! (`application/vnd.amazon.eventstream`): an `initial-response` event at once, then
//! `SubscribeToShardEvent`s, each pushed as soon as new records are durable (or every
//! [`SUBSCRIPTION_HEARTBEAT_MS`] with none), for [`SUBSCRIPTION_MS`]; then the stream ends and
//! the client subscribes again from the last `ContinuationSequenceNumber`.
//!
//! Each subscription reads the shard at its own pace through a small bounded channel: a slow
//! client fills its own channel and waits, and nobody else notices (HTTP/2 flow control, or
//! TCP on HTTP/1.1, pushes back on the producer task).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use sluice_streams::{
    ConsumeError, ConsumerStatus, OnTrimmed, ReaderOptions, ShardCursor, ShardId, ShardReader,
    Streams, StreamsError,
};
use tokio::sync::{mpsc, watch};

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::{
    child_shards_out, consumer_arn_member, consumer_from_arn, parse_shard_id, present, record_out,
    Deferred, Reply, Service, ShardIteratorType, StartingPosition, StreamTarget,
};
use crate::validate::{self, Validator};
use sluice_aws::codec;
use sluice_aws::value::{Format, Input, Out};

/// A second subscription for the same consumer and shard within this long of the first is
/// refused; after it, the new one takes over (AWS's rule).
const TAKEOVER_AFTER: Duration = Duration::from_secs(5);
/// Messages buffered per subscription before the producer waits for the client.
const CHANNEL_DEPTH: usize = 4;
/// Most records, and bytes past the first record, in one event.
const EVENT_RECORDS_MAX: usize = 10_000;
const EVENT_BYTES_MAX: usize = 2 << 20;

/// The response body of a subscription: encoded event-stream messages as the producer task
/// makes them. Dropping it (the client went away) stops the task at its next send.
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl std::fmt::Debug for EventBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventBody")
    }
}

impl http_body::Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|m| m.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Which consumer reads which shard.
type SubscriptionKey = (String, String, u32);

struct Active {
    started: Instant,
    /// Set to true to end the subscription with ResourceInUseException (taken over). Closed
    /// (no receiver) once the subscription has ended.
    cancel: watch::Sender<bool>,
}

/// The subscriptions of one server: running ones, and ended ones for the 5 seconds in which
/// they still block a new call for the same consumer and shard.
#[derive(Default)]
pub struct Subscriptions {
    active: Mutex<HashMap<SubscriptionKey, Active>>,
}

impl Subscriptions {
    /// Registers a subscription, or says why not: `Err(())` if a call for the same key
    /// succeeded less than [`TAKEOVER_AFTER`] ago (ended or not). An older running one is
    /// told to end.
    fn start(&self, key: SubscriptionKey) -> Result<watch::Receiver<bool>, ()> {
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        active.retain(|_, a| !(a.cancel.is_closed() && a.started.elapsed() >= TAKEOVER_AFTER));
        if let Some(a) = active.get(&key) {
            if a.started.elapsed() < TAKEOVER_AFTER {
                return Err(());
            }
            a.cancel.send_replace(true);
        }
        let (cancel, rx) = watch::channel(false);
        active.insert(
            key,
            Active {
                started: Instant::now(),
                cancel,
            },
        );
        Ok(rx)
    }

    /// Subscriptions running now.
    pub fn len(&self) -> usize {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|a| !a.cancel.is_closed())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn encode_message(
    headers: &[(&'static str, &str)],
    payload: Vec<u8>,
) -> Result<Bytes, aws_smithy_eventstream::error::Error> {
    let headers = headers
        .iter()
        .map(|(k, v)| Header::new(*k, HeaderValue::String(v.to_string().into())))
        .collect();
    let m = Message::new_from_parts(headers, payload);
    let mut buf = Vec::with_capacity(m.payload().len() + 128);
    aws_smithy_eventstream::frame::write_message_to(&m, &mut buf)?;
    Ok(Bytes::from(buf))
}

/// One event-stream message. Events are far inside the format's limits (a few headers, at
/// most [`EVENT_BYTES_MAX`] of records); should one ever not encode, the client gets an
/// InternalFailure exception in its place.
fn message(headers: &[(&'static str, &str)], payload: Vec<u8>) -> Bytes {
    encode_message(headers, payload).unwrap_or_else(|e| {
        tracing::error!(error = %e, "an event-stream message did not encode");
        encode_message(
            &[
                (":message-type", "exception"),
                (":exception-type", "InternalFailure"),
            ],
            b"{}".to_vec(),
        )
        .unwrap_or_default()
    })
}

fn event(event_type: &str, out: &Out, format: Format) -> Bytes {
    message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", codec::content_type(format)),
        ],
        codec::encode(out, format),
    )
}

fn exception(e: &ApiError, format: Format) -> Bytes {
    let body = Out::map()
        .str("message", e.message.clone().unwrap_or_default())
        .done();
    message(
        &[
            (":message-type", "exception"),
            (":exception-type", e.type_name()),
            (":content-type", codec::content_type(format)),
        ],
        codec::encode(&body, format),
    )
}

/// SubscribeToShard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeToShardRequest {
    /// The consumer's stream, from its `ConsumerARN`.
    pub stream: StreamTarget,
    pub consumer_name: String,
    /// The consumer's creation (epoch milliseconds, whole seconds), from its `ConsumerARN`.
    pub consumer_created_ms: i64,
    /// Read once the consumer is found ACTIVE, as on AWS.
    pub shard_id: Deferred<ShardId>,
    pub starting_position: StartingPosition,
}

impl SubscribeToShardRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<SubscribeToShardRequest, ApiError> {
        let mut v = Validator::new();
        let consumer_arn = input.str("ConsumerARN")?;
        let shard = input.str("ShardId")?;
        let position = input.structure("StartingPosition")?;
        let (kind, seq, ts) = match position {
            Some(p) => (
                p.str("Type")?,
                p.str("SequenceNumber")?,
                p.timestamp_ms("Timestamp")?,
            ),
            None => (None, None, None),
        };
        v.required(consumer_arn, "consumerARN");
        consumer_arn_member(&mut v, consumer_arn);
        v.required(shard, "shardId");
        v.name(shard, "shardId", SHARD_ID_CHARS_MAX);
        v.required(position, "startingPosition");
        if position.is_some() {
            v.required(kind, "startingPosition.type");
            v.one_of(
                kind,
                "startingPosition.type",
                &[
                    "AT_SEQUENCE_NUMBER",
                    "AFTER_SEQUENCE_NUMBER",
                    "TRIM_HORIZON",
                    "LATEST",
                    "AT_TIMESTAMP",
                ],
            );
            v.pattern(
                seq,
                "startingPosition.sequenceNumber",
                "0|([1-9]\\d{0,128})",
                validate::is_sequence_number,
            );
        }
        v.finish()?;
        let (stream, consumer_name, consumer_created_ms) =
            consumer_from_arn(present(consumer_arn)?, account)?;
        let shard_id = parse_shard_id(present(shard)?, stream.as_str(), account);
        Ok(SubscribeToShardRequest {
            stream,
            consumer_name,
            consumer_created_ms,
            shard_id,
            starting_position: StartingPosition {
                kind: present(kind.and_then(ShardIteratorType::parse))?,
                sequence_number: seq.map(str::to_string),
                timestamp_ms: ts,
            },
        })
    }
}

impl Service {
    pub(crate) fn subscribe_to_shard(
        &self,
        request: SubscribeToShardRequest,
        format: Format,
    ) -> Result<Reply, ApiError> {
        let stream = request.stream.as_str().to_string();
        let consumer = request.consumer_name;
        let created_ms = request.consumer_created_ms;
        let account = self.streams.config().account_id.clone();
        let c = self
            .streams
            .consumer(&stream, &consumer, Some(created_ms))
            .map_err(|e| self.ctx().map(e))?;
        if c.meta.status != ConsumerStatus::Active {
            return Err(ApiError::in_use(format!(
                "Consumer {consumer} with creation timestamp {} under stream: {stream} , account {account} is not in ACTIVE status.",
                c.meta.created_ms / 1000
            )));
        }
        let shard_id = request.shard_id?;
        let cursor = self.shard_cursor(&stream, shard_id, &request.starting_position)?;
        let key = (stream.clone(), consumer.clone(), shard_id.0);
        let cancel = self.subscriptions.start(key.clone());
        self.metrics.subscribed(&stream, cancel.is_ok());
        let cancel = cancel.map_err(|()| {
            ApiError::in_use(format!(
                "Another active subscription exists for this consumer: {account}:{stream}:{shard_id}:{consumer}"
            ))
        })?;
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let task = Subscription {
            streams: self.streams.clone(),
            key,
            created_ms,
            account,
            format,
            tx,
            cancel,
            metrics: self.metrics.clone(),
        };
        tokio::spawn(task.run(cursor));
        Ok(Reply::Events(axum::body::Body::new(EventBody { rx })))
    }
}

/// The producer side of one subscription.
struct Subscription {
    streams: Arc<Streams>,
    key: SubscriptionKey,
    created_ms: i64,
    account: String,
    format: Format,
    tx: mpsc::Sender<Bytes>,
    cancel: watch::Receiver<bool>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Subscription {
    async fn run(mut self, cursor: ShardCursor) {
        let (stream, consumer, shard) = self.key.clone();
        tracing::debug!(%stream, %consumer, shard = %ShardId(shard), "subscription started");
        let ended = self.pump(cursor).await;
        if let Some(e) = ended {
            let _ = self.tx.send(exception(&e, self.format)).await;
        }
        tracing::debug!(%stream, %consumer, shard = %ShardId(shard), "subscription ended");
    }

    fn not_found(&self) -> ApiError {
        let (stream, _, shard) = &self.key;
        ApiError::not_found(format!(
            "Shard {} in stream {stream} under account {} does not exist",
            ShardId(*shard),
            self.account
        ))
    }

    /// Sends events until the subscription's time is up, the shard ends, the client goes away
    /// or something ends it with an error (returned, to be sent as an exception event). The
    /// shard is followed by the consumer core's [`ShardReader`]: woken by durable commits, one
    /// bounded batch at a time, read only when the client has taken the previous event.
    async fn pump(&mut self, cursor: ShardCursor) -> Option<ApiError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(SUBSCRIPTION_MS);
        let heartbeat = Duration::from_millis(SUBSCRIPTION_HEARTBEAT_MS);
        let initial = Out::map().done();
        if self
            .tx
            .send(event("initial-response", &initial, self.format))
            .await
            .is_err()
        {
            return None;
        }
        let options = ReaderOptions {
            batch_records_max: EVENT_RECORDS_MAX,
            batch_bytes_max: EVENT_BYTES_MAX,
            on_trimmed: OnTrimmed::Skip,
        };
        let mut reader = match ShardReader::from_cursor(self.streams.clone(), cursor, options) {
            Ok(r) => r,
            Err(e) => return Some(self.consume_error(e)),
        };
        // The first event goes out at once, with records or without.
        let mut next = reader.read_now().await;
        let mut last_check = tokio::time::Instant::now();
        loop {
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => return Some(self.consume_error(e)),
            };
            let size = crate::metrics::ReadSize::of_records(
                &batch.records,
                batch.millis_behind_latest,
                self.streams.now_ms(),
            );
            let at_end = batch.end.is_some();
            let records = batch
                .records
                .into_iter()
                .map(|(seq, r)| record_out(seq, r))
                .collect();
            // At the shard's end: no continuation, and the children (KCL's end signal).
            let continuation = (!at_end).then(|| crate::ops::sequence_out(batch.continuation));
            let children = batch.end.map(|end| child_shards_out(&end.child_shards));
            let out = Out::map()
                .set("Records", Out::Array(records))
                .opt("ContinuationSequenceNumber", continuation)
                .int("MillisBehindLatest", batch.millis_behind_latest)
                .opt("ChildShards", children)
                .done();
            if self
                .tx
                .send(event("SubscribeToShardEvent", &out, self.format))
                .await
                .is_err()
            {
                return None;
            }
            self.metrics.event_sent(&self.key.0, self.key.2, size);
            if at_end {
                return None;
            }
            let sent = tokio::time::Instant::now();
            next = loop {
                if *self.cancel.borrow() {
                    let (stream, consumer, shard) = &self.key;
                    return Some(ApiError::in_use(format!(
                        "Another active subscription exists for this consumer: {}:{stream}:{}:{consumer}",
                        self.account,
                        ShardId(*shard)
                    )));
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return None;
                }
                if now.duration_since(last_check) >= heartbeat {
                    last_check = now;
                    if let Some(e) = self.consumer_gone() {
                        return Some(e);
                    }
                }
                // Records as soon as they are durable; with none, a heartbeat event.
                let wake = (sent + heartbeat).min(deadline);
                tokio::select! {
                    n = reader.next_batch() => break n,
                    _ = tokio::time::sleep_until(wake) => {
                        if wake < deadline {
                            break reader.read_now().await;
                        }
                    }
                    _ = self.cancel.changed() => {}
                    _ = self.tx.closed() => return None,
                }
            };
        }
    }

    /// The consumer was deregistered (or replaced) since the subscription started.
    fn consumer_gone(&self) -> Option<ApiError> {
        let (stream, consumer, _) = &self.key;
        match self
            .streams
            .consumer(stream, consumer, Some(self.created_ms))
        {
            Ok(c) if c.meta.status == ConsumerStatus::Active => None,
            _ => Some(self.streams_error(StreamsError::ConsumerNotFound {
                stream: stream.clone(),
                consumer: consumer.clone(),
            })),
        }
    }

    fn consume_error(&self, e: ConsumeError) -> ApiError {
        match e {
            ConsumeError::StreamDeleted { .. }
            | ConsumeError::ShardExpired { .. }
            | ConsumeError::Streams(
                StreamsError::StreamNotFound { .. }
                | StreamsError::StreamNotActive { .. }
                | StreamsError::ShardNotFound { .. },
            ) => self.not_found(),
            ConsumeError::Streams(e) => self.streams_error(e),
            ConsumeError::Trimmed { .. }
            | ConsumeError::ConsumerBusy { .. }
            | ConsumeError::StateTooLarge { .. }
            | ConsumeError::CommitTooLarge { .. }
            | ConsumeError::Task(_) => {
                tracing::error!(error = %e, "subscription reader failed");
                ApiError::internal()
            }
        }
    }

    fn streams_error(&self, e: StreamsError) -> ApiError {
        crate::error::Ctx {
            account: &self.account,
            region: self.streams.config().region.as_str(),
        }
        .map(e)
    }
}

#[cfg(test)]
mod tests {
    use sluice_aws::ErrorType;

    use super::*;
    use crate::ops::json_tree;

    const CONSUMER_ARN: &str =
        "arn:aws:kinesis:us-east-1:123456789012:stream/s1/consumer/app:1700000000";

    fn parse(body: &str) -> Result<SubscribeToShardRequest, ApiError> {
        SubscribeToShardRequest::parse(Input::root(&json_tree(body), Format::Json)?, "123456789012")
    }

    #[test]
    fn the_consumer_is_read_first_and_the_shard_after_its_look_up() {
        let r = parse(&format!(
            r#"{{"ConsumerARN":"{CONSUMER_ARN}","ShardId":"shardId-000000000001","StartingPosition":{{"Type":"LATEST"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            (
                r.stream.as_str(),
                r.consumer_name.as_str(),
                r.consumer_created_ms
            ),
            ("s1", "app", 1_700_000_000_000)
        );
        assert_eq!(r.shard_id, Ok(ShardId(1)));
        assert_eq!(r.starting_position.kind, ShardIteratorType::Latest);
        // A shard id that names no shard is reported once the consumer is found.
        let r = parse(&format!(
            r#"{{"ConsumerARN":"{CONSUMER_ARN}","ShardId":"x-y","StartingPosition":{{"Type":"LATEST"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            r.shard_id.unwrap_err().error_type,
            ErrorType::ResourceNotFound
        );
        let e = parse(r#"{"ShardId":"a b","StartingPosition":{}}"#).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("3 validation errors detected: Value null at 'consumerARN' failed to satisfy constraint: Member must not be null; Value 'a b' at 'shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value null at 'startingPosition.type' failed to satisfy constraint: Member must not be null")
        );
    }
}
