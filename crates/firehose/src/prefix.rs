//! Object keys as Firehose writes them: `<evaluated prefix><suffix>`, where the prefix may hold
//! `!{namespace:value}` expressions ("Custom Prefixes for Amazon S3 Objects") and the suffix is
//! `<delivery stream name>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><file extension>`.
//!
//! - [`Template::parse`] reads a `Prefix` or `ErrorOutputPrefix` once, at CreateDeliveryStream
//!   or UpdateDestination, checking each expression: `!{timestamp:<pattern>}` (a subset of
//!   Java's `DateTimeFormatter`: `y u M d D H h k m s S a E` and `'quoted text'`),
//!   `!{firehose:random-string}` (11 characters, new at each instance),
//!   `!{firehose:error-output-type}` (error prefixes only), `!{partitionKeyFromQuery:key}` and
//!   `!{partitionKeyFromLambda:key}`. Outside an expression `!{` may not appear.
//! - [`Template::evaluate`] fills a template for one object: every timestamp expression is the
//!   same instant (the arrival of the object's oldest record), in UTC.
//! - [`object_suffix`] is the part of the key Firehose always adds.
//!
//! A prefix with no expression at all gets `yyyy/MM/dd/HH/` appended (literally, no `/` is
//! added before it); an empty error prefix is `<prefix><error-output-type>/yyyy/MM/dd/HH/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::Rng;

use crate::limits;

/// One item of a timestamp pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeItem {
    Literal(String),
    /// A pattern letter and how many times it was repeated.
    Field(char, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Timestamp(Vec<TimeItem>),
    RandomString,
    ErrorOutputType,
    KeyFromQuery(String),
    KeyFromLambda(String),
}

/// A parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What one evaluation knows.
#[derive(Debug, Clone, Copy)]
pub struct Eval<'a> {
    /// The instant of every timestamp expression (ms since the epoch).
    pub time_ms: i64,
    /// What `!{firehose:error-output-type}` evaluates to (error prefixes).
    pub error_output_type: Option<&'a str>,
    /// Partition keys from the MetadataExtraction query.
    pub query_keys: &'a BTreeMap<String, String>,
    /// Partition keys from the Lambda processor's `metadata.partitionKeys`.
    pub lambda_keys: &'a BTreeMap<String, String>,
}

const DEFAULT_TIME_PATTERN: &str = "yyyy/MM/dd/HH/";

impl Template {
    /// The empty prefix.
    pub fn empty() -> Template {
        Template { parts: Vec::new() }
    }

    /// Parses a prefix. The error is the InvalidArgumentException message.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("!{") {
            if at > 0 {
                parts.push(Part::Literal(rest[..at].to_string()));
            }
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or_else(|| {
                format!("The expression {} is not closed with '}}'.", &rest[at..])
            })?;
            let expr = &after[..end];
            parts.push(parse_expression(expr)?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// `yyyy/MM/dd/HH/` (what an absent or expression-free prefix gets).
    fn default_time() -> Part {
        Part::Timestamp(parse_time_pattern(DEFAULT_TIME_PATTERN).unwrap_or_default())
    }

    /// The prefix objects are written under: this template, with `yyyy/MM/dd/HH/` appended
    /// when it has no expression at all.
    pub fn for_objects(mut self) -> Template {
        if !self.has_expressions() {
            self.parts.push(Self::default_time());
        }
        self
    }

    /// The error prefix when `ErrorOutputPrefix` is empty: the (expression-free) prefix, then
    /// the error output type, then `/yyyy/MM/dd/HH/`.
    pub fn default_errors(prefix: &Template) -> Template {
        let mut parts: Vec<Part> = prefix.parts.clone();
        parts.push(Part::ErrorOutputType);
        parts.push(Part::Literal("/".into()));
        parts.push(Self::default_time());
        Template { parts }
    }

    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    pub fn has_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    pub fn has_error_output_type(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::ErrorOutputType))
    }

    /// The keys of `!{partitionKeyFromQuery:...}` and `!{partitionKeyFromLambda:...}`.
    pub fn partition_keys(&self) -> (Vec<&str>, Vec<&str>) {
        let mut query = Vec::new();
        let mut lambda = Vec::new();
        for p in &self.parts {
            match p {
                Part::KeyFromQuery(k) => query.push(k.as_str()),
                Part::KeyFromLambda(k) => lambda.push(k.as_str()),
                _ => {}
            }
        }
        (query, lambda)
    }

    /// The prefix for one object. Fails when a partition key is missing or the result is
    /// longer than 512 characters (the record then goes to the error output).
    pub fn evaluate(&self, e: &Eval<'_>) -> Result<String, String> {
        let c = sluice_aws::civil::from_ms(e.time_ms);
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(items) => format_time(&mut out, items, &c, e.time_ms),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(e.error_output_type.unwrap_or("")),
                Part::KeyFromQuery(k) => out.push_str(e.query_keys.get(k).ok_or_else(|| {
                    format!("The partition key {k} was not found in the metadata extracted from the record.")
                })?),
                Part::KeyFromLambda(k) => out.push_str(e.lambda_keys.get(k).ok_or_else(|| {
                    format!("The partition key {k} was not found in the partitionKeys the Lambda function returned.")
                })?),
            }
        }
        if out.chars().count() > limits::EVALUATED_PREFIX_CHARS_MAX {
            return Err(format!(
                "The evaluated prefix is longer than {} characters.",
                limits::EVALUATED_PREFIX_CHARS_MAX
            ));
        }
        Ok(out)
    }
}

