//! Constraint checks with AWS's ValidationException wording: every failed constraint of a
//! request is collected, in member order, and reported together (at most ten).

use crate::error::ApiError;

/// How a value is shown inside `Value '...'`.
pub fn show_blob(len: usize) -> String {
    format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]")
}

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<String>,
}

impl Validator {
    pub fn new() -> Validator {
        Validator::default()
    }

    pub fn fail(&mut self, shown: Option<&str>, path: &str, constraint: &str) {
        let value = match shown {
            Some(v) => format!("'{v}'"),
            None => "null".to_string(),
        };
        self.errors.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    pub fn required<T>(&mut self, v: Option<T>, path: &str) -> Option<T> {
        if v.is_none() {
            self.fail(None, path, "Member must not be null");
        }
        v
    }

    /// Length of a string in characters.
    pub fn str_len(&mut self, v: Option<&str>, path: &str, min: usize, max: usize) {
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min {
                self.fail(
                    Some(s),
                    path,
                    &format!("Member must have length greater than or equal to {min}"),
                );
            }
            if n > max {
                self.fail(
                    Some(s),
                    path,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
    }

    pub fn pattern(
        &mut self,
        v: Option<&str>,
        path: &str,
        pattern: &str,
        matches: fn(&str) -> bool,
    ) {
        if let Some(s) = v {
            if !matches(s) {
                self.fail(
                    Some(s),
                    path,
                    &format!("Member must satisfy regular expression pattern: {pattern}"),
                );
            }
        }
    }

    pub fn range(&mut self, v: Option<i64>, path: &str, min: Option<i64>, max: Option<i64>) {
        if let Some(n) = v {
            if let Some(min) = min {
                if n < min {
                    self.fail(
                        Some(&n.to_string()),
                        path,
                        &format!("Member must have value greater than or equal to {min}"),
                    );
                }
            }
            if let Some(max) = max {
                if n > max {
                    self.fail(
                        Some(&n.to_string()),
                        path,
                        &format!("Member must have value less than or equal to {max}"),
                    );
                }
            }
        }
    }

    /// Element count of a list or map member; `shown` renders the value only on failure.
    pub fn count(
        &mut self,
        len: usize,
        path: &str,
        min: usize,
        max: usize,
        shown: impl Fn() -> String,
    ) {
        if len < min {
            self.fail(
                Some(&shown()),
                path,
                &format!("Member must have length greater than or equal to {min}"),
            );
        }
        if len > max {
            self.fail(
                Some(&shown()),
                path,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// A name member (stream, shard, delivery stream): `[a-zA-Z0-9_.-]+`, 1 to `max` characters.
    pub fn name(&mut self, v: Option<&str>, path: &str, max: usize) {
        self.pattern(v, path, "[a-zA-Z0-9_.-]+", is_resource_name);
        self.str_len(v, path, 1, max);
    }

    pub fn one_of(&mut self, v: Option<&str>, path: &str, allowed: &[&str]) {
        if let Some(s) = v {
            if !allowed.contains(&s) {
                self.fail(
                    Some(s),
                    path,
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    pub fn blob_len(&mut self, len: Option<usize>, path: &str, max: usize) {
        if let Some(n) = len {
            if n > max {
                self.fail(
                    Some(&show_blob(n)),
                    path,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let n = self.errors.len().min(10);
        let noun = if n == 1 { "error" } else { "errors" };
        Err(ApiError::validation(format!(
            "{n} validation {noun} detected: {}",
            self.errors[..n].join("; ")
        )))
    }
}

/// AWS's common resource-name pattern, `[a-zA-Z0-9_.-]+` (streams, delivery streams, consumers).
pub fn is_resource_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_aws() {
        let mut v = Validator::new();
        v.range(Some(0), "shardCount", Some(1), None);
        v.pattern(Some(""), "streamName", "[a-zA-Z0-9_.-]+", is_resource_name);
        v.str_len(Some(""), "streamName", 1, 128);
        assert_eq!(
            v.finish().unwrap_err().message.unwrap(),
            "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let mut v = Validator::new();
        v.required(None::<&str>, "streamName");
        assert_eq!(
            v.finish().unwrap_err().message.unwrap(),
            "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn at_most_ten_errors() {
        let mut v = Validator::new();
        for i in 0..15 {
            v.required(None::<&str>, &format!("records.{i}.member.data"));
        }
        let m = v.finish().unwrap_err().message.unwrap();
        assert!(m.starts_with("10 validation errors detected: "));
        assert_eq!(m.matches("; ").count(), 9);
    }
}
