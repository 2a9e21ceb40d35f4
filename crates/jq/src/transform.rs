//! What a processor does to one record: [`Transform::apply`] parses its data as JSON, runs the
//! program, and gives each output as an [`Output`] record with its partition key.

use crate::limits;
use crate::program::{parse_json, JqError, Program, Vars};
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
}

impl Transform {
    pub fn new(program: Program, partition_key: Option<Program>) -> Transform {
        Transform {
            program,
            partition_key,
        }
    }

    /// The outputs of one record (none when the program filters it out), all or nothing:
    /// data that is not JSON, a runtime error, too many or too large outputs, or an output
    /// whose partition key cannot be computed fail the record. Each output's partition key is
    /// the record's (`vars.partition_key`), or the `partition_key` program's first output on
    /// the output value.
    pub fn apply(&self, data: &[u8], vars: &Vars) -> Result<Vec<Output>, JqError> {
        let values = self.program.run_val(parse_json(data)?, vars)?;
        let mut budget = Budget::new(limits::OUTPUT_BYTES_PER_RECORD_MAX);
        let mut outputs = Vec::with_capacity(values.len());
        for v in values {
            let partition_key = match &self.partition_key {
                None => vars.partition_key.clone(),
                Some(p) => partition_key(p, v.clone(), vars)?,
            };
            let data = value::to_bytes(&v, &mut budget)?;
            if data.len() + partition_key.len() > limits::OUTPUT_RECORD_BYTES_MAX {
                return Err(JqError::OutputTooLarge {
                    max: limits::OUTPUT_RECORD_BYTES_MAX,
                });
            }
            outputs.push(Output {
                partition_key,
                data,
            });
        }
        Ok(outputs)
    }
}

fn partition_key(p: &Program, output: jaq_json::Val, vars: &Vars) -> Result<String, JqError> {
    let first = p
        .first_val(output, vars)
        .map_err(|e| JqError::PartitionKey(e.to_string()))?;
    let key = match first {
        Some(jaq_json::Val::TStr(s)) => String::from_utf8_lossy(&s).into_owned(),
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
