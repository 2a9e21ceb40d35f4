//! What an event source mapping's poller invokes: [`FunctionTarget`] turns a batch of one
//! shard's records into Lambda's Kinesis event, runs the function the way Invoke
//! RequestResponse does, and reads its answer (`batchItemFailures`, a tumbling window's
//! `state`).
//!
//! The event, for each record (Lambda developer guide, "Using Lambda with Kinesis Data
//! Streams"):
//!
//! ```text
//! {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": ..., "sequenceNumber": ...,
//!              "data": <base64>, "approximateArrivalTimestamp": 1545084650.987},
//!  "eventSource": "aws:kinesis", "eventVersion": "1.0",
//!  "eventID": "shardId-000000000006:<sequence number>", "eventName": "aws:kinesis:record",
//!  "invokeIdentityArn": <the function's execution role>, "awsRegion": ...,
//!  "eventSourceARN": <the stream's ARN>}
//! ```
//!
//! under `Records`; with a tumbling window the event also has `window` (`start`, `end`, ISO-8601
//! UTC), `state`, `shardId`, `eventSourceARN`, `isFinalInvokeForWindow` and
//! `isWindowTerminatedEarly` ("Implementing stateful Kinesis Data Streams processing in
//! Lambda"). `invokeIdentityArn` is the function's `Role` (on AWS, the role Lambda reads the
//! stream with: the execution role), or `arn:aws:iam::<account>:role/sluice` for a function
//! declared in the configuration file, which has none: the `Role` GetFunction shows.

use std::io::Write as _;
use std::sync::Weak;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use sluice_poller::{Batch, BoxFuture, Outcome, Target, Window};
use sluice_runtime::InvokeOutcome;

use crate::names::{FunctionName, LATEST};
use crate::service::Lambda;
use crate::store::Function;

/// A Lambda function as a poller's target. It holds the service weakly: a poller never
/// keeps sluice's Lambda alive, and once it is gone nothing is invoked.
pub struct FunctionTarget {
    lambda: Weak<Lambda>,
    function: FunctionName,
    /// The mapping's `FunctionArn` (failure records' `requestContext.functionArn`).
    arn: String,
}

impl FunctionTarget {
    pub fn new(lambda: Weak<Lambda>, function: FunctionName, arn: String) -> FunctionTarget {
        FunctionTarget {
            lambda,
            function,
            arn,
        }
    }
}

impl Target for FunctionTarget {
    fn invoke(&self, batch: Batch) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let Some(lambda) = self.lambda.upgrade() else {
                return not_invoked("Lambda is shutting down".into());
            };
            // Looked up at each invocation: the function may have been changed or deleted.
            let Some(f) = lambda.store.get(&self.function) else {
                return not_invoked(format!(
                    "Function not found: {}",
                    lambda.scope.arn(&self.function)
                ));
            };
            let payload = Bytes::from(kinesis_event(&lambda, &f, &batch));
            let request_id = crate::store::new_revision_id();
            let invocation =
                crate::ops::invoke::invocation(&lambda, &f, &request_id, payload, None, None);
            match crate::ops::invoke::execute(&lambda, &f, invocation).await {
                Ok(result) => outcome(result.outcome),
                Err(failure) => not_invoked(format!(
                    "{}: {}",
                    failure.error.type_name(),
                    failure.error.message.unwrap_or_default()
                )),
            }
        })
    }

    fn payload(&self, batch: &Batch) -> Option<Vec<u8>> {
        let lambda = self.lambda.upgrade()?;
        let f = lambda.store.get(&self.function)?;
        Some(kinesis_event(&lambda, &f, batch))
    }

    fn arn(&self) -> String {
        self.arn.clone()
    }
}

fn not_invoked(reason: String) -> Outcome {
    Outcome::NotInvoked { reason }
}

/// How a run of the function ended, as the poller counts it.
fn outcome(o: InvokeOutcome) -> Outcome {
    let failed = |kind: &str| Outcome::Failed {
        status_code: 200,
        function_error: kind.to_string(),
        executed_version: LATEST.to_string(),
    };
    match o {
        InvokeOutcome::Success(body) => response(&body),
        InvokeOutcome::FunctionError { error_type, .. } if error_type == "Handled" => {
            failed("Handled")
        }
        InvokeOutcome::FunctionError { .. }
        | InvokeOutcome::TimedOut
        | InvokeOutcome::RuntimeFailed { .. } => failed("Unhandled"),
    }
}

