//! A compiled jq program ([`Program`]), the variables a run sees ([`Vars`]) and what can go
//! wrong ([`JqError`]).
//!
//! A program is compiled once (jaq's standard library included: `select`, `del`, `now`,
//! `todate`, `test`, `@base64`, ...) and may then be run from any thread: the compiled
//! filter is plain data (`Send + Sync`); the values a run works on (reference-counted, not
//! `Send`) live and die inside [`Program::run`] and its siblings. Each run is bounded in
//! outputs ([`limits::OUTPUTS_PER_RECORD_MAX`]) and in output bytes; jaq has no time limit,
//! so a program that never ends holds its caller (run programs on the blocking pool).

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use jaq_core::load::{lex, Arena, File, Loader};
use jaq_core::{compile, Compiler, Ctx};
use jaq_json::Val;
use serde::Deserialize;

use crate::limits;
use crate::value;

/// The data jaq runs over: JSON values, and no global data but the program itself.
type Data = jaq_core::data::JustLut<Val>;

/// The values of [`VAR_NAMES`], in that order, as a run binds them.
pub(crate) type Bindings = jaq_core::Vars<Val>;

/// The variables every program may use, in the order [`Vars::values`] gives them.
pub const VAR_NAMES: [&str; 5] = [
    "$partition_key",
    "$sequence_number",
    "$arrival_ms",
    "$shard_id",
    "$stream",
];

/// What a run knows of the record it runs on: `$partition_key`, `$sequence_number` (a
/// string: 56 digits do not fit a number), `$arrival_ms` (a number, ms since the epoch),
/// `$shard_id` (`shardId-000000000000`) and `$stream` (the stream's name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub partition_key: String,
    pub sequence_number: String,
    pub arrival_ms: i64,
    pub shard_id: String,
    pub stream: String,
}

impl Vars {
    fn values(&self) -> [Val; 5] {
        [
            Val::from(self.partition_key.clone()),
            Val::from(self.sequence_number.clone()),
            Val::Num(jaq_json::Num::from_integral(self.arrival_ms)),
            Val::from(self.shard_id.clone()),
            Val::from(self.stream.clone()),
        ]
    }

    pub(crate) fn bindings(&self) -> Bindings {
        Bindings::new(self.values())
    }
}

/// Why a program did not compile, or a run (or a transform around it) failed. Messages are
/// for people: a compile error names its line and column, a runtime error is jq's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    /// Every problem found, each as `line L, column C: what`, joined by `; `.
    #[error("{0}")]
    Compile(String),
    /// jq's own message: `cannot index number with "a"`, or what `error(...)` was given.
    #[error("{0}")]
    Runtime(String),
    #[error("the program halted (halt, halt_error) with exit code {code}")]
    Halted { code: i32 },
    #[error("the program produced more than {max} outputs for one record")]
    TooManyOutputs { max: usize },
    #[error("the outputs for one record take more than {max} bytes")]
    OutputTooLarge { max: usize },
    #[error("an output is nested more than {max} levels deep")]
    OutputTooDeep { max: usize },
    /// An output JSON cannot hold (an object key that is not a string).
    #[error("an output is not JSON: {0}")]
    OutputNotJson(String),
    /// The record's data is not a JSON text (serde_json's message).
    #[error("the record's data is not JSON: {0}")]
    InputNotJson(String),
    /// The `partition_key` program gave no string of 1 to 256 characters.
    #[error("partition_key: {0}")]
    PartitionKey(String),
    /// jq itself failed (a bug in jaq, caught instead of stopping the server).
    #[error("jq failed internally: {0}")]
    Internal(String),
}

/// A compiled jq program.
pub struct Program {
    filter: jaq_core::Filter<Data>,
    source: Box<str>,
    /// Which of [`VAR_NAMES`] the program may read: those whose name is in its source. A
    /// variable is only ever read by its name (jq has no other way to reach one), so the
    /// others may be bound to anything: a run need not compute them.
    uses: [bool; 5],
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

// Compiled once, shared by every shard task of a processor.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Program>();
};

