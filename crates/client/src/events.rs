//! SubscribeToShard for the client: the request over HTTP/2 (h2c prior knowledge, as the Java
//! and JS SDKs send it), and a decoder of the AWS event stream that comes back. The frames are
//! checked (lengths, both CRCs) by `aws-smithy-eventstream`, AWS's own implementation.

use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::ClientError;

/// One event of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    /// The `initial-response` event that opens every subscription.
    Initial,
    /// A `SubscribeToShardEvent`: `Records`, `ContinuationSequenceNumber`,
    /// `MillisBehindLatest`, and `ChildShards` at the end of a closed shard.
    Shard(serde_json::Value),
}

/// A running subscription: read events with [`Subscription::next_event`].
pub struct Subscription {
    body: hyper::body::Incoming,
    buf: BytesMut,
    done: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

impl Subscription {
    pub(crate) fn new(body: hyper::body::Incoming) -> Subscription {
        Subscription {
            body,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next event; `Ok(None)` once the server ends the subscription (after 5 minutes, or
    /// at the end of a closed shard). An exception event is returned as
    /// [`ClientError::Api`] with the exception's type.
    pub async fn next_event(&mut self) -> Result<Option<SubscriptionEvent>, ClientError> {
        loop {
            if let Some(m) = self.take_message()? {
                return decode_event(&m).map(Some);
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ClientError::Decode(format!(
                    "event stream ended inside a message ({} bytes left)",
                    self.buf.len()
                )));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                None => self.done = true,
            }
        }
    }

    fn take_message(&mut self) -> Result<Option<Message>, ClientError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let total = (&self.buf[..4]).get_u32() as usize;
        if total < 16 {
            return Err(ClientError::Decode(format!(
                "event-stream message of {total} bytes"
            )));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame: Bytes = self.buf.split_to(total).freeze();
        aws_smithy_eventstream::frame::read_message_from(frame)
            .map(Some)
            .map_err(|e| ClientError::Decode(e.to_string()))
    }
}

fn decode_event(m: &Message) -> Result<SubscriptionEvent, ClientError> {
    match header(m, ":message-type") {
        Some("event") => match header(m, ":event-type") {
            Some("initial-response") => Ok(SubscriptionEvent::Initial),
            Some("SubscribeToShardEvent") => serde_json::from_slice(m.payload())
                .map(SubscriptionEvent::Shard)
                .map_err(|e| ClientError::Decode(e.to_string())),
            other => Err(ClientError::Decode(format!("unknown event type {other:?}"))),
        },
        Some("exception") => {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload()).unwrap_or(serde_json::Value::Null);
            Err(ClientError::Api {
                status: 200,
                type_name: header(m, ":exception-type")
                    .unwrap_or("Unknown")
                    .to_string(),
                message: v["message"]
                    .as_str()
                    .or(v["Message"].as_str())
                    .unwrap_or("")
                    .to_string(),
            })
        }
        other => Err(ClientError::Decode(format!(
            "unknown message type {other:?}"
        ))),
    }
}

impl crate::Client {
    /// Subscribes `consumer_arn` to `shard_id` from `starting_position` (the
    /// `StartingPosition` structure, e.g. `{"Type": "LATEST"}`), over HTTP/2.
    pub async fn subscribe_to_shard(
        &self,
        consumer_arn: &str,
        shard_id: &str,
        starting_position: serde_json::Value,
    ) -> Result<Subscription, ClientError> {
        let body = serde_json::json!({
            "ConsumerARN": consumer_arn,
            "ShardId": shard_id,
            "StartingPosition": starting_position,
        });
        let res = self
            .send(true, "SubscribeToShard", body.to_string().into_bytes())
            .await?;
        if res.status().is_success() {
            return Ok(Subscription::new(res.into_body()));
        }
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        Err(crate::api_error(status, &bytes))
    }
}