fn parse_expression(expr: &str) -> Result<Part, String> {
    let shown = || format!("!{{{expr}}}");
    let (namespace, value) = expr.split_once(':').ok_or_else(|| {
        format!(
            "The expression {} must have the form !{{namespace:value}}.",
            shown()
        )
    })?;
    match namespace {
        "timestamp" => parse_time_pattern(value)
            .map(Part::Timestamp)
            .map_err(|e| format!("The expression {} is not a valid timestamp pattern: {e}", shown())),
        "firehose" => match value {
            "random-string" => Ok(Part::RandomString),
            "error-output-type" => Ok(Part::ErrorOutputType),
            _ => Err(format!(
                "The expression {} is not supported: the firehose namespace takes random-string or error-output-type.",
                shown()
            )),
        },
        "partitionKeyFromQuery" | "partitionKeyFromLambda" => {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(format!("The expression {} names no partition key.", shown()));
            }
            Ok(if namespace == "partitionKeyFromQuery" {
                Part::KeyFromQuery(value.to_string())
            } else {
                Part::KeyFromLambda(value.to_string())
            })
        }
        _ => Err(format!(
            "The expression {} has an unsupported namespace: use timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda.",
            shown()
        )),
    }
}

/// The pattern letters sluice evaluates.
const PATTERN_LETTERS: &str = "yuMdDHhkmsSaE";