impl Program {
    /// Compiles `source`, with the variables of [`VAR_NAMES`] defined.
    pub fn compile(source: &str) -> Result<Program, JqError> {
        if source.len() > limits::PROGRAM_BYTES_MAX {
            return Err(JqError::Compile(format!(
                "the program is {} bytes; at most {} are allowed",
                source.len(),
                limits::PROGRAM_BYTES_MAX
            )));
        }
        // Compiling runs on the configuration, not on records; a panic in jaq's parser is
        // still reported as an error rather than taking the server down.
        catch_unwind(|| compile_filter(source))
            .unwrap_or_else(|p| Err(JqError::Internal(panic_text(p))))
            .map(|filter| Program {
                filter,
                source: source.into(),
                uses: VAR_NAMES.map(|v| source.contains(v.trim_start_matches('$'))),
            })
    }

    /// The program's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which of [`VAR_NAMES`] the program may read (the others need no value).
    pub(crate) fn uses(&self) -> [bool; 5] {
        self.uses
    }

    /// Runs the program on `input`: all its outputs, in order (none when it filters the
    /// input out). A runtime error, more than [`limits::OUTPUTS_PER_RECORD_MAX`] outputs or
    /// more than [`limits::OUTPUT_BYTES_PER_RECORD_MAX`] bytes of them fail the run.
    pub fn run(
        &self,
        input: serde_json::Value,
        vars: &Vars,
    ) -> Result<Vec<serde_json::Value>, JqError> {
        let outputs = self.run_val(from_json(input)?, vars)?;
        let mut budget = value::Budget::new(limits::OUTPUT_BYTES_PER_RECORD_MAX);
        outputs
            .iter()
            .map(|v| value::to_json(v, &mut budget))
            .collect()
    }

    /// The program's first output (the others are not computed), or `None` when it has none:
    /// for programs that compute one value from a record, such as a partition key.
    pub fn run_first(
        &self,
        input: serde_json::Value,
        vars: &Vars,
    ) -> Result<Option<serde_json::Value>, JqError> {
        let first = self.first_val(from_json(input)?, &vars.bindings())?;
        let mut budget = value::Budget::new(limits::OUTPUT_BYTES_PER_RECORD_MAX);
        first.map(|v| value::to_json(&v, &mut budget)).transpose()
    }

    /// [`Program::run`] on a record's bytes: `data` must be one JSON text; each output comes
    /// back as compact JSON, object keys in the order the program left them.
    pub fn run_bytes(&self, data: &[u8], vars: &Vars) -> Result<Vec<Vec<u8>>, JqError> {
        let outputs = self.run_val(parse_json(data)?, vars)?;
        let mut budget = value::Budget::new(limits::OUTPUT_BYTES_PER_RECORD_MAX);
        outputs
            .iter()
            .map(|v| value::to_bytes(v, &mut budget))
            .collect()
    }

    /// All outputs, at most [`limits::OUTPUTS_PER_RECORD_MAX`].
    pub(crate) fn run_val(&self, input: Val, vars: &Vars) -> Result<Vec<Val>, JqError> {
        let mut outputs = Vec::new();
        self.run_into(input, &vars.bindings(), &mut outputs)?;
        Ok(outputs)
    }

    /// All outputs, at most [`limits::OUTPUTS_PER_RECORD_MAX`], appended to `outputs`.
    pub(crate) fn run_into(
        &self,
        input: Val,
        vars: &Bindings,
        outputs: &mut Vec<Val>,
    ) -> Result<(), JqError> {
        let mut count = 0;
        self.each(input, vars, |v| {
            if count == limits::OUTPUTS_PER_RECORD_MAX {
                return Err(JqError::TooManyOutputs {
                    max: limits::OUTPUTS_PER_RECORD_MAX,
                });
            }
            count += 1;
            outputs.push(v);
            Ok(ControlFlow::Continue(()))
        })
    }

    /// The first output, if any.
    pub(crate) fn first_val(&self, input: Val, vars: &Bindings) -> Result<Option<Val>, JqError> {
        let mut first = None;
        self.each(input, vars, |v| {
            first = Some(v);
            Ok(ControlFlow::Break(()))
        })?;
        Ok(first)
    }

