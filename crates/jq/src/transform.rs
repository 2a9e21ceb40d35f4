//! What a processor does to one record: [`Transform::apply`] parses its data as JSON, runs the
//! program, and gives each output as an [`Output`] record with its partition key.
//!
//! [`BatchRun`] does the same to the records of a batch, one after the other on one thread,
//! with what can be kept from one record to the next kept: the parser's stacks, the output
//! buffer, the variables that do not change within a batch (or are not used at all). Its
//! outputs are slices of one shared buffer rather than an allocation each.

use bytes::{Bytes, BytesMut};
use jaq_json::{Num, Val};
use sluice_poller::Record;

use crate::limits;
use crate::plan::{self, Plan, Step};
use crate::program::{Bindings, JqError, Program, Vars};
use crate::read::Reader;
use crate::value::{self, Budget};

/// One output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub partition_key: String,
    /// Compact JSON.
    pub data: Vec<u8>,
}

/// A processor's programs: the transform, and optionally the partition key of its outputs.
#[derive(Debug)]
pub struct Transform {
    program: Program,
    partition_key: Option<Program>,
    /// The shortcut for the batch path, when the program is one it knows (and outputs keep
    /// the input's key).
    plan: Option<Plan>,
}

/// An output's partition key.
enum Key {
    /// The input record's.
    Input,
    /// What the `partition_key` program gave.
    Computed(String),
}

/// What one record's run reuses.
#[derive(Default)]
struct Scratch {
    outputs: Vec<Val>,
    buf: Vec<u8>,
}

impl Transform {
    pub fn new(program: Program, partition_key: Option<Program>) -> Transform {
        let plan = match partition_key {
            None => Plan::new(program.source()),
            Some(_) => None,
        };
        Transform {
            program,
            partition_key,
            plan,
        }
    }

    /// Whether the batch path runs the program on records' bytes (see [`crate::plan`]).
    pub fn is_planned(&self) -> bool {
        self.plan.is_some()
    }

    /// The outputs of one record (none when the program filters it out), all or nothing:
    /// data that is not JSON, a runtime error, too many or too large outputs, or an output
    /// whose partition key cannot be computed fail the record. Each output's partition key is
    /// the record's (`vars.partition_key`), or the `partition_key` program's first output on
    /// the output value.
    pub fn apply(&self, data: &[u8], vars: &Vars) -> Result<Vec<Output>, JqError> {
        let input = crate::program::parse_json(data)?;
        let mut outputs = Vec::new();
        self.run(
            input,
            &vars.bindings(),
            vars.partition_key.len(),
            &mut Scratch::default(),
            |key, data| {
                outputs.push(Output {
                    partition_key: match key {
                        Key::Input => vars.partition_key.clone(),
                        Key::Computed(k) => k,
                    },
                    data: data.to_vec(),
                })
            },
        )?;
        Ok(outputs)
    }

    /// Which of the variables either program may read.
    fn uses(&self) -> [bool; 5] {
        let mut uses = self.program.uses();
        if let Some(p) = &self.partition_key {
            for (u, k) in uses.iter_mut().zip(p.uses()) {
                *u |= k;
            }
        }
        uses
    }

    /// Runs the program on `input` and hands each output, as compact JSON, to `emit`, in
    /// order; stops at the first failure (outputs already handed over are the caller's to
    /// drop). `input_key_bytes`: the length of the input's partition key.
    fn run(
        &self,
        input: Val,
        vars: &Bindings,
        input_key_bytes: usize,
        scratch: &mut Scratch,
        mut emit: impl FnMut(Key, &[u8]),
    ) -> Result<(), JqError> {
        let Scratch { outputs, buf } = scratch;
        outputs.clear();
        self.program.run_into(input, vars, outputs)?;
        let mut budget = Budget::new(limits::OUTPUT_BYTES_PER_RECORD_MAX);
        for v in outputs.drain(..) {
            let key = match &self.partition_key {
                None => Key::Input,
                Some(p) => Key::Computed(partition_key(p, v.clone(), vars)?),
            };
            value::write_into(&v, buf, &mut budget)?;
            let key_bytes = match &key {
                Key::Input => input_key_bytes,
                Key::Computed(k) => k.len(),
            };
            if buf.len() + key_bytes > limits::OUTPUT_RECORD_BYTES_MAX {
                return Err(JqError::OutputTooLarge {
                    max: limits::OUTPUT_RECORD_BYTES_MAX,
                });
            }
            emit(key, buf);
        }
        Ok(())
    }
}

/// Bytes of the buffer outputs are cut from; an output larger than a quarter of it gets a
/// buffer of its own.
const ARENA_BYTES: usize = 64 * 1024;

