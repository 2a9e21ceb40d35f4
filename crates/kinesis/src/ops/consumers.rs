//! Registered consumers: RegisterStreamConsumer, DeregisterStreamConsumer,
//! ListStreamConsumers and DescribeStreamConsumer.

use std::collections::BTreeMap;

use sluice_streams::ConsumerView;

use crate::error::ApiError;
use crate::limits::*;
use crate::ops::shards::stream_from_arn;
use crate::ops::{present, stream_arn_member, Deferred, Reply, Service, StreamTarget};
use crate::validate::{self, Validator};
use sluice_aws::value::{Input, Out};

const CONSUMER_ARN_PATTERN: &str =
    "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+";

pub(crate) fn consumer_arn_member(v: &mut Validator, arn: Option<&str>) {
    v.pattern(arn, "consumerARN", CONSUMER_ARN_PATTERN, |s| {
        validate::parse_consumer_arn(s).is_some()
    });
    v.str_len(arn, "consumerARN", 1, STREAM_ARN_CHARS_MAX);
}

/// The (stream, consumer, created ms) a consumer ARN names, if of this account.
pub(crate) fn consumer_from_arn(
    arn: &str,
    account: &str,
) -> Result<(StreamTarget, String, i64), ApiError> {
    let c = validate::parse_consumer_arn(arn)
        .ok_or_else(|| ApiError::invalid_argument(format!("Invalid ConsumerARN: {arn}")))?;
    if c.account != account {
        return Err(ApiError::not_found(format!(
            "Consumer {} under account {} not found.",
            arn, c.account
        )));
    }
    Ok((
        StreamTarget(c.stream.to_string()),
        c.consumer.to_string(),
        c.created_secs.saturating_mul(1000),
    ))
}

/// The consumer a request names: by `ConsumerARN`, or by `StreamARN` and `ConsumerName`. It
/// need not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerTarget {
    pub stream: StreamTarget,
    pub consumer_name: String,
    /// The creation time a ConsumerARN carries (epoch milliseconds, whole seconds): a consumer
    /// of that name registered at another time is not the one named.
    pub created_ms: Option<i64>,
}

impl ConsumerTarget {
    /// The members of DeregisterStreamConsumer and DescribeStreamConsumer.
    fn parse(input: Input<'_>, account: &str) -> Result<ConsumerTarget, ApiError> {
        let mut v = Validator::new();
        let stream_arn = input.str("StreamARN")?;
        let name = input.str("ConsumerName")?;
        let consumer_arn = input.str("ConsumerARN")?;
        stream_arn_member(&mut v, stream_arn, false);
        v.name(name, "consumerName", CONSUMER_NAME_CHARS_MAX);
        consumer_arn_member(&mut v, consumer_arn);
        v.finish()?;
        match (consumer_arn, stream_arn, name) {
            (Some(arn), stream_arn, name) => {
                let (stream, consumer_name, created_ms) = consumer_from_arn(arn, account)?;
                let c = ConsumerTarget {
                    stream,
                    consumer_name,
                    created_ms: Some(created_ms),
                };
                // All three may be given, as long as they name the same consumer.
                if let Some(name) = name.filter(|n| *n != c.consumer_name) {
                    return Err(ApiError::invalid_argument(format!(
                        "ConsumerARN {arn} and ConsumerName {name} do not refer to the same consumer."
                    )));
                }
                if let Some(s) = stream_arn {
                    if stream_from_arn(s, account)? != c.stream {
                        return Err(ApiError::invalid_argument(format!(
                            "ConsumerARN {arn} does not belong to the stream {s}."
                        )));
                    }
                }
                Ok(c)
            }
            (None, Some(arn), Some(name)) => Ok(ConsumerTarget {
                stream: stream_from_arn(arn, account)?,
                consumer_name: name.to_string(),
                created_ms: None,
            }),
            _ => Err(ApiError::invalid_argument(
                "Either ConsumerARN or both ConsumerName and StreamARN must be provided.",
            )),
        }
    }
}

/// RegisterStreamConsumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterStreamConsumerRequest {
    pub stream: StreamTarget,
    pub consumer_name: String,
    /// Checked, not kept. When given, the stream is looked up first and the tags' characters
    /// are reported after it, as AddTagsToStream does. A key given twice keeps its last value.
    pub tags: Option<Deferred<BTreeMap<String, String>>>,
}