    /// Hands each output to `f` until it breaks or fails, or the outputs end.
    fn each(
        &self,
        input: Val,
        vars: &Bindings,
        mut f: impl FnMut(Val) -> Result<ControlFlow<()>, JqError>,
    ) -> Result<(), JqError> {
        // Values made in the run (reference-counted) are dropped with it, even on a panic,
        // so nothing half-updated survives the unwinding.
        catch_unwind(AssertUnwindSafe(|| {
            let ctx = Ctx::<Data>::new(&self.filter.lut, vars.clone());
            for output in self.filter.id.run((ctx, input)) {
                match f(output.map_err(exception)?)? {
                    ControlFlow::Continue(()) => {}
                    ControlFlow::Break(()) => break,
                }
            }
            Ok(())
        }))
        .unwrap_or_else(|p| Err(JqError::Internal(panic_text(p))))
    }
}

fn compile_filter(source: &str) -> Result<jaq_core::Filter<Data>, JqError> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(
            &arena,
            File {
                code: source,
                path: (),
            },
        )
        .map_err(|errs| {
            let mut lines = Vec::new();
            for (_, e) in errs {
                match e {
                    jaq_core::load::Error::Io(es) => {
                        for (path, why) in es {
                            lines.push(at(source, path, &format!("cannot load {path}: {why}")));
                        }
                    }
                    jaq_core::load::Error::Lex(es) => {
                        for (expected, found) in es {
                            lines.push(at(
                                source,
                                found,
                                &format!("expected {}", lex_expected(&expected)),
                            ));
                        }
                    }
                    jaq_core::load::Error::Parse(es) => {
                        for (expected, found) in es {
                            let shown = if found.is_empty() {
                                "the end of the program".to_string()
                            } else {
                                format!("`{found}`")
                            };
                            lines.push(at(
                                source,
                                found,
                                &format!("expected {}, found {shown}", expected.as_str()),
                            ));
                        }
                    }
                }
            }
            JqError::Compile(lines.join("; "))
        })?;
    Compiler::default()
        .with_funs(funs)
        .with_global_vars(VAR_NAMES)
        .compile(modules)
        .map_err(|errs| {
            let lines: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, es)| es)
                .map(|(name, undefined)| {
                    let what = match undefined {
                        compile::Undefined::Filter(arity) => {
                            format!("undefined filter `{name}/{arity}`")
                        }
                        compile::Undefined::Var => {
                            format!(
                                "undefined variable `{name}` (defined: {})",
                                VAR_NAMES.join(", ")
                            )
                        }
                        other => format!("undefined {} `{name}`", other.as_str()),
                    };
                    at(source, name, &what)
                })
                .collect();
            JqError::Compile(lines.join("; "))
        })
}

/// `line L, column C: what`, when `part` is a slice of `source` (jaq's errors point into the
/// source that way); `what` alone otherwise.
fn at(source: &str, part: &str, what: &str) -> String {
    let start = source.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    match p.checked_sub(start).filter(|o| *o <= source.len()) {
        Some(offset) if source.is_char_boundary(offset) => {
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit_once('\n')
                .map_or(before, |(_, l)| l)
                .chars()
                .count()
                + 1;
            format!("line {line}, column {column}: {what}")
        }
        _ => what.to_string(),
    }
}

/// What the lexer expected (jaq's own `as_str` panics on a delimiter it does not know).
fn lex_expected(e: &lex::Expect<&str>) -> String {
    match e {
        lex::Expect::Delim("(") => "closing parenthesis".into(),
        lex::Expect::Delim("[") => "closing bracket".into(),
        lex::Expect::Delim("{") => "closing brace".into(),
        lex::Expect::Delim("\"") => "closing quote".into(),
        lex::Expect::Delim(d) => format!("the closing delimiter of `{d}`"),
        lex::Expect::Digit => "digit".into(),
        lex::Expect::Ident => "identifier".into(),
        lex::Expect::Escape => "string escape sequence".into(),
        lex::Expect::Unicode => "4-digit hexadecimal UTF-8 code point".into(),
        lex::Expect::Token => "token".into(),
        _ => "something else".into(),
    }
}