/// Reads a function's answer: `batchItemFailures` (each `itemIdentifier`, `None` when it is
/// missing, null or not a string) and `state`. An answer that is not a JSON object, or has
/// no (or a null) `batchItemFailures`, reports no failures; one whose `batchItemFailures` is
/// not a list of objects is unreadable.
pub(crate) fn response(body: &[u8]) -> Outcome {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Outcome::Success {
            item_failures: Vec::new(),
            state: None,
            unreadable: false,
        };
    };
    let state = map.remove("state").filter(|s| !s.is_null());
    let (item_failures, unreadable) = match map.remove("batchItemFailures") {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::Array(items)) => {
            let mut ids = Vec::with_capacity(items.len());
            let mut unreadable = false;
            for item in items {
                match item {
                    Value::Object(mut o) => ids.push(match o.remove("itemIdentifier") {
                        Some(Value::String(s)) => Some(s),
                        _ => None,
                    }),
                    _ => unreadable = true,
                }
            }
            (ids, unreadable)
        }
        Some(_) => (Vec::new(), true),
    };
    Outcome::Success {
        item_failures,
        state,
        unreadable,
    }
}

/// `2020-12-09T07:04:00Z` (milliseconds only when there are some).
fn iso8601(ms: i64) -> String {
    let c = sluice_aws::civil::from_ms(ms);
    let frac = ms.rem_euclid(1000);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:03}"));
    }
    s.push('Z');
    s
}

/// A JSON string.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The base64 of `data`, appended in place.
fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// Lambda's Kinesis event for `batch`, written directly (a batch can be 10,000 records or
/// 6 MB: no intermediate tree).
pub(crate) fn kinesis_event(lambda: &Lambda, f: &Function, batch: &Batch) -> Vec<u8> {
    let role = if f.record.role.is_empty() {
        format!("arn:aws:iam::{}:role/sluice", lambda.scope.account_id)
    } else {
        f.record.role.clone()
    };
    event(&role, &lambda.scope.region, batch)
}