impl RegisterStreamConsumerRequest {
    pub fn parse(
        input: Input<'_>,
        account: &str,
    ) -> Result<RegisterStreamConsumerRequest, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let name = input.str("ConsumerName")?;
        let tags = input.string_map("Tags")?;
        stream_arn_member(&mut v, arn, true);
        v.required(name, "consumerName");
        v.name(name, "consumerName", CONSUMER_NAME_CHARS_MAX);
        if let Some(t) = &tags {
            crate::ops::check_tags(&mut v, t, "tags");
        }
        v.finish()?;
        let stream = stream_from_arn(present(arn)?, account)?;
        let tags = tags.map(|t| {
            validate::check_tag_characters(t.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
                .map(|()| t.into_iter().collect())
        });
        Ok(RegisterStreamConsumerRequest {
            stream,
            consumer_name: present(name)?.to_string(),
            tags,
        })
    }
}

/// DeregisterStreamConsumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeregisterStreamConsumerRequest {
    pub consumer: ConsumerTarget,
}

impl DeregisterStreamConsumerRequest {
    pub fn parse(
        input: Input<'_>,
        account: &str,
    ) -> Result<DeregisterStreamConsumerRequest, ApiError> {
        Ok(DeregisterStreamConsumerRequest {
            consumer: ConsumerTarget::parse(input, account)?,
        })
    }
}

/// DescribeStreamConsumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeStreamConsumerRequest {
    pub consumer: ConsumerTarget,
}

impl DescribeStreamConsumerRequest {
    pub fn parse(
        input: Input<'_>,
        account: &str,
    ) -> Result<DescribeStreamConsumerRequest, ApiError> {
        Ok(DescribeStreamConsumerRequest {
            consumer: ConsumerTarget::parse(input, account)?,
        })
    }
}

/// ListStreamConsumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamConsumersRequest {
    pub stream: StreamTarget,
    /// Sealed: the operation opens it with its key (and its clock, for its age).
    pub next_token: Option<String>,
    /// 1 to [`LIST_CONSUMERS_MAX_RESULTS_MAX`].
    pub max_results: Option<u32>,
    /// Epoch milliseconds; a stream created in another second is not found.
    pub stream_creation_timestamp_ms: Option<i64>,
}