/// A jq exception as an error: `error(...)`'s value or jq's message, or a halt.
fn exception(e: jaq_core::Exn<'_, Val>) -> JqError {
    match e.get_err() {
        Ok(err) => JqError::Runtime(value::cut(match err.into_val() {
            Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(&s).into_owned(),
            other => format!("(not a string) {other}"),
        })),
        Err(e) => match e.get_halt() {
            Ok(code) => JqError::Halted { code },
            // Breaks and tail calls never leave a run that compiled.
            Err(_) => JqError::Internal("jq control flow escaped the program".into()),
        },
    }
}

fn from_json(v: serde_json::Value) -> Result<Val, JqError> {
    Val::deserialize(v).map_err(|e| JqError::Internal(e.to_string()))
}

/// One JSON text (strict; nesting bounded by serde_json) as a jq value, keys in order.
pub(crate) fn parse_json(data: &[u8]) -> Result<Val, JqError> {
    crate::read::parse_slice(data)
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        Vars {
            partition_key: "user123".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            arrival_ms: 1_700_000_000_123,
            shard_id: "shardId-000000000000".into(),
            stream: "clicks".into(),
        }
    }

    fn run(program: &str, input: serde_json::Value) -> Result<Vec<serde_json::Value>, JqError> {
        Program::compile(program).unwrap().run(input, &vars())
    }

    #[test]
    fn select_keeps_or_drops() {
        let p = r#"select(.event_type == "click")"#;
        let click = json!({"event_type": "click", "page": "/home"});
        assert_eq!(run(p, click.clone()).unwrap(), [click]);
        assert_eq!(
            run(p, json!({"event_type": "view"})).unwrap(),
            Vec::<serde_json::Value>::new()
        );
    }

    #[test]
    fn rename_and_delete_fields() {
        let input = json!({"old": 1, "keep": "k", "secret": "s"});
        assert_eq!(
            run("{new: .old, keep}", input.clone()).unwrap(),
            [json!({"new": 1, "keep": "k"})]
        );
        assert_eq!(
            run(".new = .old | del(.old, .secret)", input).unwrap(),
            [json!({"new": 1, "keep": "k"})]
        );
    }

    #[test]
    fn add_fields_and_timestamps() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let out = run(
            ". + {processed_at: now, arrived: $arrival_ms, at: ($arrival_ms / 1000 | todate), source: \"web\"}",
            json!({"a": 1}),
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let o = &out[0];
        let now = o["processed_at"].as_f64().unwrap();
        assert!(now >= before && now < before + 60.0, "{o}");
        assert_eq!(o["arrived"], json!(1_700_000_000_123_i64));
        assert_eq!(o["at"], json!("2023-11-14T22:13:20.123Z"));
        assert_eq!(
            (o["a"].clone(), o["source"].clone()),
            (json!(1), json!("web"))
        );
    }

    /// The README's example, on the seeds' click events.
    #[test]
    fn the_readmes_clickstream_program() {
        let p = Program::compile(
            "select(.event_type == \"click\")\n| .processed_at = (now | floor | todate)\n",
        )
        .unwrap();
        let out = p
            .run_bytes(
                br#"{"event_type":"click","timestamp":1700000000.5,"user_id":"user123","page":"/home"}"#,
                &vars(),
            )
            .unwrap();
        let text = String::from_utf8(out[0].clone()).unwrap();
        let (head, stamp) = text.split_at(text.len() - 23);
        assert_eq!(
            head,
            r#"{"event_type":"click","timestamp":1700000000.5,"user_id":"user123","page":"/home","processed_at":"#
        );
        // "2026-11-28T10:25:27Z"}
        assert!(
            stamp.starts_with("\"20") && stamp.ends_with("Z\"}") && stamp.len() == 23,
            "{text}"
        );
        let view = br#"{"event_type":"view","timestamp":1700000000.5,"user_id":"u","page":"/"}"#;
        assert!(p.run_bytes(view, &vars()).unwrap().is_empty());
    }

    #[test]
    fn every_variable_is_bound_to_its_value() {
        let out = run(
            "[$partition_key, $sequence_number, $arrival_ms, $shard_id, $stream]",
            json!(null),
        )
        .unwrap();
        let v = vars();
        assert_eq!(
            out,
            [json!([
                v.partition_key,
                v.sequence_number,
                v.arrival_ms,
                v.shard_id,
                v.stream
            ])]
        );
    }

    #[test]
    fn split_one_record_into_several() {
        let out = run(
            ".user as $u | .items[] | {user: $u, sku}",
            json!({"user": "u1", "items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}),
        )
        .unwrap();
        assert_eq!(
            out,
            [
                json!({"user": "u1", "sku": "a"}),
                json!({"user": "u1", "sku": "b"}),
                json!({"user": "u1", "sku": "c"})
            ]
        );
    }

    #[test]
    fn bytes_keep_the_programs_key_order() {
        let p = Program::compile("{z: .b, a: .a, m: [1, 2.5, null, true]}").unwrap();
        let out = p.run_bytes(br#"{"a": "x", "b": "y"}"#, &vars()).unwrap();
        assert_eq!(
            out,
            [br#"{"z":"y","a":"x","m":[1,2.5,null,true]}"#.to_vec()]
        );
        // Input keys keep their order too.
        let out = Program::compile(".")
            .unwrap()
            .run_bytes(br#"{"b":1,"a":2}"#, &vars())
            .unwrap();
        assert_eq!(out, [br#"{"b":1,"a":2}"#.to_vec()]);
    }

    /// jaq's `del` removes a key by moving the last one into its place (documented).
    #[test]
    fn del_moves_the_last_key() {
        let out = Program::compile("del(.b)")
            .unwrap()
            .run_bytes(br#"{"a":1,"b":2,"c":3,"d":4}"#, &vars())
            .unwrap();
        assert_eq!(out, [br#"{"a":1,"d":4,"c":3}"#.to_vec()]);
    }

    #[test]
    fn jq_values_json_has_not() {
        let out = Program::compile("[nan, infinite, -infinite, 100000000000000000000000]")
            .unwrap()
            .run_bytes(b"null", &vars())
            .unwrap();
        assert_eq!(
            String::from_utf8(out[0].clone()).unwrap(),
            "[null,1.7976931348623157e+308,-1.7976931348623157e+308,1e+23]"
        );
        let e = run("{(1): 2}", json!(null)).unwrap_err();
        assert!(matches!(e, JqError::OutputNotJson(_)), "{e}");
    }

    #[test]
    fn runtime_errors_carry_jqs_message() {
        let e = run(".a.b", json!({"a": 5})).unwrap_err();
        assert_eq!(e, JqError::Runtime("cannot index 5 with \"b\"".into()));
        let e = run(r#"error("bad record")"#, json!({})).unwrap_err();
        assert_eq!(e, JqError::Runtime("bad record".into()));
        let e = run(r#"error({code: 7})"#, json!({})).unwrap_err();
        assert_eq!(e, JqError::Runtime("(not a string) {\"code\":7}".into()));
        // try/catch stays inside the program.
        assert_eq!(
            run(r#"try error("x") catch "caught: \(.)""#, json!(null)).unwrap(),
            [json!("caught: x")]
        );
        // halt does not end the server.
        assert_eq!(
            run("halt_error(3)", json!("bye")).unwrap_err(),
            JqError::Halted { code: 3 }
        );
        assert_eq!(
            run("halt", json!(1)).unwrap_err(),
            JqError::Halted { code: 0 }
        );
    }

    #[test]
    fn long_error_messages_are_cut() {
        let big = "x".repeat(10_000);
        let e = run(".a.b", json!({"a": big})).unwrap_err().to_string();
        assert!(
            e.chars().count() <= limits::ERROR_CHARS_MAX + 3,
            "{}",
            e.len()
        );
        assert!(e.ends_with("..."), "{e}");
    }

    #[test]
    fn outputs_are_bounded_in_number() {
        let max = limits::OUTPUTS_PER_RECORD_MAX;
        let at = run(&format!("range({max})"), json!(null)).unwrap();
        assert_eq!(at.len(), max);
        let past = run(&format!("range({})", max + 1), json!(null)).unwrap_err();
        assert_eq!(past, JqError::TooManyOutputs { max });
        // An endless generator stops at the bound too.
        assert_eq!(
            run("repeat(.)", json!(1)).unwrap_err(),
            JqError::TooManyOutputs { max }
        );
        // A first output is taken without computing the rest.
        let p = Program::compile("repeat(.)").unwrap();
        assert_eq!(p.run_first(json!(7), &vars()).unwrap(), Some(json!(7)));
        assert_eq!(
            Program::compile("empty")
                .unwrap()
                .run_first(json!(7), &vars())
                .unwrap(),
            None
        );
    }

    #[test]
    fn outputs_are_bounded_in_bytes_and_depth() {
        let max = limits::OUTPUT_BYTES_PER_RECORD_MAX;
        // One string of (max - 2) bytes is max bytes of JSON with its quotes: at the limit.
        let at = format!("\"x\" * {}", max - 2);
        let p = Program::compile(&at).unwrap();
        assert_eq!(p.run_bytes(b"null", &vars()).unwrap()[0].len(), max);
        let past = format!("\"x\" * {}", max - 1);
        let p = Program::compile(&past).unwrap();
        assert_eq!(
            p.run_bytes(b"null", &vars()).unwrap_err(),
            JqError::OutputTooLarge { max }
        );
        // Together: two outputs of half the budget each and one byte more.
        let p = Program::compile(&format!("(\"x\" * {}), (\"y\" * {})", max / 2, max / 2)).unwrap();
        assert!(matches!(
            p.run_bytes(b"null", &vars()),
            Err(JqError::OutputTooLarge { .. })
        ));
        let p = Program::compile(&format!("\"x\" * {}", max)).unwrap();
        assert!(matches!(
            p.run(json!(null), &vars()),
            Err(JqError::OutputTooLarge { .. })
        ));

        let depth = limits::OUTPUT_DEPTH_MAX;
        let nest = |n: usize| format!("reduce range({n}) as $i (0; [.])");
        let p = Program::compile(&nest(depth)).unwrap();
        assert!(p.run_bytes(b"null", &vars()).is_ok());
        assert!(p.run(json!(null), &vars()).is_ok());
        let p = Program::compile(&nest(depth + 1)).unwrap();
        assert_eq!(
            p.run_bytes(b"null", &vars()).unwrap_err(),
            JqError::OutputTooDeep { max: depth }
        );
    }

    #[test]
    fn inputs_must_be_json() {
        let p = Program::compile(".").unwrap();
        for bad in [&b"Hello, World!"[..], b"{\"a\":", b"NaN", b"{} {}", b"\xff"] {
            let e = p.run_bytes(bad, &vars()).unwrap_err();
            assert!(matches!(e, JqError::InputNotJson(_)), "{e}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        let e = p.run_bytes(deep.as_bytes(), &vars()).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }

    #[test]
    fn compile_errors_say_where() {
        let e = Program::compile(".a |").unwrap_err();
        assert_eq!(
            e,
            JqError::Compile(
                "line 1, column 5: expected term, found the end of the program".into()
            )
        );
        let e = Program::compile("select(.a ==\n  \"x)").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 2, column 6: expected closing quote"),
            "{e}"
        );
        let e = Program::compile(". | frobnicate(1)").unwrap_err();
        assert_eq!(
            e,
            JqError::Compile("line 1, column 5: undefined filter `frobnicate/1`".into())
        );
        let e = Program::compile("{k: $key}").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "line 1, column 5: undefined variable `$key` (defined: $partition_key"
            ),
            "{e}"
        );
        let e = Program::compile("import \"m\" as m; .").unwrap_err();
        assert!(
            e.to_string().contains("module loading not supported"),
            "{e}"
        );
        let big = " ".repeat(limits::PROGRAM_BYTES_MAX) + ".";
        assert!(Program::compile(&big).is_err());
        assert!(Program::compile(&big[1..]).is_ok());
    }

    #[test]
    fn a_program_is_shared_between_threads() {
        let p = std::sync::Arc::new(Program::compile(".n * 2").unwrap());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || p.run(json!({"n": i}), &vars()).unwrap())
            })
            .collect();
        let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(got, [[json!(0)], [json!(2)], [json!(4)], [json!(6)]]);
    }
}
