//! A shortcut for the programs processors mostly run: filters and field edits on a JSON object,
//! done on the record's bytes instead of through jaq values.
//!
//! [`Plan::new`] accepts a program only when it is wholly made of these stages, joined by `|`:
//!
//! - `.` (the record as it is);
//! - `select(COND)`, where COND is made of `and`, `or`, parentheses, `COND | not`, and
//!   operands compared with `==`, `!=`, `<`, `<=`, `>`, `>=` (or alone, for their truth);
//! - `PATH = OPERAND` (set a field) and `del(PATH)` (remove one);
//!
//! with PATH a chain of plain names (`.a`, `.a.b`), and OPERAND a PATH, a string without
//! escapes, an integer, `true`, `false`, `null`, `now`, or one of the record variables
//! (`$partition_key`, ...). Any other program runs through jaq alone.
//!
//! [`Plan::apply`] gives the record's output exactly as jaq and [`crate::value`] would write it,
//! or answers [`Step::Whole`] whenever it cannot be sure of that: the data is not a JSON object
//! in the form the writer gives (compact or not: whitespace is dropped), it has a float, an
//! escape other than the writer's, a repeated key, deep nesting; the program would raise an
//! error (a field of a string), compare floats, arrays or objects, or edit below a field that
//! is missing or not an object. The caller then runs the whole program on that record, which
//! gives the same output, or the error. A property test holds the two equal.
//!
//! Why the output is the same: the writer's form of a JSON value is unique to it (compact,
//! keys in order, one way to write each string and integer), so a field's bytes in a record in
//! that form are the bytes the writer would give for the field's value, and two such values are
//! equal exactly when their bytes are (strings, integers, `true`, `false`, `null`).

use std::cmp::Ordering;

use sluice_poller::Record;

use crate::limits;

/// Nesting past which a record goes the whole way (serde_json's reader stops at 128).
const DEPTH_MAX: usize = 64;

/// Objects with more fields than this are checked for repeated keys by sorting.
const PAIRWISE_KEYS_MAX: usize = 16;

/// A program, compiled to stages over a JSON object's fields.
#[derive(Debug)]
pub(crate) struct Plan {
    stages: Vec<Stage>,
}

#[derive(Debug)]
enum Stage {
    Select(Cond),
    Set(Vec<Key>, Operand),
    Del(Vec<Key>),
}

#[derive(Debug)]
enum Cond {
    Truth(Operand),
    Cmp(Operand, Op, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug)]
enum Operand {
    Path(Vec<Key>),
    /// A constant, as the writer writes it.
    Lit(Vec<u8>),
    Now,
    Var(Var),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    PartitionKey,
    SequenceNumber,
    ArrivalMs,
    ShardId,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A field name, as the writer writes it (quoted).
#[derive(Debug)]
struct Key(Vec<u8>);

/// What [`Plan::apply`] made of a record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The one output, in the `out` buffer.
    Output,
    /// No output: a `select` dropped the record.
    Dropped,
    /// Not sure: run the whole program on it.
    Whole,
}

/// What a run reads of the record besides its data.
pub(crate) struct Context<'a> {
    pub(crate) record: &'a Record,
    /// `$shard_id` and `$stream`, as the writer writes them.
    pub(crate) shard_id: &'a [u8],
    pub(crate) stream: &'a [u8],
}

/// What [`Plan::apply`] keeps from one record to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The record in the writer's form, then values the stages make.
    work: Vec<u8>,
    /// The object's fields.
    fields: Vec<(V, V)>,
    /// Keys of the objects being read (for repeated keys).
    keys: Vec<(usize, usize)>,
    number: Vec<u8>,
}

/// A value: bytes of the scratch buffer, or `null` (a missing field).
#[derive(Debug, Clone, Copy)]
enum V {
    Work(usize, usize),
    Null,
}

impl V {
    fn bytes(self, work: &[u8]) -> &[u8] {
        match self {
            V::Work(s, e) => &work[s..e],
            V::Null => b"null",
        }
    }
}

impl Plan {
    /// The plan of a program, when every part of it is one this module knows.
    pub(crate) fn new(source: &str) -> Option<Plan> {
        let tokens = tokens(source)?;
        let mut p = Parser { tokens, at: 0 };
        let mut stages = Vec::new();
        loop {
            if let Some(stage) = p.stage()? {
                stages.push(stage);
            }
            match p.next() {
                None => break,
                Some(Tok::Pipe) => {}
                Some(_) => return None,
            }
        }
        Some(Plan { stages })
    }

