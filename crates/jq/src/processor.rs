//! Processors declared in the configuration file: [`ProcessorConfig`] is one `[[processors]]`
//! table; [`Processors::prepare`] checks them all and compiles their programs (before the
//! server listens, so a mistake stops the start); [`Processors::start`] runs a
//! `sluice_poller::Poller` for each enabled one and [`Running::stop`] stops them.
//!
//! A processor's poller reads its source stream as consumer `processor/<name>`: its
//! checkpoints are durable, so a restart resumes where it stopped (a renamed processor starts
//! again from `starting_position`). A source, output or dead-letter stream that does not exist
//! (yet) makes the processor wait and retry, logged once; it never stops the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_poller::{
    FailureDestination, FailureSinks, Poller, PollerSpec, StartingPosition as PollerStart,
};
use sluice_streams::{ConsumerName, StreamName, Streams};

use crate::limits;
use crate::program::{JqError, Program};
use crate::target::{processor_arn, JqTarget, ProcessorStreams};
use crate::transform::Transform;

/// Where a processor starts reading a shard it has no checkpoint for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartingPosition {
    /// The oldest record kept.
    #[serde(rename = "TRIM_HORIZON")]
    TrimHorizon,
    /// Records written after the processor started.
    #[default]
    #[serde(rename = "LATEST")]
    Latest,
}

/// One `[[processors]]` table: read `source`, run `program` on each record, write each output
/// to `output`. Check it with [`ProcessorConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// 1 to 64 characters of `[a-zA-Z0-9_-]`; names its checkpoints and metrics.
    pub name: String,
    /// The stream it reads.
    pub source: String,
    /// The jq program, inline. Exactly one of `program` and `program_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// A file holding the jq program, relative to the configuration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_file: Option<PathBuf>,
    /// A jq expression run on each output value for its partition key (a string of 1 to 256
    /// characters); by default an output keeps its input's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// The stream outputs are written to.
    pub output: String,
    /// The stream records the program fails on are written to (and batches the poller gives
    /// up on, as Lambda's failure records); without one they are dropped, counted and logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    #[serde(default)]
    pub starting_position: StartingPosition,
    /// Records per batch at most, 1 to 10000. Default 100.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How long a batch may wait to fill, 0 to 300000 ms. Default 0.
    #[serde(default)]
    pub batching_window_ms: u64,
    /// Batches of one shard in flight at once (records of one partition key stay in order),
    /// 1 to 10. Default 1.
    #[serde(default = "default_parallelization_factor")]
    pub parallelization_factor: u32,
    /// Retries of a batch that failed, -1 (until its records expire) or 0 to 10000. A batch
    /// that could not be written (a stream missing or throttled) is retried regardless.
    #[serde(default = "default_retry_attempts")]
    pub maximum_retry_attempts: i64,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_batch_size() -> u32 {
    sluice_poller::limits::BATCH_SIZE_DEFAULT
}

fn default_parallelization_factor() -> u32 {
    1
}

fn default_retry_attempts() -> i64 {
    -1
}

fn default_enabled() -> bool {
    true
}

/// A processor's configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("processor {name:?}: {what}")]
    Invalid { name: String, what: String },
    #[error("processor {name:?}: {field} does not compile: {error}")]
    Program {
        name: String,
        field: &'static str,
        error: JqError,
    },
    #[error("processor {name:?}: cannot read program_file {path}: {error}")]
    ProgramFile {
        name: String,
        path: String,
        error: std::io::Error,
    },
}