fn event(identity_arn: &str, region: &str, batch: &Batch) -> Vec<u8> {
    let data_bytes: usize = batch.records.iter().map(|r| r.data.len()).sum();
    let mut out = Vec::with_capacity(data_bytes.div_ceil(3) * 4 + batch.records.len() * 420 + 256);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in batch.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let seq = r.sequence_number.to_string();
        out.extend_from_slice(b"{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
        push_str(&mut out, &r.partition_key);
        out.extend_from_slice(b",\"sequenceNumber\":\"");
        out.extend_from_slice(seq.as_bytes());
        out.extend_from_slice(b"\",\"data\":\"");
        push_base64(&mut out, &r.data);
        let _ = write!(
            out,
            "\",\"approximateArrivalTimestamp\":{}.{:03}}},",
            r.arrival_ms.div_euclid(1000),
            r.arrival_ms.rem_euclid(1000)
        );
        out.extend_from_slice(
            b"\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":",
        );
        push_str(&mut out, &format!("{}:{seq}", batch.shard_name));
        out.extend_from_slice(b",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":");
        push_str(&mut out, identity_arn);
        out.extend_from_slice(b",\"awsRegion\":");
        push_str(&mut out, region);
        out.extend_from_slice(b",\"eventSourceARN\":");
        push_str(&mut out, &batch.stream_arn);
        out.push(b'}');
    }
    out.push(b']');
    if let Some(w) = &batch.window {
        window(&mut out, w, batch);
    }
    out.push(b'}');
    out
}

/// A tumbling window's members, after `Records`.
fn window(out: &mut Vec<u8>, w: &Window, batch: &Batch) {
    out.extend_from_slice(b",\"window\":{\"start\":");
    push_str(out, &iso8601(w.start_ms));
    out.extend_from_slice(b",\"end\":");
    push_str(out, &iso8601(w.end_ms));
    out.extend_from_slice(b"},\"state\":");
    let _ = serde_json::to_writer(&mut *out, &w.state);
    out.extend_from_slice(b",\"shardId\":");
    push_str(out, &batch.shard_name);
    out.extend_from_slice(b",\"eventSourceARN\":");
    push_str(out, &batch.stream_arn);
    let _ = write!(
        out,
        ",\"isFinalInvokeForWindow\":{},\"isWindowTerminatedEarly\":{}",
        w.is_final_invoke, w.terminated_early
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_poller::Record;
    use sluice_streams::{SequenceNumber, ShardId};

    const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s1";
    const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

    fn seq(position: u64) -> SequenceNumber {
        SequenceNumber::of_record(0, 6, position)
    }

    fn batch(window: Option<Window>) -> Batch {
        Batch {
            shard_id: ShardId(6),
            shard_name: "shardId-000000000006".into(),
            stream_arn: STREAM.into(),
            records: vec![
                Record {
                    sequence_number: seq(1),
                    partition_key: "key \"1\"".into(),
                    data: Bytes::from_static(b"Hello, this is a test."),
                    arrival_ms: 1_545_084_650_987,
                },
                Record {
                    sequence_number: seq(2),
                    partition_key: "2".into(),
                    data: Bytes::from_static(&[0, 255]),
                    arrival_ms: 1_607_497_475_000,
                },
            ],
            window,
        }
    }

    #[test]
    fn the_event_is_lambdas() {
        let b = batch(None);
        let bytes = event(ROLE, "us-east-1", &b);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let s1 = b.records[0].sequence_number.to_string();
        assert_eq!(
            v["Records"][0],
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "key \"1\"",
                    "sequenceNumber": s1,
                    "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
                    "approximateArrivalTimestamp": 1545084650.987,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000006:{s1}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": ROLE,
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM,
            })
        );
        assert_eq!(v["Records"][1]["kinesis"]["data"], "AP8=");
        // Whole seconds keep their three decimals, as AWS writes them.
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"approximateArrivalTimestamp\":1607497475.000}"));
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(
            serde_json::from_slice::<Value>(&event(
                ROLE,
                "us-east-1",
                &Batch {
                    records: Vec::new(),
                    ..batch(None)
                }
            ))
            .unwrap(),
            json!({"Records": []})
        );
    }

    #[test]
    fn a_tumbling_window_adds_its_members() {
        let w = Window {
            start_ms: 1_607_497_440_000,
            end_ms: 1_607_497_560_000,
            state: json!({"1": 282, "2": 715}),
            is_final_invoke: false,
            terminated_early: false,
        };
        let v: Value = serde_json::from_slice(&event(ROLE, "us-east-1", &batch(Some(w)))).unwrap();
        assert_eq!(
            v["window"],
            json!({"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"})
        );
        assert_eq!(v["state"], json!({"1": 282, "2": 715}));
        assert_eq!(v["shardId"], "shardId-000000000006");
        assert_eq!(v["eventSourceARN"], STREAM);
        assert_eq!(v["isFinalInvokeForWindow"], false);
        assert_eq!(v["isWindowTerminatedEarly"], false);
        assert_eq!(v["Records"].as_array().unwrap().len(), 2);
        assert_eq!(iso8601(1_607_497_440_123), "2020-12-09T07:04:00.123Z");
    }

    #[test]
    fn answers_are_read_as_lambda_reads_them() {
        let ok = |item_failures: Vec<Option<String>>, state: Option<Value>, unreadable: bool| {
            Outcome::Success {
                item_failures,
                state,
                unreadable,
            }
        };
        assert_eq!(response(b"not json"), ok(vec![], None, false));
        assert_eq!(response(b"null"), ok(vec![], None, false));
        assert_eq!(response(b"\"done\""), ok(vec![], None, false));
        assert_eq!(response(b"{}"), ok(vec![], None, false));
        assert_eq!(
            response(br#"{"batchItemFailures": null}"#),
            ok(vec![], None, false)
        );
        assert_eq!(
            response(br#"{"batchItemFailures": []}"#),
            ok(vec![], None, false)
        );
        assert_eq!(
            response(
                br#"{"batchItemFailures": [{"itemIdentifier": "49"}, {"itemIdentifier": null}, {"itemIdentifier": ""}, {"id": "1"}, {"itemIdentifier": 5}]}"#
            ),
            ok(
                vec![Some("49".into()), None, Some(String::new()), None, None],
                None,
                false
            )
        );
        assert_eq!(
            response(br#"{"batchItemFailures": "49"}"#),
            ok(vec![], None, true)
        );
        assert_eq!(
            response(br#"{"batchItemFailures": ["49"]}"#),
            ok(vec![], None, true)
        );
        assert_eq!(
            response(br#"{"state": {"n": 1}, "batchItemFailures": []}"#),
            ok(vec![], Some(json!({"n": 1})), false)
        );
        assert_eq!(response(br#"{"state": null}"#), ok(vec![], None, false));
    }

    #[test]
    fn failures_are_lambdas_function_errors() {
        let failed = |kind: &str| Outcome::Failed {
            status_code: 200,
            function_error: kind.into(),
            executed_version: "$LATEST".into(),
        };
        assert_eq!(
            outcome(InvokeOutcome::FunctionError {
                error_type: "Unhandled".into(),
                payload: Bytes::new()
            }),
            failed("Unhandled")
        );
        assert_eq!(
            outcome(InvokeOutcome::FunctionError {
                error_type: "Handled".into(),
                payload: Bytes::new()
            }),
            failed("Handled")
        );
        assert_eq!(outcome(InvokeOutcome::TimedOut), failed("Unhandled"));
        assert_eq!(
            outcome(InvokeOutcome::RuntimeFailed {
                error_type: "Runtime.ExitError".into(),
                message: "exit status 3".into()
            }),
            failed("Unhandled")
        );
        assert_eq!(
            outcome(InvokeOutcome::Success(Bytes::from_static(b"{}"))),
            response(b"{}")
        );
    }
}
