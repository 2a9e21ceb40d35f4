//! Registered consumers: RegisterStreamConsumer, DeregisterStreamConsumer,
//! ListStreamConsumers and DescribeStreamConsumer.

use sluice_streams::ConsumerView;

use crate::error::ApiError;
use crate::iterator::PageToken;
use crate::limits::*;
use crate::ops::{Reply, Service};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

const CONSUMER_ARN_PATTERN: &str =
    "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+";

impl Service {
    pub(crate) fn consumer_arn(&self, c: &ConsumerView) -> String {
        format!(
            "{}/consumer/{}:{}",
            self.arn(&c.stream),
            c.meta.name,
            c.meta.created_ms / 1000
        )
    }

    fn consumer_out(&self, c: &ConsumerView, with_stream: bool) -> Out {
        let mut m = Out::map()
            .str("ConsumerName", c.meta.name.clone())
            .str("ConsumerARN", self.consumer_arn(c))
            .str("ConsumerStatus", c.meta.status.as_aws())
            .set(
                "ConsumerCreationTimestamp",
                Out::Timestamp(c.meta.created_ms),
            );
        if with_stream {
            m = m.str("StreamARN", self.arn(&c.stream));
        }
        m.done()
    }

    fn stream_arn_member(&self, v: &mut Validator, arn: Option<&str>, required: bool) {
        if required {
            v.required(arn, "streamARN");
        }
        v.pattern(
            arn,
            "streamARN",
            "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            validate::is_stream_arn,
        );
        v.str_len(arn, "streamARN", 1, STREAM_ARN_CHARS_MAX);
    }

    pub(crate) fn consumer_arn_member(&self, v: &mut Validator, arn: Option<&str>) {
        v.pattern(arn, "consumerARN", CONSUMER_ARN_PATTERN, |s| {
            validate::parse_consumer_arn(s).is_some()
        });
        v.str_len(arn, "consumerARN", 1, STREAM_ARN_CHARS_MAX);
    }

    /// The (stream, consumer, created ms) a consumer ARN names, if of this account.
    pub(crate) fn consumer_from_arn(&self, arn: &str) -> Result<(String, String, i64), ApiError> {
        let c = validate::parse_consumer_arn(arn)
            .ok_or_else(|| ApiError::invalid_argument(format!("Invalid ConsumerARN: {arn}")))?;
        if c.account != self.streams.config().account_id {
            return Err(ApiError::not_found(format!(
                "Consumer {} under account {} not found.",
                arn, c.account
            )));
        }
        Ok((
            c.stream.to_string(),
            c.consumer.to_string(),
            c.created_secs.saturating_mul(1000),
        ))
    }