impl ProcessorConfig {
    /// Checks what the types cannot, and compiles the inline programs.
    pub fn validate(&self) -> Result<(), ProcessorError> {
        let invalid = |what: String| ProcessorError::Invalid {
            name: self.name.clone(),
            what,
        };
        let name_ok = !self.name.is_empty()
            && self.name.chars().count() <= limits::PROCESSOR_NAME_CHARS_MAX
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(invalid(format!(
                "name must be 1 to {} characters of [a-zA-Z0-9_-]",
                limits::PROCESSOR_NAME_CHARS_MAX
            )));
        }
        let streams = [
            ("source", Some(&self.source)),
            ("output", Some(&self.output)),
            ("dead_letter", self.dead_letter.as_ref()),
        ];
        for (field, stream) in streams {
            if let Some(s) = stream {
                if StreamName::new(s).is_none() {
                    return Err(invalid(format!(
                        "{field} {s:?} is not a stream name (1 to 128 characters of [a-zA-Z0-9_.-])"
                    )));
                }
            }
        }
        // Writing into the stream it reads would feed its own outputs back to itself.
        if self.output == self.source || self.dead_letter.as_ref() == Some(&self.source) {
            return Err(invalid(
                "output and dead_letter must not be the source stream".into(),
            ));
        }
        match (&self.program, &self.program_file) {
            (Some(_), Some(_)) => {
                return Err(invalid("give program or program_file, not both".into()))
            }
            (None, None) => return Err(invalid("give program or program_file".into())),
            (Some(p), None) => {
                self.compile("program", p)?;
            }
            (None, Some(_)) => {}
        }
        if let Some(p) = &self.partition_key {
            self.compile("partition_key", p)?;
        }
        let p = sluice_poller::limits::BATCH_SIZE_MIN..=sluice_poller::limits::BATCH_SIZE_MAX;
        if !p.contains(&self.batch_size) {
            return Err(invalid(format!(
                "batch_size must be {} to {}",
                p.start(),
                p.end()
            )));
        }
        let window_ms_max = u64::from(sluice_poller::limits::BATCHING_WINDOW_S_MAX) * 1000;
        if self.batching_window_ms > window_ms_max {
            return Err(invalid(format!(
                "batching_window_ms must be 0 to {window_ms_max}"
            )));
        }
        if !(1..=sluice_poller::limits::PARALLELIZATION_FACTOR_MAX)
            .contains(&self.parallelization_factor)
        {
            return Err(invalid(format!(
                "parallelization_factor must be 1 to {}",
                sluice_poller::limits::PARALLELIZATION_FACTOR_MAX
            )));
        }
        if self.maximum_retry_attempts != -1
            && !(0..=sluice_poller::limits::RETRY_ATTEMPTS_MAX)
                .contains(&self.maximum_retry_attempts)
        {
            return Err(invalid(format!(
                "maximum_retry_attempts must be -1 or 0 to {}",
                sluice_poller::limits::RETRY_ATTEMPTS_MAX
            )));
        }
        Ok(())
    }

    fn compile(&self, field: &'static str, source: &str) -> Result<Program, ProcessorError> {
        Program::compile(source).map_err(|error| ProcessorError::Program {
            name: self.name.clone(),
            field,
            error,
        })
    }

    /// The poller's settings (its failure destination is the dead-letter stream).
    pub fn spec(&self, region: &str, account_id: &str) -> Result<PollerSpec, ProcessorError> {
        let consumer_name = format!("processor/{}", self.name);
        let consumer =
            ConsumerName::new(&consumer_name).ok_or_else(|| ProcessorError::Invalid {
                name: self.name.clone(),
                what: "cannot be a consumer name".into(),
            })?;
        let arn = |s: &str| format!("arn:aws:kinesis:{region}:{account_id}:stream/{s}");
        let mut spec = PollerSpec::new(&consumer_name, consumer, &self.source, &arn(&self.source));
        spec.starting_position = match self.starting_position {
            StartingPosition::TrimHorizon => PollerStart::TrimHorizon,
            StartingPosition::Latest => PollerStart::Latest,
        };
        spec.batch_size = self.batch_size;
        spec.batching_window_ms = self.batching_window_ms;
        spec.parallelization_factor = self.parallelization_factor;
        spec.maximum_retry_attempts = u32::try_from(self.maximum_retry_attempts).ok();
        spec.on_failure = self
            .dead_letter
            .as_ref()
            .map(|d| FailureDestination::Stream {
                arn: arn(d),
                stream: d.clone(),
            });
        Ok(spec)
    }
}

