//! Kinesis's own patterns (stream names, hash keys, sequence numbers, ARNs); the generic
//! [`Validator`] with AWS's ValidationException wording is `sluice_aws::validate`.

pub use sluice_aws::validate::{show_blob, Validator};

pub fn is_stream_name(s: &str) -> bool {
    sluice_aws::validate::is_resource_name(s)
}

/// `0|([1-9]\d{0,38})` for hash keys, `0|([1-9]\d{0,128})` for sequence numbers.
fn is_decimal(s: &str, digits_max: usize) -> bool {
    s == "0"
        || (!s.is_empty()
            && s.len() <= digits_max
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit()))
}

pub fn is_hash_key(s: &str) -> bool {
    is_decimal(s, 39)
}

pub fn is_sequence_number(s: &str) -> bool {
    is_decimal(s, 129)
}

/// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`
pub fn is_stream_arn(s: &str) -> bool {
    parse_stream_arn(s).is_some()
}

/// The (account, stream name) of a stream ARN.
pub fn parse_stream_arn(s: &str) -> Option<(&str, &str)> {
    let mut parts = s.splitn(6, ':');
    let (arn, partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" || !partition.starts_with("aws") || service != "kinesis" {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = resource.strip_prefix("stream/")?;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return None;
    }
    Some((account, name))
}

/// The one check of the characters of tag keys and values, for every operation that takes
/// tags or tag keys: AWS's tag pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@%]*)$` (letters, digits,
/// space separators and `_ . : / = + - @ %`; not TAB, LF or other control characters), with
/// AWS's InvalidArgumentException text (which does not list `:`, though AWS accepts it).
pub fn check_tag_characters<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<(), sluice_aws::ApiError> {
    if texts.into_iter().all(|t| t.chars().all(is_tag_char)) {
        return Ok(());
    }
    Err(sluice_aws::ApiError::invalid_argument(
        "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
    ))
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@%]`. Letters are Unicode Alphabetic (`\p{L}` and the letter
/// numbers and combining vowel signs that belong to words; std has no general-category test),
/// digits are `\p{N}` exactly, and white space is `\p{Z}`: the space separators, U+2028 and
/// U+2029; not `char::is_whitespace`, which admits TAB, LF, CR and the other controls.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || matches!(
            c,
            ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
        )
        || "_.:/=+-@%".contains(c)
}

/// A consumer ARN's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerArn<'a> {
    pub account: &'a str,
    pub stream: &'a str,
    pub consumer: &'a str,
    pub created_secs: i64,
}

/// `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`
pub fn parse_consumer_arn(s: &str) -> Option<ConsumerArn<'_>> {
    let (account, resource) = parse_stream_arn(s)?;
    let (stream, rest) = resource.split_once("/consumer/")?;
    let (consumer, secs) = rest.rsplit_once(':')?;
    if !is_stream_name(stream) || !is_stream_name(consumer) || secs.is_empty() {
        return None;
    }
    if !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ConsumerArn {
        account,
        stream,
        consumer,
        created_secs: secs.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_hash_key("0") && is_hash_key("340282366920938463463374607431768211455"));
        assert!(!is_hash_key("01") && !is_hash_key("-1") && !is_hash_key("1".repeat(40).as_str()));
        assert_eq!(
            parse_stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/MyStream"),
            Some(("000000000000", "MyStream"))
        );
        assert_eq!(
            parse_stream_arn("arn:aws:kinesis:us-east-1:0000:stream/MyStream"),
            None
        );
        assert_eq!(
            parse_stream_arn("arn:aws:s3:us-east-1:000000000000:stream/MyStream"),
            None
        );
        let c = parse_consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/app.one:1700000000",
        )
        .unwrap();
        assert_eq!(
            (c.stream, c.consumer, c.created_secs),
            ("s1", "app.one", 1_700_000_000)
        );
        assert!(parse_consumer_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s1").is_none());
        assert!(parse_consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:x"
        )
        .is_none());
    }

    #[test]
    fn tag_characters() {
        for ok in [
            "",
            "aZ09 _.:/=+-@%",
            "ü日本語Ωمرحبا٣",
            "\u{a0}\u{1680}\u{2000}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}",
        ] {
            assert!(check_tag_characters([ok]).is_ok(), "{ok:?}");
        }
        for bad in [
            "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{85}", "\u{200b}", ";", ",", "#", "*", "\0",
            "😀",
        ] {
            let e = check_tag_characters(["fine", bad]).unwrap_err();
            assert_eq!(
                e.error_type,
                sluice_aws::ErrorType::InvalidArgument,
                "{bad:?}"
            );
        }
    }
}