    /// The output of `data` into `out` (emptied first), as jaq and the writer give it, or
    /// [`Step::Whole`].
    pub(crate) fn apply(
        &self,
        data: &[u8],
        cx: &Context,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Step {
        out.clear();
        match self.run(data, cx, scratch, out) {
            Some(true) => Step::Output,
            Some(false) => Step::Dropped,
            None => Step::Whole,
        }
    }

    fn run(&self, data: &[u8], cx: &Context, s: &mut Scratch, out: &mut Vec<u8>) -> Option<bool> {
        s.work.clear();
        s.fields.clear();
        s.keys.clear();
        let mut c = Canon {
            src: data,
            at: 0,
            out: &mut s.work,
            keys: &mut s.keys,
            number: &mut s.number,
        };
        c.ws();
        if c.peek()? != b'{' {
            return None;
        }
        c.object(1, Some(&mut s.fields))?;
        c.ws();
        if c.at != data.len() {
            return None;
        }
        for stage in &self.stages {
            match stage {
                Stage::Select(cond) => {
                    if !cond.eval(s, cx)? {
                        return Some(false);
                    }
                }
                Stage::Set(path, operand) => {
                    let v = operand.eval(s, cx)?;
                    let Scratch { work, fields, .. } = s;
                    set(work, fields, path, v)?;
                }
                Stage::Del(path) => {
                    let Scratch { work, fields, .. } = s;
                    del(work, fields, path)?;
                }
            }
        }
        write_object(&s.work, &s.fields, out);
        let too_large = out.len() > limits::OUTPUT_BYTES_PER_RECORD_MAX
            || out.len() + cx.record.partition_key.len() > limits::OUTPUT_RECORD_BYTES_MAX;
        (!too_large).then_some(true)
    }
}

fn write_object(work: &[u8], fields: &[(V, V)], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.bytes(work));
        out.push(b':');
        out.extend_from_slice(v.bytes(work));
    }
    out.push(b'}');
}

impl Operand {
    fn eval(&self, s: &mut Scratch, cx: &Context) -> Option<V> {
        match self {
            Operand::Path(path) => lookup(&s.work, &s.fields, path),
            Operand::Lit(bytes) => push(&mut s.work, |w| {
                w.extend_from_slice(bytes);
                Some(())
            }),
            Operand::Now => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs_f64();
                Some(push(&mut s.work, |w| serde_json::to_writer(w, &now).ok())?)
            }
            Operand::Var(var) => {
                let r = cx.record;
                Some(match var {
                    Var::PartitionKey => push(&mut s.work, |w| {
                        serde_json::to_writer(w, &r.partition_key).ok()
                    })?,
                    Var::SequenceNumber => push(&mut s.work, |w| {
                        serde_json::to_writer(w, &r.sequence_number.to_string()).ok()
                    })?,
                    Var::ArrivalMs => push(&mut s.work, |w| {
                        serde_json::to_writer(w, &r.arrival_ms).ok()
                    })?,
                    Var::ShardId => push(&mut s.work, |w| {
                        w.extend_from_slice(cx.shard_id);
                        Some(())
                    })?,
                    Var::Stream => push(&mut s.work, |w| {
                        w.extend_from_slice(cx.stream);
                        Some(())
                    })?,
                })
            }
        }
    }
}