/// Checks every processor and that their names are distinct.
pub fn validate_all(processors: &[ProcessorConfig]) -> Result<(), ProcessorError> {
    let mut seen = std::collections::HashSet::new();
    for p in processors {
        p.validate()?;
        if !seen.insert(p.name.as_str()) {
            return Err(ProcessorError::Invalid {
                name: p.name.clone(),
                what: "two processors have this name".into(),
            });
        }
    }
    Ok(())
}

/// One processor ready to start: checked, its programs compiled.
#[derive(Debug)]
struct Prepared {
    config: ProcessorConfig,
    spec: PollerSpec,
    arn: String,
    transform: Arc<Transform>,
}

/// The enabled processors of a configuration, ready to start.
#[derive(Debug, Default)]
pub struct Processors {
    prepared: Vec<Prepared>,
}

impl Processors {
    /// Checks every processor, reads `program_file`s (relative to `base_dir`, the
    /// configuration file's directory) and compiles the programs of the enabled ones.
    /// Reads files: call it at start-up, not on an async worker that serves requests.
    pub fn prepare(
        configs: &[ProcessorConfig],
        base_dir: Option<&Path>,
        region: &str,
        account_id: &str,
    ) -> Result<Processors, ProcessorError> {
        validate_all(configs)?;
        let mut prepared = Vec::new();
        for c in configs.iter().filter(|c| c.enabled) {
            let source = match (&c.program, &c.program_file) {
                (Some(p), _) => p.clone(),
                (None, Some(file)) => {
                    let path = match base_dir {
                        Some(dir) if file.is_relative() => dir.join(file),
                        _ => file.clone(),
                    };
                    std::fs::read_to_string(&path).map_err(|error| ProcessorError::ProgramFile {
                        name: c.name.clone(),
                        path: path.display().to_string(),
                        error,
                    })?
                }
                (None, None) => String::new(),
            };
            let program = c.compile(
                if c.program.is_some() {
                    "program"
                } else {
                    "program_file"
                },
                &source,
            )?;
            let key = c
                .partition_key
                .as_deref()
                .map(|k| c.compile("partition_key", k))
                .transpose()?;
            prepared.push(Prepared {
                spec: c.spec(region, account_id)?,
                arn: processor_arn(region, account_id, &c.name),
                transform: Arc::new(Transform::new(program, key)),
                config: c.clone(),
            });
        }
        Ok(Processors { prepared })
    }

    /// How many will run.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// Starts a poller per processor (needs a tokio runtime). `lake` is for the failure
    /// destinations' sake; processors only write failure records to streams.
    pub fn start(self, streams: Arc<Streams>, lake: sluice_lake::Lake) -> Running {
        let sinks = Arc::new(FailureSinks {
            streams: streams.clone(),
            lake,
        });
        let pollers = self
            .prepared
            .into_iter()
            .map(|p| {
                let c = &p.config;
                // on_bytes: the program runs on records' bytes (the jq plan) where it can.
                tracing::info!(processor = %c.name, source = %c.source, output = %c.output, on_bytes = p.transform.is_planned(), "starting processor");
                let target = JqTarget::new(
                    &c.name,
                    p.arn,
                    streams.clone(),
                    ProcessorStreams {
                        source: c.source.clone(),
                        output: c.output.clone(),
                        dead_letter: c.dead_letter.clone(),
                    },
                    p.transform,
                );
                Poller::start(streams.clone(), p.spec, Arc::new(target), sinks.clone())
            })
            .collect();
        Running { pollers }
    }
}

/// Running processors.
#[derive(Debug)]
pub struct Running {
    pollers: Vec<Poller>,
}

impl Running {
    pub fn pollers(&self) -> &[Poller] {
        &self.pollers
    }