/// A transform over the records of one batch (of one shard), on one thread: [`Transform::apply`]
/// record after record, with the same outcomes, at less cost per record.
pub(crate) struct BatchRun<'t> {
    transform: &'t Transform,
    reader: Reader,
    scratch: Scratch,
    /// What outputs and keys are cut from (a reference count each, not an allocation).
    arena: BytesMut,
    uses: [bool; 5],
    shard_id: Val,
    stream: Val,
    /// The variables when none of them changes from record to record.
    fixed: Option<Bindings>,
    plan_scratch: plan::Scratch,
    /// `$shard_id` and `$stream` as JSON, for the plan.
    shard_id_json: Vec<u8>,
    stream_json: Vec<u8>,
}

impl<'t> BatchRun<'t> {
    pub(crate) fn new(transform: &'t Transform, stream: &str, shard_id: &str) -> BatchRun<'t> {
        let (stream_str, shard_id_str) = (stream, shard_id);
        let uses = transform.uses();
        let var = |used: bool, s: &str| {
            if used {
                Val::utf8_str(Bytes::copy_from_slice(s.as_bytes()))
            } else {
                Val::Null
            }
        };
        let shard_id = var(uses[3], shard_id);
        let stream = var(uses[4], stream);
        // $partition_key, $sequence_number and $arrival_ms change with the record.
        let fixed = (!(uses[0] || uses[1] || uses[2])).then(|| {
            Bindings::new([
                Val::Null,
                Val::Null,
                Val::Null,
                shard_id.clone(),
                stream.clone(),
            ])
        });
        BatchRun {
            transform,
            reader: Reader::default(),
            scratch: Scratch::default(),
            arena: BytesMut::new(),
            uses,
            shard_id,
            stream,
            fixed,
            plan_scratch: plan::Scratch::default(),
            shard_id_json: serde_json::to_vec(shard_id_str).unwrap_or_default(),
            stream_json: serde_json::to_vec(stream_str).unwrap_or_default(),
        }
    }

    /// The outputs of `r` as [`Transform::apply`] gives them, as (partition key, data) pairs
    /// in `out` (emptied first; left empty on a failure).
    pub(crate) fn apply(
        &mut self,
        r: &Record,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), JqError> {
        out.clear();
        let result = self.apply_inner(r, out);
        if result.is_err() {
            out.clear();
        }
        result
    }

    fn apply_inner(&mut self, r: &Record, out: &mut Vec<(Bytes, Bytes)>) -> Result<(), JqError> {
        if let Some(plan) = &self.transform.plan {
            let cx = plan::Context {
                record: r,
                shard_id: &self.shard_id_json,
                stream: &self.stream_json,
            };
            let buf = &mut self.scratch.buf;
            let scratch = &mut self.plan_scratch;
            // A panic in the shortcut (none is known) leaves the record to jaq.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                plan.apply(&r.data, &cx, scratch, buf)
            }))
            .unwrap_or(Step::Whole);
            match step {
                Step::Dropped => return Ok(()),
                Step::Output => {
                    let key = cut(&mut self.arena, r.partition_key.as_bytes());
                    out.push((key, cut(&mut self.arena, buf)));
                    return Ok(());
                }
                // The whole program, below.
                Step::Whole => {}
            }
        }
        let input = self.reader.parse(&r.data)?;
        // The input's key, cut once from the arena when something needs it.
        let mut key: Option<Bytes> = None;
        let vars = match &self.fixed {
            Some(v) => v.clone(),
            None => {
                let partition_key = if self.uses[0] {
                    let k = cut(&mut self.arena, r.partition_key.as_bytes());
                    key = Some(k.clone());
                    Val::utf8_str(k)
                } else {
                    Val::Null
                };
                let sequence_number = if self.uses[1] {
                    Val::from(r.sequence_number.to_string())
                } else {
                    Val::Null
                };
                let arrival_ms = if self.uses[2] {
                    Val::Num(Num::from_integral(r.arrival_ms))
                } else {
                    Val::Null
                };
                Bindings::new([
                    partition_key,
                    sequence_number,
                    arrival_ms,
                    self.shard_id.clone(),
                    self.stream.clone(),
                ])
            }
        };
        let arena = &mut self.arena;
        self.transform.run(
            input,
            &vars,
            r.partition_key.len(),
            &mut self.scratch,
            |k, data| {
                let k = match k {
                    Key::Input => key
                        .get_or_insert_with(|| cut(arena, r.partition_key.as_bytes()))
                        .clone(),
                    Key::Computed(k) => Bytes::from(k),
                };
                out.push((k, cut(arena, data)));
            },
        )
    }
}