impl ListStreamConsumersRequest {
    pub fn parse(input: Input<'_>, account: &str) -> Result<ListStreamConsumersRequest, ApiError> {
        let mut v = Validator::new();
        let arn = input.str("StreamARN")?;
        let token = input.str("NextToken")?;
        let max = input.int("MaxResults")?;
        let created = input.timestamp_ms("StreamCreationTimestamp")?;
        stream_arn_member(&mut v, arn, true);
        v.str_len(token, "nextToken", 1, 1_048_576);
        v.range(
            max,
            "maxResults",
            Some(1),
            Some(LIST_CONSUMERS_MAX_RESULTS_MAX),
        );
        v.finish()?;
        let stream = stream_from_arn(present(arn)?, account)?;
        if token.is_some() && created.is_some() {
            return Err(ApiError::invalid_argument(
                "NextToken and StreamCreationTimestamp cannot be provided together.",
            ));
        }
        Ok(ListStreamConsumersRequest {
            stream,
            next_token: token.map(str::to_string),
            max_results: max.map(|n| n as u32),
            stream_creation_timestamp_ms: created,
        })
    }
}

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

    pub(crate) fn register_stream_consumer(
        &self,
        request: RegisterStreamConsumerRequest,
    ) -> Result<Reply, ApiError> {
        let stream = request.stream.as_str();
        if let Some(tags) = request.tags {
            // The stream first, then the tags' characters, as AddTagsToStream does.
            self.streams
                .describe(stream)
                .map_err(|e| self.ctx().map(e))?;
            tags?;
        }
        let c = self
            .streams
            .register_consumer(stream, &request.consumer_name)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .set("Consumer", self.consumer_out(&c, false))
                .done(),
        ))
    }

    pub(crate) fn deregister_stream_consumer(
        &self,
        request: DeregisterStreamConsumerRequest,
    ) -> Result<Reply, ApiError> {
        let c = request.consumer;
        self.streams
            .deregister_consumer(c.stream.as_str(), &c.consumer_name, c.created_ms)
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Empty)
    }

    pub(crate) fn describe_stream_consumer(
        &self,
        request: DescribeStreamConsumerRequest,
    ) -> Result<Reply, ApiError> {
        let named = request.consumer;
        let c = self
            .streams
            .consumer(
                named.stream.as_str(),
                &named.consumer_name,
                named.created_ms,
            )
            .map_err(|e| self.ctx().map(e))?;
        Ok(Reply::Body(
            Out::map()
                .set("ConsumerDescription", self.consumer_out(&c, true))
                .done(),
        ))
    }

    pub(crate) fn list_stream_consumers(
        &self,
        request: ListStreamConsumersRequest,
    ) -> Result<Reply, ApiError> {
        let stream = request.stream.as_str();
        let created = request.stream_creation_timestamp_ms;
        let after = match &request.next_token {
            Some(token) => {
                let t = self.page_token(token, "ListStreamConsumers")?;
                let (s, after) = t.after.split_once('\n').unwrap_or_default();
                if s != stream {
                    return Err(ApiError::invalid_argument(format!(
                        "Invalid NextToken: {token}"
                    )));
                }
                Some(after.to_string())
            }
            None => None,
        };
        let view = self
            .streams
            .describe(stream)
            .map_err(|e| self.ctx().map(e))?;
        if let Some(c) = created {
            if c / 1000 != view.meta.created_ms / 1000 {
                return Err(self.ctx().stream_not_found(stream));
            }
        }
        let consumers: Vec<ConsumerView> = self
            .streams
            .consumers(stream)
            .map_err(|e| self.ctx().map(e))?
            .into_iter()
            .skip_while(|c| after.as_ref().is_some_and(|a| c.meta.name != *a))
            .skip(usize::from(after.is_some()))
            .collect();
        let page = request
            .max_results
            .unwrap_or(LIST_CONSUMERS_MAX_RESULTS_MAX as u32) as usize;
        let has_more = consumers.len() > page;
        let out: Vec<Out> = consumers
            .iter()
            .take(page)
            .map(|c| self.consumer_out(c, false))
            .collect();
        let next = has_more.then(|| {
            self.next_token_out(
                "ListStreamConsumers",
                format!("{stream}\n{}", consumers[page - 1].meta.name),
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

#[cfg(test)]
mod tests {
    use sluice_aws::{ErrorType, Format};

    use super::*;
    use crate::ops::json_tree;

    const ACCOUNT: &str = "123456789012";
    const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/s1";
    const CONSUMER_ARN: &str =
        "arn:aws:kinesis:us-east-1:123456789012:stream/s1/consumer/app:1700000000";

    fn describe(body: &str) -> Result<DescribeStreamConsumerRequest, ApiError> {
        DescribeStreamConsumerRequest::parse(Input::root(&json_tree(body), Format::Json)?, ACCOUNT)
    }

    #[test]
    fn a_consumer_is_named_by_its_arn_or_by_stream_and_name() {
        let by_arn = describe(&format!(r#"{{"ConsumerARN":"{CONSUMER_ARN}"}}"#)).unwrap();
        assert_eq!(
            by_arn.consumer,
            ConsumerTarget {
                stream: StreamTarget("s1".into()),
                consumer_name: "app".into(),
                created_ms: Some(1_700_000_000_000),
            }
        );
        let by_name = describe(&format!(
            r#"{{"StreamARN":"{STREAM_ARN}","ConsumerName":"app"}}"#
        ))
        .unwrap();
        assert_eq!(by_name.consumer.stream, StreamTarget("s1".into()));
        assert_eq!(by_name.consumer.created_ms, None);
    }

    #[test]
    fn consumer_checks_keep_aws_order() {
        let message = |body: &str| describe(body).unwrap_err().message.unwrap_or_default();
        // Constraints of all three members first, in member order.
        assert_eq!(
            message(r#"{"StreamARN":"x","ConsumerName":"a b","ConsumerARN":"y"}"#),
            "3 validation errors detected: Value 'x' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+; Value 'a b' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'y' at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
        );
        // Then the ARN's account, before whether the name agrees with it.
        let other = CONSUMER_ARN.replace("123456789012", "210987654321");
        let e = describe(&format!(
            r#"{{"ConsumerARN":"{other}","ConsumerName":"b"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.error_type, ErrorType::ResourceNotFound);
        assert_eq!(
            message(&format!(
                r#"{{"ConsumerARN":"{CONSUMER_ARN}","ConsumerName":"b"}}"#
            )),
            format!(
                "ConsumerARN {CONSUMER_ARN} and ConsumerName b do not refer to the same consumer."
            )
        );
        assert_eq!(
            message(r#"{"ConsumerName":"app"}"#),
            "Either ConsumerARN or both ConsumerName and StreamARN must be provided."
        );
    }

    #[test]
    fn register_defers_the_tag_characters() {
        let register = |body: &str| {
            RegisterStreamConsumerRequest::parse(
                Input::root(&json_tree(body), Format::Json).unwrap(),
                ACCOUNT,
            )
        };
        let r = register(&format!(
            r#"{{"StreamARN":"{STREAM_ARN}","ConsumerName":"app","Tags":{{"k":"a;b"}}}}"#
        ))
        .unwrap();
        assert_eq!((r.stream.as_str(), r.consumer_name.as_str()), ("s1", "app"));
        let e = r.tags.unwrap().unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidArgument);
        let r = register(&format!(
            r#"{{"StreamARN":"{STREAM_ARN}","ConsumerName":"app"}}"#
        ))
        .unwrap();
        assert_eq!(r.tags, None);
    }
}