    /// Stops every processor: each finishes the batch in flight, for at most
    /// [`limits::STOP_WAIT_MS`] (a jq program cannot be interrupted; past it the processor is
    /// abandoned and its batch, not checkpointed, is delivered again on the next start).
    pub async fn stop(self) {
        let wait = Duration::from_millis(limits::STOP_WAIT_MS);
        let stops = self.pollers.into_iter().map(|p| {
            let name = p.spec().uuid.clone();
            async move {
                if tokio::time::timeout(wait, p.stop()).await.is_err() {
                    tracing::warn!(processor = %name, "a processor did not stop in time; its batch in flight will be delivered again");
                }
            }
        });
        let mut set = tokio::task::JoinSet::new();
        for s in stops {
            set.spawn(s);
        }
        while set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[[processors]]` table as serde sees it (written as JSON: no TOML reader here).
    fn from_json(json: &str) -> ProcessorConfig {
        serde_json::from_str(json).unwrap()
    }

    fn base() -> ProcessorConfig {
        from_json(r#"{"name": "p", "source": "in", "program": ".", "output": "out"}"#)
    }

    #[test]
    fn defaults() {
        let c = base();
        assert_eq!(c.starting_position, StartingPosition::Latest);
        assert_eq!(
            (c.batch_size, c.batching_window_ms, c.parallelization_factor),
            (100, 0, 1)
        );
        assert_eq!(c.maximum_retry_attempts, -1);
        assert!(c.enabled);
        assert_eq!(
            (c.partition_key.as_ref(), c.dead_letter.as_ref()),
            (None, None)
        );
        c.validate().unwrap();
        let spec = c.spec("eu-west-1", "123456789012").unwrap();
        assert_eq!(spec.consumer.as_str(), "processor/p");
        assert_eq!(spec.stream, "in");
        assert_eq!(
            spec.stream_arn,
            "arn:aws:kinesis:eu-west-1:123456789012:stream/in"
        );
        assert_eq!(spec.starting_position, PollerStart::Latest);
        assert_eq!(spec.maximum_retry_attempts, None);
        assert_eq!(spec.on_failure, None);
    }

    #[test]
    fn settings_reach_the_poller() {
        let c = ProcessorConfig {
            starting_position: StartingPosition::TrimHorizon,
            batch_size: 10_000,
            batching_window_ms: 300_000,
            parallelization_factor: 10,
            maximum_retry_attempts: 3,
            dead_letter: Some("dead".into()),
            ..base()
        };
        c.validate().unwrap();
        let spec = c.spec("us-east-1", "000000000000").unwrap();
        assert_eq!(spec.starting_position, PollerStart::TrimHorizon);
        assert_eq!(
            (
                spec.batch_size,
                spec.batching_window_ms,
                spec.parallelization_factor
            ),
            (10_000, 300_000, 10)
        );
        assert_eq!(spec.maximum_retry_attempts, Some(3));
        assert_eq!(
            spec.on_failure,
            Some(FailureDestination::Stream {
                arn: "arn:aws:kinesis:us-east-1:000000000000:stream/dead".into(),
                stream: "dead".into()
            })
        );
    }

    #[test]
    fn each_limit_at_and_past() {
        let ok = |c: ProcessorConfig| c.validate().map(|_| ()).map_err(|e| e.to_string());
        let name_max = "n".repeat(limits::PROCESSOR_NAME_CHARS_MAX);
        for (c, wanted) in [
            (
                ProcessorConfig {
                    name: name_max.clone(),
                    ..base()
                },
                None,
            ),
            (
                ProcessorConfig {
                    name: name_max + "n",
                    ..base()
                },
                Some("name must be"),
            ),
            (
                ProcessorConfig {
                    name: "a/b".into(),
                    ..base()
                },
                Some("name must be"),
            ),
            (
                ProcessorConfig {
                    name: "".into(),
                    ..base()
                },
                Some("name must be"),
            ),
            (
                ProcessorConfig {
                    batch_size: 1,
                    ..base()
                },
                None,
            ),
            (
                ProcessorConfig {
                    batch_size: 0,
                    ..base()
                },
                Some("batch_size must be 1 to 10000"),
            ),
            (
                ProcessorConfig {
                    batch_size: 10_001,
                    ..base()
                },
                Some("batch_size"),
            ),
            (
                ProcessorConfig {
                    batching_window_ms: 300_001,
                    ..base()
                },
                Some("batching_window_ms must be 0 to 300000"),
            ),
            (
                ProcessorConfig {
                    parallelization_factor: 0,
                    ..base()
                },
                Some("parallelization_factor must be 1 to 10"),
            ),
            (
                ProcessorConfig {
                    parallelization_factor: 11,
                    ..base()
                },
                Some("parallelization_factor"),
            ),
            (
                ProcessorConfig {
                    maximum_retry_attempts: 10_000,
                    ..base()
                },
                None,
            ),
            (
                ProcessorConfig {
                    maximum_retry_attempts: 10_001,
                    ..base()
                },
                Some("maximum_retry_attempts must be -1 or 0 to 10000"),
            ),
            (
                ProcessorConfig {
                    maximum_retry_attempts: -2,
                    ..base()
                },
                Some("maximum_retry_attempts"),
            ),
            (
                ProcessorConfig {
                    source: "bad name".into(),
                    ..base()
                },
                Some("source \"bad name\" is not a stream name"),
            ),
            (
                ProcessorConfig {
                    output: "in".into(),
                    ..base()
                },
                Some("must not be the source"),
            ),
            (
                ProcessorConfig {
                    dead_letter: Some("in".into()),
                    ..base()
                },
                Some("must not be the source"),
            ),
            (
                ProcessorConfig {
                    program: None,
                    ..base()
                },
                Some("give program or program_file"),
            ),
            (
                ProcessorConfig {
                    program_file: Some("p.jq".into()),
                    ..base()
                },
                Some("not both"),
            ),
        ] {
            match (ok(c.clone()), wanted) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{c:?}: {e}"),
                (got, _) => panic!("{c:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn compile_errors_name_the_processor_and_the_field() {
        let c = ProcessorConfig {
            program: Some("select(.a ==)".into()),
            ..base()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "processor \"p\": program does not compile: line 1, column 13: expected term, found `)`"
        );
        let c = ProcessorConfig {
            partition_key: Some(".a |".into()),
            ..base()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("processor \"p\": partition_key does not compile: line 1"));
    }

    #[test]
    fn prepare_reads_program_files_and_skips_disabled_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("ok.jq"), "# a comment\nselect(.keep)\n").unwrap();
        std::fs::write(dir.join("bad.jq"), "\n\n  .a[\n").unwrap();
        let from_file = |name: &str, file: &str| ProcessorConfig {
            name: name.into(),
            program: None,
            program_file: Some(file.into()),
            ..base()
        };
        let p = Processors::prepare(
            &[
                from_file("a", "ok.jq"),
                ProcessorConfig {
                    enabled: false,
                    ..from_file("b", "missing.jq")
                },
            ],
            Some(dir),
            "us-east-1",
            "000000000000",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            p.prepared[0]
                .transform
                .apply(br#"{"keep":true}"#, &Default::default())
                .unwrap()
                .len(),
            1
        );
        let e = Processors::prepare(&[from_file("c", "bad.jq")], Some(dir), "r", "a")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("processor \"c\": program_file does not compile: line 4"),
            "{e}"
        );
        let e = Processors::prepare(&[from_file("d", "missing.jq")], Some(dir), "r", "a")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("processor \"d\": cannot read program_file"),
            "{e}"
        );
        let e = Processors::prepare(&[base(), base()], None, "r", "a")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "processor \"p\": two processors have this name");
    }
}
