//! Function names and the ways a request may name a function: `my-function`,
//! `my-function:$LATEST`, `123456789012:function:my-function` or
//! `arn:aws:lambda:us-east-1:123456789012:function:my-function[:qualifier]`.

use std::fmt;

use sluice_aws::validate::Validator;
use sluice_aws::ApiError;

use crate::limits;

/// The pattern AWS prints for a `FunctionName` that does not parse.
pub const FUNCTION_NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";
/// The same for the reading operations and Invoke (`NamespacedFunctionName`).
pub const NAMESPACED_FUNCTION_NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";

/// `$LATEST`, the only version sluice has.
pub const LATEST: &str = "$LATEST";

/// A function's name: `[a-zA-Z0-9-_]+`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionName(String);

pub fn is_function_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FunctionName {
    pub fn new(s: &str) -> Option<FunctionName> {
        (is_function_name(s) && s.len() <= limits::FUNCTION_NAME_CHARS_MAX)
            .then(|| FunctionName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where functions live: the region and account in their ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub account_id: String,
}

impl Scope {
    pub fn arn(&self, name: &FunctionName) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, name
        )
    }
}

/// A function as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: FunctionName,
    /// The qualifier written after the name (`name:qualifier`), if any.
    pub qualifier: Option<String>,
    /// Region and account when the request gave an ARN (or a partial one).
    pub region: Option<String>,
    pub account_id: Option<String>,
}

impl FunctionRef {
    /// Parses `text` (the `FunctionName` member or path parameter). `member` is its name in
    /// validation messages (`functionName`); `max` its length limit; `pattern` the pattern
    /// AWS prints.
    pub fn parse(
        text: &str,
        member: &str,
        max: usize,
        pattern: &str,
    ) -> Result<FunctionRef, ApiError> {
        let parsed = parse_parts(text);
        let mut v = Validator::new();
        if parsed.is_none() {
            v.fail(
                Some(text),
                member,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
        v.str_len(Some(text), member, 1, max);
        v.finish()?;
        // The validator has refused every text that does not parse.
        let (name, qualifier, region, account_id) = parsed.unwrap_or_default();
        let name = FunctionName::new(name).ok_or_else(|| {
            // A name of the right characters but longer than 64 (only ARNs may be longer).
            let mut v = Validator::new();
            v.str_len(Some(text), member, 1, limits::FUNCTION_NAME_CHARS_MAX);
            v.finish()
                .err()
                .unwrap_or_else(|| ApiError::validation(text.to_string()))
        })?;
        Ok(FunctionRef {
            name,
            qualifier: qualifier.map(str::to_string),
            region: region.map(str::to_string),
            account_id: account_id.map(str::to_string),
        })
    }

    /// Whether the ARN parts (if any) name sluice's region and account.
    pub fn in_scope(&self, scope: &Scope) -> bool {
        self.region.as_deref().is_none_or(|r| r == scope.region)
            && self
                .account_id
                .as_deref()
                .is_none_or(|a| a == scope.account_id)
    }

    /// The ARN AWS prints in "Function not found" for this reference: the function's ARN
    /// (in the request's region and account when it gave them), with the qualifier if one
    /// was given.
    pub fn arn(&self, scope: &Scope, qualifier: Option<&str>) -> String {
        let mut arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region.as_deref().unwrap_or(&scope.region),
            self.account_id.as_deref().unwrap_or(&scope.account_id),
            self.name
        );
        if let Some(q) = qualifier {
            arn.push(':');
            arn.push_str(q);
        }
        arn
    }
}

pub(crate) fn is_region(s: &str) -> bool {
    // [a-z]{2}(-gov)?-[a-z]+-\d (and the iso partitions' -iso, -isob)
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].len() == 1
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

pub(crate) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_qualifier(s: &str) -> bool {
    s == LATEST
        || (!s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

type Parts<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// (name, qualifier, region, account) of the accepted forms.
fn parse_parts(text: &str) -> Option<Parts<'_>> {
    let parts: Vec<&str> = text.split(':').collect();
    let (name, qualifier, region, account) = if parts[0] == "arn" {
        // arn:aws:lambda:region:account:function:name[:qualifier]
        if !(parts.len() == 7 || parts.len() == 8)
            || !parts[1].starts_with("aws")
            || parts[2] != "lambda"
            || !is_region(parts[3])
            || !is_account(parts[4])
            || parts[5] != "function"
        {
            return None;
        }
        (
            parts[6],
            parts.get(7).copied(),
            Some(parts[3]),
            Some(parts[4]),
        )
    } else if parts.len() >= 3 && parts[1] == "function" {
        // account:function:name[:qualifier]
        if parts.len() > 4 || !is_account(parts[0]) {
            return None;
        }
        (parts[2], parts.get(3).copied(), None, Some(parts[0]))
    } else if parts.len() <= 2 {
        (parts[0], parts.get(1).copied(), None, None)
    } else {
        return None;
    };
    if !is_function_name(name) || !qualifier.is_none_or(is_qualifier) {
        return None;
    }
    Some((name, qualifier, region, account))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FunctionRef, ApiError> {
        FunctionRef::parse(s, "functionName", 256, NAMESPACED_FUNCTION_NAME_PATTERN)
    }

    #[test]
    fn the_three_forms() {
        let f = parse("my-fn").unwrap();
        assert_eq!((f.name.as_str(), f.qualifier), ("my-fn", None));
        let f = parse("my-fn:$LATEST").unwrap();
        assert_eq!(f.qualifier.as_deref(), Some("$LATEST"));
        let f = parse("000000000000:function:my-fn").unwrap();
        assert_eq!(f.account_id.as_deref(), Some("000000000000"));
        let f = parse("arn:aws:lambda:us-east-1:000000000000:function:my-fn:prod").unwrap();
        assert_eq!(f.region.as_deref(), Some("us-east-1"));
        assert_eq!(f.qualifier.as_deref(), Some("prod"));
        let scope = Scope {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        };
        assert!(f.in_scope(&scope));
        assert_eq!(
            f.arn(&scope, None),
            "arn:aws:lambda:us-east-1:000000000000:function:my-fn"
        );
        assert!(
            !parse("arn:aws:lambda:eu-west-1:000000000000:function:my-fn")
                .unwrap()
                .in_scope(&scope)
        );
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "",
            "bad name",
            "a:b:c",
            "arn:aws:lambda:us-east-1:1234:function:f",
            "arn:aws:s3:us-east-1:000000000000:function:f",
            "f:bad qualifier",
            "f.g",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.error_type, sluice_aws::ErrorType::Validation, "{bad}");
            assert!(
                e.message.as_deref().unwrap_or("").contains("functionName"),
                "{bad}: {e}"
            );
        }
        let long = "a".repeat(65);
        let e = parse(&long).unwrap_err();
        assert!(e
            .message
            .unwrap()
            .contains("Member must have length less than or equal to 64"));
        assert!(parse(&"a".repeat(64)).is_ok());
    }
}