fn parse_time_pattern(p: &str) -> Result<Vec<TimeItem>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'text' is literal; '' is a quote.
            let mut text = String::new();
            i += 1;
            if i < chars.len() && chars[i] == '\'' {
                items.push(TimeItem::Literal("'".into()));
                i += 1;
                continue;
            }
            loop {
                match chars.get(i) {
                    None => return Err("a quote is not closed".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            items.push(TimeItem::Literal(text));
        } else if c.is_ascii_alphabetic() {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            if !PATTERN_LETTERS.contains(c) {
                return Err(format!("the pattern letter '{c}' is not supported"));
            }
            if n > 4 && c != 'S' {
                return Err(format!("too many pattern letters: '{c}'"));
            }
            items.push(TimeItem::Field(c, n));
            i += n;
        } else if matches!(c, '#' | '{' | '}' | '[' | ']') {
            return Err(format!("'{c}' is reserved for future use"));
        } else {
            items.push(TimeItem::Literal(c.to_string()));
            i += 1;
        }
    }
    Ok(items)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS_FROM_THURSDAY: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

fn format_time(out: &mut String, items: &[TimeItem], c: &sluice_aws::civil::Civil, ms: i64) {
    for item in items {
        match item {
            TimeItem::Literal(s) => out.push_str(s),
            TimeItem::Field(letter, n) => {
                let n = *n;
                let num = |out: &mut String, v: i64, width: usize| {
                    let _ = write!(out, "{v:0width$}");
                };
                match letter {
                    'y' | 'u' if n == 2 => num(out, c.year.rem_euclid(100), 2),
                    'y' | 'u' => num(out, c.year, n),
                    'M' if n == 3 => out.push_str(&MONTHS[(c.month - 1) as usize % 12][..3]),
                    'M' if n == 4 => out.push_str(MONTHS[(c.month - 1) as usize % 12]),
                    'M' => num(out, c.month, n),
                    'd' => num(out, c.day, n),
                    'D' => {
                        let jan1 = sluice_aws::civil::to_ms(c.year, 1, 1, 0, 0, 0);
                        num(out, (ms - jan1).div_euclid(86_400_000) + 1, n)
                    }
                    'H' => num(out, c.hour, n),
                    'k' => num(out, if c.hour == 0 { 24 } else { c.hour }, n),
                    'h' => num(out, if c.hour % 12 == 0 { 12 } else { c.hour % 12 }, n),
                    'm' => num(out, c.minute, n),
                    's' => num(out, c.second, n),
                    'S' => {
                        // Fraction of the second, to n digits.
                        let millis = format!("{:03}", ms.rem_euclid(1000));
                        let mut digits: String = millis.chars().take(n).collect();
                        while digits.len() < n {
                            digits.push('0');
                        }
                        out.push_str(&digits);
                    }
                    'a' => out.push_str(if c.hour < 12 { "AM" } else { "PM" }),
                    'E' => {
                        let day = DAYS_FROM_THURSDAY[c.weekday_from_thursday as usize % 7];
                        out.push_str(if n == 4 { day } else { &day[..3] });
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `!{firehose:random-string}`: 11 characters of `[0-9a-z]`.
fn random_string() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..limits::RANDOM_STRING_CHARS)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

/// `<name>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`, the time in UTC.
pub fn object_suffix(name: &str, version: u64, time_ms: i64, extension: &str) -> String {
    let c = sluice_aws::civil::from_ms(time_ms);
    format!(
        "{name}-{version}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{}{extension}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        uuid_v4()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2018-08-27T10:30:05.123Z
    const T: i64 = 1_535_365_805_123;

    fn eval(t: &Template, error: Option<&str>) -> String {
        let none = BTreeMap::new();
        t.evaluate(&Eval {
            time_ms: T,
            error_output_type: error,
            query_keys: &none,
            lambda_keys: &none,
        })
        .unwrap()
    }

    #[test]
    fn the_default_prefix_is_appended_only_without_expressions() {
        assert_eq!(
            eval(&Template::parse("").unwrap().for_objects(), None),
            "2018/08/27/10/"
        );
        assert_eq!(
            eval(
                &Template::parse("myFirehosePrefix").unwrap().for_objects(),
                None
            ),
            "myFirehosePrefix2018/08/27/10/"
        );
        let t = Template::parse("p/!{firehose:random-string}/")
            .unwrap()
            .for_objects();
        let s = eval(&t, None);
        assert!(s.starts_with("p/") && s.len() == 2 + 11 + 1, "{s}");
    }

    #[test]
    fn the_examples_of_the_developer_guide() {
        let t = Template::parse(
            "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
        )
        .unwrap();
        assert_eq!(
            eval(&t, None),
            "myPrefix/year=2018/month=08/day=27/hour=10/"
        );
        let e = Template::parse(
            "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
        )
        .unwrap();
        assert_eq!(
            eval(&e, Some("processing-failed")),
            "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed"
        );
        let d = Template::default_errors(&Template::parse("myFirehosePrefix/").unwrap());
        assert_eq!(
            eval(&d, Some("processing-failed")),
            "myFirehosePrefix/processing-failed/2018/08/27/10/"
        );
        let t = Template::parse("!{timestamp:yy-M-d H:mm:ss.SSS a EEE MMM D}").unwrap();
        assert_eq!(eval(&t, None), "18-8-27 10:30:05.123 AM Mon Aug 239");
        let t = Template::parse("!{timestamp:yyyy''MM}").unwrap();
        assert_eq!(eval(&t, None), "2018'08");
    }

    #[test]
    fn bad_expressions_are_refused() {
        for bad in [
            "a/!{timestamp:yyyy",
            "!{nope:x}",
            "!{firehose:other}",
            "!{timestamp:yyyy'}",
            "!{timestamp:qq}",
            "!{noColon}",
            "!{partitionKeyFromQuery:}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partition_keys_are_filled_in() {
        let t = Template::parse(
            "c=!{partitionKeyFromQuery:customer_id}/l=!{partitionKeyFromLambda:x}/",
        )
        .unwrap();
        assert_eq!(t.partition_keys(), (vec!["customer_id"], vec!["x"]));
        let q = BTreeMap::from([("customer_id".to_string(), "42".to_string())]);
        let l = BTreeMap::from([("x".to_string(), "y".to_string())]);
        let e = Eval {
            time_ms: T,
            error_output_type: None,
            query_keys: &q,
            lambda_keys: &l,
        };
        assert_eq!(t.evaluate(&e).unwrap(), "c=42/l=y/");
        let e = Eval {
            lambda_keys: &q,
            ..e
        };
        assert!(t.evaluate(&e).is_err());
    }

    #[test]
    fn object_names_follow_firehose() {
        let s = object_suffix("stream", 3, T, ".gz");
        let (head, uuid) = s.split_at("stream-3-2018-08-27-10-30-05-".len());
        assert_eq!(head, "stream-3-2018-08-27-10-30-05-");
        assert_eq!(uuid.len(), 36 + 3);
        assert!(uuid.ends_with(".gz"));
        assert_eq!(&uuid[14..15], "4");
    }
}