/// `bytes` as a slice of `arena` (a fresh arena when it has no room left), or in a buffer of
/// their own when large.
fn cut(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if bytes.len() > ARENA_BYTES / 4 {
        return Bytes::copy_from_slice(bytes);
    }
    if arena.capacity() - arena.len() < bytes.len() {
        *arena = BytesMut::with_capacity(ARENA_BYTES);
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
}

fn partition_key(p: &Program, output: Val, vars: &Bindings) -> Result<String, JqError> {
    let first = p
        .first_val(output, vars)
        .map_err(|e| JqError::PartitionKey(e.to_string()))?;
    let key = match first {
        Some(Val::TStr(s)) => String::from_utf8_lossy(&s).into_owned(),
        Some(other) => {
            return Err(JqError::PartitionKey(value::cut(format!(
                "{other} is not a string"
            ))))
        }
        None => return Err(JqError::PartitionKey("the program gave no output".into())),
    };
    let chars = key.chars().count();
    if chars == 0 || chars > limits::PARTITION_KEY_CHARS_MAX {
        return Err(JqError::PartitionKey(format!(
            "a key has 1 to {} characters, this one {chars}",
            limits::PARTITION_KEY_CHARS_MAX
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            partition_key: "in-key".into(),
            ..Vars::default()
        }
    }

    fn transform(program: &str, key: Option<&str>) -> Transform {
        Transform::new(
            Program::compile(program).unwrap(),
            key.map(|k| Program::compile(k).unwrap()),
        )
    }

    #[test]
    fn outputs_keep_the_inputs_key_unless_a_key_program_says() {
        let t = transform(".items[]", None);
        let out = t
            .apply(br#"{"items":[{"u":"a"},{"u":"b"}]}"#, &vars())
            .unwrap();
        assert_eq!(
            out,
            [
                Output {
                    partition_key: "in-key".into(),
                    data: br#"{"u":"a"}"#.to_vec()
                },
                Output {
                    partition_key: "in-key".into(),
                    data: br#"{"u":"b"}"#.to_vec()
                }
            ]
        );
        let t = transform(".items[]", Some(".u, \"ignored\""));
        let keys: Vec<_> = t
            .apply(br#"{"items":[{"u":"a"},{"u":"b"}]}"#, &vars())
            .unwrap()
            .into_iter()
            .map(|o| o.partition_key)
            .collect();
        assert_eq!(keys, ["a", "b"]);
        // The key program sees the variables too.
        let t = transform(".", Some("$partition_key + \"-x\""));
        assert_eq!(t.apply(b"1", &vars()).unwrap()[0].partition_key, "in-key-x");
    }

    #[test]
    fn a_bad_key_fails_the_record() {
        let max = limits::PARTITION_KEY_CHARS_MAX;
        for (key, ok) in [
            (format!("\"{}\"", "é".repeat(max)), true),
            (format!("\"{}\"", "k".repeat(max + 1)), false),
            ("\"\"".to_string(), false),
            ("1".to_string(), false),
            ("empty".to_string(), false),
            (".nope.deeper".to_string(), false),
        ] {
            let t = transform(".", Some(&key));
            let got = t.apply(br#"{"nope": 3}"#, &vars());
            assert_eq!(got.is_ok(), ok, "{key}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, JqError::PartitionKey(_)), "{e}");
            }
        }
    }

    #[test]
    fn one_output_record_fits_a_kinesis_record() {
        let max = limits::OUTPUT_RECORD_BYTES_MAX;
        // data ("x" * n with its quotes) + the key "in-key" (6 bytes)
        let at = transform(&format!("\"x\" * {}", max - 6 - 2), None);
        assert_eq!(at.apply(b"null", &vars()).unwrap()[0].data.len(), max - 6);
        let past = transform(&format!("\"x\" * {}", max - 6 - 1), None);
        assert_eq!(
            past.apply(b"null", &vars()).unwrap_err(),
            JqError::OutputTooLarge { max }
        );
    }

    /// A record as the poller gives it, with the `Vars` `Transform::apply` would see for it.
    fn record(i: u64, key: &str, data: &[u8]) -> (Record, Vars) {
        let r = Record {
            sequence_number: sluice_streams::SequenceNumber::of_record(3, 0, i),
            partition_key: key.to_string(),
            data: Bytes::copy_from_slice(data),
            arrival_ms: 1_700_000_000_000 + i as i64,
        };
        let vars = Vars {
            partition_key: key.to_string(),
            sequence_number: r.sequence_number.to_string(),
            arrival_ms: r.arrival_ms,
            shard_id: "shardId-000000000000".into(),
            stream: "src".into(),
        };
        (r, vars)
    }

    /// The batch path gives what `Transform::apply` gives, record after record, whatever the
    /// program, its key program, the variables it reads and the records.
    #[test]
    fn a_batch_run_is_apply_record_after_record() {
        let inputs: Vec<(&str, Vec<u8>)> = vec![
            ("k1", br#"{"kind":"click","id":1,"pad":"xxxx"}"#.to_vec()),
            ("k2", br#"{"kind":"view","id":2}"#.to_vec()),
            ("clé-ü", "{\"kind\":\"click\",\"text\":\"é 中文 😀 \\u00e9\\n\\\"q\\\"\"}".as_bytes().to_vec()),
            ("k4", br#"{"kind":"click","big":18446744073709551616,"huge":100000000000000000000000,"neg":-9223372036854775808,"u":18446744073709551615,"f":1.50,"e":1e300,"z":-0.0}"#.to_vec()),
            ("k5", b"not json".to_vec()),
            ("k6", b"{\"kind\":\"click\",".to_vec()),
            ("k7", b"\"\xff\"".to_vec()),
            ("k8", br#"{"kind":"click","items":[{"u":"a"},{"u":"b"},{"u":"c"}]}"#.to_vec()),
            ("k9", br#"{"kind":"click","items":[]}"#.to_vec()),
            ("k10", br#"{"kind":"click","items":[{"u":"a"},{"u":0}]}"#.to_vec()),
            ("k11", br#"[1, [2, {"a": null}], true, false, "s"]"#.to_vec()),
            ("k12", br#"{"kind":"click","dup":1,"dup":2}"#.to_vec()),
            ("k13", format!(r#"{{"kind":"click","long":"{}"}}"#, "y".repeat(40_000)).into_bytes()),
            ("k14", b"  null ".to_vec()),
        ];
        let programs = [
            ".",
            r#"select(.kind == "click") | .processed_at = 1"#,
            r#"select(.kind == "click") | .processed_at = now | .processed_at |= type"#,
            ".items[]?",
            ".items[]? | if .u == 0 then error(\"zero\") else . end",
            "empty",
            "[$partition_key, $sequence_number, $arrival_ms, $shard_id, $stream]",
            "{k: $partition_key, s: $stream}",
            "{shard: $shard_id} + .",
            ".[]?",
            "., .",
            "range(600)",
            "{(1): 2}",
            "[nan, infinite, -infinite, 1e1000, 0.1, 3]",
            r#""x" * 1048570"#,
            ".kind | ascii_downcase | explode | implode",
            "tostring",
            "@base64",
        ];
        let keys = [
            None,
            Some(".kind // \"none\""),
            Some("$partition_key + \"-\" + $shard_id"),
            Some("tostring | .[0:10]"),
            Some("1"),
        ];
        for program in programs {
            for key in keys {
                let t = transform(program, key);
                let mut run = BatchRun::new(&t, "src", "shardId-000000000000");
                let mut out = Vec::new();
                for round in 0..2 {
                    for (i, (k, data)) in inputs.iter().enumerate() {
                        let (r, vars) = record(i as u64, k, data);
                        let want = t.apply(data, &vars);
                        let got = run.apply(&r, &mut out).map(|()| {
                            out.iter()
                                .map(|(k, d)| Output {
                                    partition_key: String::from_utf8(k.to_vec()).unwrap(),
                                    data: d.to_vec(),
                                })
                                .collect::<Vec<_>>()
                        });
                        assert_eq!(got, want, "{program} / {key:?} / record {i}, round {round}");
                        if got.is_err() {
                            assert!(out.is_empty());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn programs_know_which_variables_they_read() {
        let uses = |p: &str| Program::compile(p).unwrap().uses();
        assert_eq!(uses("."), [false; 5]);
        assert_eq!(uses("$stream"), [false, false, false, false, true]);
        assert_eq!(
            uses("[$partition_key, $sequence_number, $arrival_ms, $shard_id]"),
            [true, true, true, true, false]
        );
        // Any mention counts (in a string, a comment, a field name): at worst a value is
        // computed for nothing.
        assert_eq!(
            uses(".arrival_ms # $shard_id"),
            [false, false, true, true, false]
        );
        let t = transform(".", Some("$sequence_number"));
        assert_eq!(t.uses(), [false, true, false, false, false]);
    }

    #[test]
    fn a_failure_fails_the_whole_record() {
        let t = transform(r#".[] | if . == 0 then error("zero") else . end"#, None);
        assert!(t.apply(b"[1, 2, 0]", &vars()).is_err());
        assert_eq!(t.apply(b"[1, 2]", &vars()).unwrap().len(), 2);
        assert!(matches!(
            t.apply(b"not json", &vars()),
            Err(JqError::InputNotJson(_))
        ));
    }
}