/// What `write` appends to `work`, as a value.
fn push(work: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Option<V> {
    let start = work.len();
    write(work)?;
    Some(V::Work(start, work.len()))
}

impl Cond {
    fn eval(&self, s: &mut Scratch, cx: &Context) -> Option<bool> {
        match self {
            Cond::Truth(o) => {
                let v = o.eval(s, cx)?;
                Some(!matches!(v.bytes(&s.work), b"null" | b"false"))
            }
            Cond::Cmp(a, op, b) => {
                let a = a.eval(s, cx)?;
                let b = b.eval(s, cx)?;
                compare(a.bytes(&s.work), *op, b.bytes(&s.work))
            }
            Cond::And(a, b) => Some(a.eval(s, cx)? && b.eval(s, cx)?),
            Cond::Or(a, b) => Some(a.eval(s, cx)? || b.eval(s, cx)?),
            Cond::Not(a) => Some(!a.eval(s, cx)?),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    False,
    True,
    Int,
    Float,
    Str,
    Arr,
    Obj,
}

fn kind(v: &[u8]) -> Kind {
    match v[0] {
        b'n' => Kind::Null,
        b'f' => Kind::False,
        b't' => Kind::True,
        b'"' => Kind::Str,
        b'[' => Kind::Arr,
        b'{' => Kind::Obj,
        _ if v.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) => Kind::Float,
        _ => Kind::Int,
    }
}

/// `a op b` as jq has it, for values in the writer's form; `None` where that takes more than
/// their bytes (floats, arrays, objects, an order other than of two integers).
fn compare(a: &[u8], op: Op, b: &[u8]) -> Option<bool> {
    let (ka, kb) = (kind(a), kind(b));
    match op {
        Op::Eq | Op::Ne => {
            let same = |k| ka == k || kb == k;
            if same(Kind::Float) || ka == kb && matches!(ka, Kind::Arr | Kind::Obj) {
                return None;
            }
            let equal = ka == kb && a == b;
            Some(equal == (op == Op::Eq))
        }
        _ => {
            if ka != Kind::Int || kb != Kind::Int {
                return None;
            }
            let a: i64 = std::str::from_utf8(a).ok()?.parse().ok()?;
            let b: i64 = std::str::from_utf8(b).ok()?.parse().ok()?;
            let o = a.cmp(&b);
            Some(match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
    }
}

/// The value at `path` (null where a field is missing or a value on the way is null); `None`
/// where jq would raise an error (a field of a value that is not an object).
fn lookup(work: &[u8], fields: &[(V, V)], path: &[Key]) -> Option<V> {
    let (first, rest) = path.split_first()?;
    let mut v = match fields.iter().find(|(k, _)| k.bytes(work) == first.0) {
        Some((_, v)) => *v,
        None => return Some(V::Null),
    };
    for key in rest {
        let bytes = v.bytes(work);
        v = match bytes[0] {
            b'n' => return Some(V::Null),
            b'{' => {
                let V::Work(start, _) = v else { return None };
                match find(work, start, &key.0) {
                    Some(found) => found,
                    None => return Some(V::Null),
                }
            }
            _ => return None,
        };
    }
    Some(v)
}

/// The value of field `key` of the object at `work[start..]` (in the writer's form).
fn find(work: &[u8], start: usize, key: &[u8]) -> Option<V> {
    let mut found = None;
    each_member(work, start, |k, v| {
        if k.bytes(work) == key {
            found = Some(v);
        }
        found.is_none()
    });
    found
}

/// The fields of the object at `work[start..]` (in the writer's form) into `fields`.
fn members(work: &[u8], start: usize, fields: &mut Vec<(V, V)>) {
    each_member(work, start, |k, v| {
        fields.push((k, v));
        true
    });
}

/// Hands each field of the object at `work[start..]` (in the writer's form) to `visit`, in
/// order, while it answers true.
fn each_member(work: &[u8], start: usize, mut visit: impl FnMut(V, V) -> bool) {
    let mut at = start + 1;
    if work[at] == b'}' {
        return;
    }
    loop {
        let k_end = skip(work, at);
        let v_end = skip(work, k_end + 1);
        if !visit(V::Work(at, k_end), V::Work(k_end + 1, v_end)) || work[v_end] == b'}' {
            return;
        }
        at = v_end + 1;
    }
}

/// The end of the value at `work[at..]` (in the writer's form).
fn skip(work: &[u8], at: usize) -> usize {
    match work[at] {
        b'"' => skip_string(work, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match work[i] {
                    b'"' => {
                        i = skip_string(work, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while i < work.len() && !matches!(work[i], b',' | b'}' | b']') {
                i += 1;
            }
            i
        }
    }
}

/// The end of the string at `work[at..]` (after its closing quote).
fn skip_string(work: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    loop {
        match work[i] {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// `path = v` on the object of `fields`: a field replaced where it is, or added at the end;
/// below the first field, only into objects that are there.
fn set(work: &mut Vec<u8>, fields: &mut Vec<(V, V)>, path: &[Key], v: V) -> Option<()> {
    let (first, rest) = path.split_first()?;
    let at = fields.iter().position(|(k, _)| k.bytes(work) == first.0);
    if rest.is_empty() {
        match at {
            Some(i) => fields[i].1 = v,
            None => {
                let start = work.len();
                work.extend_from_slice(&first.0);
                fields.push((V::Work(start, work.len()), v));
            }
        }
        return Some(());
    }
    let i = at?;
    let inner = edit_object(work, fields[i].1, |work, inner| set(work, inner, rest, v))?;
    fields[i].1 = inner;
    Some(())
}

/// `del(path)` on the object of `fields`: a field removed as jaq removes it (the last field
/// takes its place); below the first field, only from objects that are there.
fn del(work: &mut Vec<u8>, fields: &mut Vec<(V, V)>, path: &[Key]) -> Option<()> {
    let (first, rest) = path.split_first()?;
    let at = fields.iter().position(|(k, _)| k.bytes(work) == first.0);
    if rest.is_empty() {
        if let Some(i) = at {
            fields.swap_remove(i);
        }
        return Some(());
    }
    let i = at?;
    let inner = edit_object(work, fields[i].1, |work, inner| del(work, inner, rest))?;
    fields[i].1 = inner;
    Some(())
}

/// The object `v` with `edit` done to its fields, written at the end of `work`; `None` when `v`
/// is not an object.
fn edit_object(
    work: &mut Vec<u8>,
    v: V,
    edit: impl FnOnce(&mut Vec<u8>, &mut Vec<(V, V)>) -> Option<()>,
) -> Option<V> {
    let V::Work(start, _) = v else { return None };
    if work[start] != b'{' {
        return None;
    }
    let mut inner = Vec::new();
    members(work, start, &mut inner);
    edit(work, &mut inner)?;
    let mut bytes = Vec::new();
    write_object(work, &inner, &mut bytes);
    let start = work.len();
    work.extend_from_slice(&bytes);
    Some(V::Work(start, work.len()))
}

/// Reads JSON and writes it in the writer's form, when it already is in that form but for
/// whitespace; `None` otherwise (or when it is not JSON).
struct Canon<'a> {
    src: &'a [u8],
    at: usize,
    out: &'a mut Vec<u8>,
    keys: &'a mut Vec<(usize, usize)>,
    number: &'a mut Vec<u8>,
}

impl Canon<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| {
            self.at += 1;
            self.out.push(b);
        })
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(depth + 1, None),
            b'[' => self.array(depth + 1),
            b'"' => self.string(),
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        self.src
            .get(self.at..self.at + w.len())
            .filter(|s| *s == w)?;
        self.at += w.len();
        self.out.extend_from_slice(w);
        Some(())
    }

    /// Opens an object or an array (`open`, `close`): `Some(true)` when it is empty (and
    /// closed), `None` past [`DEPTH_MAX`] or when it does not start there.
    fn open(&mut self, depth: usize, open: u8, close: u8) -> Option<bool> {
        if depth > DEPTH_MAX {
            return None;
        }
        self.expect(open)?;
        self.ws();
        if self.peek()? != close {
            return Some(false);
        }
        self.at += 1;
        self.out.push(close);
        Some(true)
    }

    fn object(&mut self, depth: usize, mut top: Option<&mut Vec<(V, V)>>) -> Option<()> {
        if self.open(depth, b'{', b'}')? {
            return Some(());
        }
        let base = self.keys.len();
        loop {
            self.ws();
            let k_start = self.out.len();
            if self.peek()? != b'"' {
                return None;
            }
            self.string()?;
            let k_end = self.out.len();
            self.expect(b':')?;
            let v_start = self.out.len();
            self.value(depth)?;
            let v_end = self.out.len();
            self.keys.push((k_start, k_end));
            if let Some(fields) = top.as_deref_mut() {
                fields.push((V::Work(k_start, k_end), V::Work(v_start, v_end)));
            }
            if self.separator(b'}')? {
                break;
            }
        }
        let keys = &self.keys[base..];
        let out = &self.out;
        let key = |&(s, e): &(usize, usize)| &out[s..e];
        let repeated = if keys.len() <= PAIRWISE_KEYS_MAX {
            keys.iter()
                .enumerate()
                .any(|(i, a)| keys[..i].iter().any(|b| key(a) == key(b)))
        } else {
            let mut sorted: Vec<&[u8]> = keys.iter().map(key).collect();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w[0] == w[1])
        };
        self.keys.truncate(base);
        (!repeated).then_some(())
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if self.open(depth, b'[', b']')? {
            return Some(());
        }
        loop {
            self.value(depth)?;
            if self.separator(b']')? {
                return Some(());
            }
        }
    }

    /// After a field or an item: `Some(false)` at a comma (more follows), `Some(true)` at
    /// `close`, `None` at anything else.
    fn separator(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        if b != b',' && b != close {
            return None;
        }
        self.at += 1;
        self.out.push(b);
        Some(b == close)
    }

    /// A string whose escapes are the ones serde_json writes: `\"`, `\\`, `\b`, `\f`, `\n`,
    /// `\r`, `\t`, and `\u00xx` (lower-case) for the other control characters.
    fn string(&mut self) -> Option<()> {
        let start = self.at;
        self.at += 1;
        let mut ascii = true;
        loop {
            match *self.src.get(self.at)? {
                b'"' => break,
                b'\\' => match *self.src.get(self.at + 1)? {
                    b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                    b'u' => {
                        let hex = self.src.get(self.at + 2..self.at + 6)?;
                        let lower = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
                        if hex[0] != b'0' || hex[1] != b'0' || !hex[2..].iter().all(lower) {
                            return None;
                        }
                        let c =
                            u8::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()?;
                        if c >= 0x20 || matches!(c, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                            return None;
                        }
                        self.at += 6;
                    }
                    _ => return None,
                },
                0..=0x1f => return None,
                b => {
                    ascii &= b < 0x80;
                    self.at += 1;
                }
            }
        }
        self.at += 1;
        let s = &self.src[start..self.at];
        if !ascii {
            std::str::from_utf8(s).ok()?;
        }
        self.out.extend_from_slice(s);
        Some(())
    }

    /// An integer that fits an `i64` (18 digits at most), or a float as serde_json writes it.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let digits = |c: &mut Canon| {
            let from = c.at;
            while let Some(b'0'..=b'9') = c.peek() {
                c.at += 1;
            }
            c.at - from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        let n = digits(self);
        if n == 0 || n > 1 && self.src[int_start] == b'0' {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.at += 1;
            float = true;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            float = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        let text = &self.src[start..self.at];
        if !float {
            if n > 18 || text == b"-0" {
                return None;
            }
        } else {
            let f: f64 = serde_json::from_slice(text).ok()?;
            self.number.clear();
            serde_json::to_writer(&mut *self.number, &f).ok()?;
            if self.number.as_slice() != text {
                return None;
            }
        }
        self.out.extend_from_slice(text);
        Some(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    /// `.` followed by names (none for `.` alone).
    Path(Vec<String>),
    Var(Var),
    Str(String),
    Int(i64),
    Word(&'static str),
    Op(Op),
    Assign,
}

/// Names jq gives a meaning of its own (not plain field names after `.`).
const KEYWORDS: &[&str] = &[
    "and", "or", "not", "if", "then", "elif", "else", "end", "as", "def", "reduce", "foreach",
    "try", "catch", "label", "import", "include", "__loc__", "true", "false", "null",
];

const WORDS: &[&str] = &[
    "select", "del", "now", "and", "or", "not", "true", "false", "null",
];

fn tokens(source: &str) -> Option<Vec<Tok>> {
    let s = source.as_bytes();
    let mut at = 0;
    let mut out = Vec::new();
    let name_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let name = |at: &mut usize| {
        let from = *at;
        while *at < s.len() && name_char(s[*at]) {
            *at += 1;
        }
        &source[from..*at]
    };
    while at < s.len() {
        let b = s[at];
        let next = s.get(at + 1).copied();
        let tok = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                at += 1;
                continue;
            }
            b'|' if next == Some(b'=') => return None,
            b'|' => {
                at += 1;
                Tok::Pipe
            }
            b'(' => {
                at += 1;
                Tok::Open
            }
            b')' => {
                at += 1;
                Tok::Close
            }
            b'.' => {
                let mut names = Vec::new();
                at += 1;
                if s.get(at).is_some_and(|&b| name_start(b)) {
                    loop {
                        let n = name(&mut at);
                        if KEYWORDS.contains(&n) {
                            return None;
                        }
                        names.push(n.to_string());
                        match (s.get(at), s.get(at + 1)) {
                            (Some(b'.'), Some(&b)) if name_start(b) => at += 1,
                            _ => break,
                        }
                    }
                }
                // `.[`, `..`, `."a"`, `.a?`, `.a[0]`, `.a.[`...: not a plain path.
                if matches!(s.get(at), Some(b'.' | b'[' | b'"' | b'?' | b'$'))
                    || s.get(at).is_some_and(|&b| name_char(b))
                {
                    return None;
                }
                Tok::Path(names)
            }
            b'$' => {
                at += 1;
                let var = match name(&mut at) {
                    "partition_key" => Var::PartitionKey,
                    "sequence_number" => Var::SequenceNumber,
                    "arrival_ms" => Var::ArrivalMs,
                    "shard_id" => Var::ShardId,
                    "stream" => Var::Stream,
                    _ => return None,
                };
                Tok::Var(var)
            }
            b'"' => {
                let end = at + 1 + s[at + 1..].iter().position(|&b| b == b'"')?;
                let text = &s[at + 1..end];
                if text.iter().any(|&b| b == b'\\' || b < 0x20) {
                    return None;
                }
                at = end + 1;
                Tok::Str(std::str::from_utf8(text).ok()?.to_string())
            }
            b'-' | b'0'..=b'9' => {
                let from = at;
                if b == b'-' {
                    at += 1;
                }
                let digits = at;
                while at < s.len() && s[at].is_ascii_digit() {
                    at += 1;
                }
                let n = at - digits;
                if n == 0 || n > 18 || n > 1 && s[digits] == b'0' {
                    return None;
                }
                if s.get(at).is_some_and(|&b| name_char(b) || b == b'.') {
                    return None;
                }
                let i: i64 = source[from..at].parse().ok()?;
                if i == 0 && b == b'-' {
                    return None;
                }
                Tok::Int(i)
            }
            b'=' if next == Some(b'=') => {
                at += 2;
                Tok::Op(Op::Eq)
            }
            b'=' => {
                at += 1;
                Tok::Assign
            }
            b'!' if next == Some(b'=') => {
                at += 2;
                Tok::Op(Op::Ne)
            }
            b'<' | b'>' => {
                let eq = next == Some(b'=');
                at += 1 + usize::from(eq);
                Tok::Op(match (b, eq) {
                    (b'<', false) => Op::Lt,
                    (b'<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    _ => Op::Ge,
                })
            }
            b if name_start(b) => {
                let n = name(&mut at);
                if s.get(at) == Some(&b':') {
                    return None;
                }
                Tok::Word(WORDS.iter().find(|w| **w == n)?)
            }
            _ => return None,
        };
        out.push(tok);
    }
    Some(out)
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, t: &Tok) -> Option<()> {
        (self.next()? == *t).then_some(())
    }

    /// One stage; `Ok(None)` for `.`. The outer `None` is a program this module does not know.
    fn stage(&mut self) -> Option<Option<Stage>> {
        match self.next()? {
            Tok::Path(names) if names.is_empty() => Some(None),
            Tok::Path(names) => {
                self.eat(&Tok::Assign)?;
                let v = self.operand()?;
                Some(Some(Stage::Set(keys(&names), v)))
            }
            Tok::Word("select") => {
                self.eat(&Tok::Open)?;
                let c = self.negated()?;
                self.eat(&Tok::Close)?;
                Some(Some(Stage::Select(c)))
            }
            Tok::Word("del") => {
                self.eat(&Tok::Open)?;
                let Tok::Path(names) = self.next()? else {
                    return None;
                };
                if names.is_empty() {
                    return None;
                }
                self.eat(&Tok::Close)?;
                Some(Some(Stage::Del(keys(&names))))
            }
            _ => None,
        }
    }

    /// `COND (| not)*`
    fn negated(&mut self) -> Option<Cond> {
        let mut c = self.or()?;
        while self.peek() == Some(&Tok::Pipe) {
            self.at += 1;
            self.eat(&Tok::Word("not"))?;
            c = Cond::Not(Box::new(c));
        }
        Some(c)
    }

    fn or(&mut self) -> Option<Cond> {
        self.chain("or", Parser::and, Cond::Or)
    }

    fn and(&mut self) -> Option<Cond> {
        self.chain("and", Parser::cmp, Cond::And)
    }

    /// `next (word next)*`, grouped from the left (`and` and `or` are left-associative).
    fn chain(
        &mut self,
        word: &'static str,
        next: fn(&mut Parser) -> Option<Cond>,
        join: fn(Box<Cond>, Box<Cond>) -> Cond,
    ) -> Option<Cond> {
        let mut c = next(self)?;
        while self.peek() == Some(&Tok::Word(word)) {
            self.at += 1;
            c = join(Box::new(c), Box::new(next(self)?));
        }
        Some(c)
    }

    fn cmp(&mut self) -> Option<Cond> {
        if self.peek() == Some(&Tok::Open) {
            self.at += 1;
            let c = self.negated()?;
            self.eat(&Tok::Close)?;
            // `(a) == b` compares what `(a)` gives, a boolean: not known here.
            if matches!(self.peek(), Some(Tok::Op(_))) {
                return None;
            }
            return Some(c);
        }
        let a = self.operand()?;
        match self.peek() {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.at += 1;
                let b = self.operand()?;
                if matches!(self.peek(), Some(Tok::Op(_))) {
                    return None;
                }
                Some(Cond::Cmp(a, op, b))
            }
            _ => Some(Cond::Truth(a)),
        }
    }

    fn operand(&mut self) -> Option<Operand> {
        Some(match self.next()? {
            Tok::Path(names) if !names.is_empty() => Operand::Path(keys(&names)),
            Tok::Str(s) => Operand::Lit(serde_json::to_vec(&s).ok()?),
            Tok::Int(i) => Operand::Lit(i.to_string().into_bytes()),
            Tok::Word(w @ ("true" | "false" | "null")) => Operand::Lit(w.as_bytes().to_vec()),
            Tok::Word("now") => Operand::Now,
            Tok::Var(v) => Operand::Var(v),
            _ => return None,
        })
    }
}

fn keys(names: &[String]) -> Vec<Key> {
    names
        .iter()
        .map(|n| Key(serde_json::to_vec(n).unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::program::{Program, Vars};
    use crate::transform::{BatchRun, Output, Transform};

    fn record(key: &str, data: &[u8]) -> (Record, Vars) {
        let r = Record {
            sequence_number: sluice_streams::SequenceNumber::of_record(3, 0, 7),
            partition_key: key.to_string(),
            data: Bytes::copy_from_slice(data),
            arrival_ms: 1_700_000_000_123,
        };
        let vars = Vars {
            partition_key: key.to_string(),
            sequence_number: r.sequence_number.to_string(),
            arrival_ms: r.arrival_ms,
            shard_id: "shardId-000000000001".into(),
            stream: "src".into(),
        };
        (r, vars)
    }

    /// What the batch path (with the plan) gives for `data`, and what the whole program gives.
    fn both(
        program: &str,
        data: &[u8],
    ) -> (Result<Vec<Output>, String>, Result<Vec<Output>, String>) {
        let t = Transform::new(Program::compile(program).unwrap(), None);
        let (r, vars) = record("key-é", data);
        let want = t.apply(data, &vars).map_err(|e| e.to_string());
        let mut run = BatchRun::new(&t, "src", "shardId-000000000001");
        let mut out = Vec::new();
        let got = run
            .apply(&r, &mut out)
            .map(|()| {
                out.iter()
                    .map(|(k, d)| Output {
                        partition_key: String::from_utf8(k.to_vec()).unwrap(),
                        data: d.to_vec(),
                    })
                    .collect()
            })
            .map_err(|e| e.to_string());
        (got, want)
    }

    fn step(program: &str, data: &[u8]) -> (Step, String) {
        let plan = Plan::new(program).expect(program);
        let (r, _) = record("k", data);
        let cx = Context {
            record: &r,
            shard_id: br#""shardId-000000000001""#,
            stream: br#""src""#,
        };
        let mut out = Vec::new();
        let step = plan.apply(data, &cx, &mut Scratch::default(), &mut out);
        (step, String::from_utf8(out).unwrap())
    }

    #[test]
    fn knows_filters_and_field_edits() {
        for p in [
            ".",
            r#"select(.kind == "click") | .processed_at = now"#,
            r#"select(.kind == "click" and .id > 3 or (.x | not)) | .a.b = $partition_key"#,
            "del(.pad) | .seq = $sequence_number | .at = $arrival_ms | .s = $shard_id",
            ".copy = .nested.value | select(.n != null) | select(.n <= -2 | not | not)",
            "select(true) | .stream = $stream | del(.a.b)",
        ] {
            assert!(Plan::new(p).is_some(), "{p}");
        }
        for p in [
            ".a",
            ".a |= 1",
            ".a = 1 + 1",
            ".a = (1)",
            ".[0]",
            ".a[]",
            ".a?",
            r#"."a" = 1"#,
            ".a.[0] = 1",
            "..",
            ".a = 1.5",
            ".a = -0",
            r#".a = "x\n""#,
            r#".a = "\(.b)""#,
            "select(.a == 1 == 2)",
            "select((.a == 1) == true)",
            "select(.a) // 1",
            ".a = 1, .b = 2",
            "not",
            "1 as $x | .",
            ".a = $x",
            ".a = $__loc__",
            ".a = length",
            ".if = 1",
            ".a.and = 1",
            "def f: .; f",
            ". # comment",
            "select(.a == 1) | .b = now | .c",
            "{a: 1}",
            "empty",
            "del(.)",
            ". = 1",
            "select(.a == 01)",
            ".a = 1e3",
            "@base64",
            "$ENV",
        ] {
            assert!(Plan::new(p).is_none(), "{p}");
        }
    }

    #[test]
    fn records_in_the_writers_form_take_the_plan() {
        let p = r#"select(.kind == "click") | .processed_at = 1"#;
        let (s, out) = step(p, br#"{"id":7,"kind":"click","pad":"xx"}"#);
        assert_eq!(
            (s, out.as_str()),
            (
                Step::Output,
                r#"{"id":7,"kind":"click","pad":"xx","processed_at":1}"#
            )
        );
        // Whitespace is dropped; a field set in place stays in its place.
        let (s, out) = step(
            p,
            b" {\"processed_at\": 0,\n \"kind\" : \"click\", \"t\":\"\\u0001\\n\\\"\"} ",
        );
        assert_eq!(
            (s, out.as_str()),
            (
                Step::Output,
                r#"{"processed_at":1,"kind":"click","t":"\u0001\n\""}"#
            )
        );
        assert_eq!(step(p, br#"{"kind":"view"}"#).0, Step::Dropped);
        assert_eq!(
            step(p, br#"{"kind":"click","f":1.5,"e":[1,{"a":null}]}"#).0,
            Step::Output
        );
        // What the writer would write otherwise, and what jq would fail on, go the whole way.
        for data in [
            br#"{"kind":"cl\u0069ck"}"#.as_slice(),
            br#"{"kind":"click","f":1.50}"#,
            br#"{"kind":"click","f":1e5}"#,
            br#"{"kind":"click","n":-0}"#,
            br#"{"kind":"click","n":12345678901234567890}"#,
            br#"{"kind":"click","s":"a\/b"}"#,
            br#"{"kind":"click","kind":"click"}"#,
            br#"{"kind":"click","o":{"a":1,"a":2}}"#,
            br#"["kind"]"#,
            b"null",
            b"",
            br#"{"kind":"click"} x"#,
            b"{\"kind\":\"click\",\"s\":\"\xff\"}",
        ] {
            assert_eq!(
                step(p, data).0,
                Step::Whole,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(step(p, deep.as_bytes()).0, Step::Whole);
        // A field of a string is an error in jq: the whole program says which.
        assert_eq!(
            step("select(.kind.x)", br#"{"kind":"click"}"#).0,
            Step::Whole
        );
        // Comparing floats, or ordering other than integers, is left to jq.
        assert_eq!(step("select(.f == 1)", br#"{"f":1.5}"#).0, Step::Whole);
        assert_eq!(step(r#"select(.s < "b")"#, br#"{"s":"a"}"#).0, Step::Whole);
    }

    #[test]
    fn now_is_the_time_as_jq_writes_it() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let (s, out) = step(".t = now", br#"{"a":1}"#);
        assert_eq!(s, Step::Output);
        let text = out
            .strip_prefix(r#"{"a":1,"t":"#)
            .and_then(|t| t.strip_suffix('}'))
            .unwrap();
        let t: f64 = text.parse().unwrap();
        assert!(t >= before && t < before + 60.0, "{out}");
        // As the writer writes an f64.
        assert_eq!(text, serde_json::to_string(&t).unwrap());
    }

    #[test]
    fn examples_agree_with_jq() {
        let records: &[&[u8]] = &[
            br#"{"id":1,"kind":"click","pad":"xx","a":{"b":2,"c":[1,2]},"n":-5}"#,
            r#"{"kind":"view","a":null,"n":3,"pad":"é😀"}"#.as_bytes(),
            br#"{"a":{"b":{"c":true}},"kind":"click","last":0}"#,
            br#"{"a":"str","kind":"click"}"#,
            br#"{}"#,
        ];
        let programs = [
            ".",
            "del(.kind)",
            "del(.a.b)",
            "del(.nope)",
            "del(.a.nope)",
            ".a.b = 1",
            ".a.x.y = 1",
            ".new.x = 1",
            ".a = .a.b",
            ".kind = .n",
            "select(.a.b.c)",
            "select(.a.b == 2)",
            "select(.n < 0)",
            "select(.n >= 3 and .kind != \"click\")",
            "select(.a == null or .a.b == {})",
            "select(.kind == .kind)",
            ".k = $partition_key | .s = $sequence_number | .m = $arrival_ms | .h = $shard_id | .t = $stream",
            "del(.id) | del(.kind) | .id = 2",
        ];
        for p in programs {
            for data in records {
                let (got, want) = both(p, data);
                assert_eq!(got, want, "{p} on {}", String::from_utf8_lossy(data));
            }
        }
    }

    fn scalar() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            6 => Just("null".to_string()),
            3 => Just("true".to_string()),
            3 => Just("false".to_string()),
            12 => (-5i64..5).prop_map(|i| i.to_string()),
            3 => any::<i64>().prop_map(|i| i.to_string()),
            // In the writer's form.
            12 => prop::sample::select(vec![
                r#""click""#, r#""view""#, r#""""#, r#""a\nb""#, r#""\u001f""#, r#""é😀""#,
                r#""\t\"\\""#, r#""\b\f\r""#, "\"\u{7f}\"", "1.5", "0.1", "2.0", "-0.0",
            ])
            .prop_map(str::to_string),
            // Not in the writer's form, or not JSON.
            1 => prop::sample::select(vec![
                "-0", "1.50", "1e5", "1E2", "100000000000000000000", "1e400", "01", "-", "1.",
                ".5", r#""cl\u0069ck""#, r#""\u001F""#, r#""\/""#, r#""\ud83d\ude00""#,
                r#""\u0008""#, r#""\x""#,
            ])
            .prop_map(str::to_string),
        ]
    }

    const KEYS: [&str; 10] = ["kind", "a", "b", "n", "id", "x", "k\u{e9}", "p", "q", "r"];

    /// Field names: distinct mostly, sometimes repeated.
    fn names() -> impl Strategy<Value = Vec<&'static str>> + Clone {
        prop_oneof![
            6 => prop::sample::subsequence(KEYS.to_vec(), 0..6).prop_shuffle(),
            1 => prop::collection::vec(prop::sample::select(KEYS.to_vec()), 0..6),
        ]
    }

    fn object(
        values: impl Strategy<Value = String> + Clone,
    ) -> impl Strategy<Value = String> + Clone {
        let ws = prop::sample::select(vec!["", "", "", " ", "\n\t"]);
        names()
            .prop_flat_map(move |names| {
                let n = names.len();
                (
                    Just(names),
                    prop::collection::vec((values.clone(), ws.clone()), n),
                )
            })
            .prop_map(|(names, values)| {
                let fields: Vec<String> = names
                    .into_iter()
                    .zip(values)
                    .map(|(k, (v, w))| format!("{w}\"{k}\"{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            })
    }

    fn json() -> impl Strategy<Value = String> + Clone {
        let ws = prop::sample::select(vec!["", "", "", " ", "\n\t"]);
        scalar().prop_recursive(3, 24, 5, move |inner| {
            let ws = ws.clone();
            prop_oneof![
                prop::collection::vec((inner.clone(), ws), 0..4).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, w)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                object(inner),
            ]
        })
    }

    /// Top-level objects mostly.
    fn document() -> impl Strategy<Value = String> {
        prop_oneof![6 => object(json()), 1 => json()]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["kind", "a", "b", "n", "id", "x"]),
            1..3,
        )
        .prop_map(|names| format!(".{}", names.join(".")))
    }

    fn operand() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => path(),
            2 => prop::sample::select(vec![
                r#""click""#, r#""view""#, "1", "-3", "0", "true", "false", "null",
                "$partition_key", "$sequence_number", "$arrival_ms", "$shard_id", "$stream",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn cond() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
        let leaf = prop_oneof![
            (operand(), op, operand()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            operand(),
        ];
        leaf.prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or {b}")),
                inner.prop_map(|a| format!("({a} | not)")),
            ]
        })
    }

    fn program() -> impl Strategy<Value = String> {
        let stage = prop_oneof![
            Just(".".to_string()),
            cond().prop_map(|c| format!("select({c})")),
            (path(), operand()).prop_map(|(p, o)| format!("{p} = {o}")),
            path().prop_map(|p| format!("del({p})")),
        ];
        prop::collection::vec(stage, 1..4).prop_map(|s| s.join(" | "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The batch path with the plan gives what jaq gives, output for output, error for
        /// error.
        #[test]
        fn the_plan_agrees_with_jq(p in program(), data in document()) {
            prop_assert!(Plan::new(&p).is_some(), "{}", p);
            let (got, want) = both(&p, data.as_bytes());
            prop_assert_eq!(got, want, "{} on {}", p, data);
        }
    }

    /// A good share of the generated cases take the plan (so the property is about it, not
    /// about jaq agreeing with itself); the others are records or programs it leaves to jaq.
    #[test]
    fn many_generated_cases_take_the_plan() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut planned, mut all) = (0, 0);
        for _ in 0..2000 {
            let p = program().new_tree(&mut runner).unwrap().current();
            let data = document().new_tree(&mut runner).unwrap().current();
            let (got, want) = both(&p, data.as_bytes());
            assert_eq!(got, want, "{p} on {data}");
            all += 1;
            if step(&p, data.as_bytes()).0 != Step::Whole {
                planned += 1;
            }
        }
        assert!(planned * 4 >= all, "{planned} of {all} cases took the plan");
    }
}