    pub(crate) fn register_stream_consumer(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let name = input.str("ConsumerName")?;
        let tags = input.string_map("Tags")?;
        self.stream_arn_member(&mut v, arn, true);
        v.required(name, "consumerName");
        v.name(name, "consumerName", CONSUMER_NAME_CHARS_MAX);
        if let Some(t) = &tags {
            crate::ops::check_tags(&mut v, t, "tags");
        }
        v.finish()?;
        let stream = self.stream_from_arn(arn.unwrap())?;
        if let Some(t) = &tags {
            // The stream first, then the tags' characters, as AddTagsToStream does.
            self.streams
                .describe(&stream)
                .map_err(|e| self.ctx().map(e))?;
            validate::check_tag_characters(t.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
        }
        let c = self
            .streams
            .register_consumer(&stream, name.unwrap())
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .set("Consumer", self.consumer_out(&c, false))
                .done(),
        ))
    }

    /// The consumer a request names: by ConsumerARN, or by StreamARN and ConsumerName.
    fn named_consumer(&self, input: Input<'_>) -> Result<(String, String, Option<i64>), ApiError> {
        let mut v = Validator::new();
        let stream_arn = input.str("StreamARN")?;
        let name = input.str("ConsumerName")?;
        let consumer_arn = input.str("ConsumerARN")?;
        self.stream_arn_member(&mut v, stream_arn, false);
        v.name(name, "consumerName", CONSUMER_NAME_CHARS_MAX);
        self.consumer_arn_member(&mut v, consumer_arn);
        v.finish()?;
        match (consumer_arn, stream_arn, name) {
            (Some(arn), stream_arn, name) => {
                let (stream, consumer, created) = self.consumer_from_arn(arn)?;
                // All three may be given, as long as they name the same consumer.
                if name.is_some_and(|n| n != consumer) {
                    return Err(ApiError::invalid_argument(format!(
                        "ConsumerARN {arn} and ConsumerName {} do not refer to the same consumer.",
                        name.unwrap()
                    )));
                }
                if let Some(s) = stream_arn {
                    if self.stream_from_arn(s)? != stream {
                        return Err(ApiError::invalid_argument(format!(
                            "ConsumerARN {arn} does not belong to the stream {s}."
                        )));
                    }
                }
                Ok((stream, consumer, Some(created)))
            }
            (None, Some(arn), Some(name)) => {
                Ok((self.stream_from_arn(arn)?, name.to_string(), None))
            }
            _ => Err(ApiError::invalid_argument(
                "Either ConsumerARN or both ConsumerName and StreamARN must be provided.",
            )),
        }
    }

    pub(crate) fn deregister_stream_consumer(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let (stream, consumer, created) = self.named_consumer(input)?;
        self.streams
            .deregister_consumer(&stream, &consumer, created)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn describe_stream_consumer(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let (stream, consumer, created) = self.named_consumer(input)?;
        let c = self
            .streams
            .consumer(&stream, &consumer, created)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .set("ConsumerDescription", self.consumer_out(&c, true))
                .done(),
        ))
    }

    pub(crate) fn list_stream_consumers(&self, input: Input<'_>) -> Result<Reply, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let token = input.str("NextToken")?;
        let max = input.int("MaxResults")?;
        let created = input.timestamp_ms("StreamCreationTimestamp")?;
        self.stream_arn_member(&mut v, arn, true);
        v.str_len(token, "nextToken", 1, 1_048_576);
        v.range(
            max,
            "maxResults",
            Some(1),
            Some(LIST_CONSUMERS_MAX_RESULTS_MAX),
        );
        v.finish()?;
        let stream = self.stream_from_arn(arn.unwrap())?;
        if token.is_some() && created.is_some() {
            return Err(ApiError::invalid_argument(
                "NextToken and StreamCreationTimestamp cannot be provided together.",
            ));
        }
        let after = match token {
            Some(t) => {
                let t = self.page_token(t, "ListStreamConsumers")?;
                let (s, after) = t.after.split_once('\n').unwrap_or_default();
                if s != stream {
                    return Err(ApiError::invalid_argument(format!(
                        "Invalid NextToken: {}",
                        token.unwrap()
                    )));
                }
                Some(after.to_string())
            }
            None => None,
        };
        let view = self
            .streams
            .describe(&stream)
            .map_err(|e| self.ctx().map(e))?;
        if let Some(c) = created {
            if c / 1000 != view.meta.created_ms / 1000 {
                return Err(self.ctx().stream_not_found(&stream));
            }
        }
        let consumers: Vec<ConsumerView> = self
            .streams
            .consumers(&stream)
            .map_err(|e| self.ctx().map(e))?
            .into_iter()
            .skip_while(|c| after.as_ref().is_some_and(|a| c.meta.name != *a))
            .skip(usize::from(after.is_some()))
            .collect();
        let page = max.unwrap_or(LIST_CONSUMERS_MAX_RESULTS_MAX) as usize;
        let has_more = consumers.len() > page;
        let out: Vec<Out> = consumers
            .iter()
            .take(page)
            .map(|c| self.consumer_out(c, false))
            .collect();
        let next = has_more.then(|| {
            Out::Str(
                PageToken {
                    scope: "ListStreamConsumers".into(),
                    after: format!("{stream}\n{}", consumers[page - 1].meta.name),
                    issued_ms: self.streams.now_ms(),
                }
                .encode(&self.tokens),
            )
        });
        Ok(Reply::Body(
            Out::map()
                .set("Consumers", Out::Array(out))
                .opt("NextToken", next)
                .done(),
        ))
    }
}
