//! The `[lambda]` section of sluice's configuration: the process pools' settings and the
//! functions declared in the file (`[[lambda.functions]]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::names::is_function_name;

/// (De)serializes as `[lambda]`; check it with [`LambdaConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LambdaConfig {
    /// The Python interpreter that runs `python3.x` functions; it must have `awslambdaric`.
    /// Default `python3`.
    pub python: PathBuf,
    /// A warm process idle this long, in milliseconds, is stopped. Default 300000.
    pub idle_ms: u64,
    /// How long an invocation waits for a free process, in milliseconds, before it is
    /// throttled (TooManyRequestsException). Default 1000.
    pub queue_wait_ms: u64,
    /// Event (asynchronous) invocations waiting per function; past this, Invoke answers
    /// TooManyRequestsException. Default 1000.
    pub event_queue_depth_max: usize,
    /// Processes per function at most when it has no reserved concurrency. Default 10.
    pub function_concurrency_max: usize,
    /// How long an event source mapping stays Creating, Enabling, Disabling, Updating or
    /// Deleting before the change is carried out, in milliseconds (AWS takes seconds; tests
    /// set it to see those states). Default 0.
    pub mapping_state_delay_ms: u64,
    /// Functions declared here, loaded at start with their code used in place.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<DeclaredFunction>,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        LambdaConfig {
            python: PathBuf::from("python3"),
            idle_ms: 300_000,
            queue_wait_ms: 1_000,
            event_queue_depth_max: 1_000,
            function_concurrency_max: 10,
            mapping_state_delay_ms: 0,
            functions: Vec::new(),
        }
    }
}

/// A function declared in the configuration file, for people without the AWS CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredFunction {
    pub name: String,
    /// `python3.12`, `provided.al2023`, ...
    pub runtime: String,
    /// `module.function` for Python.
    pub handler: String,
    /// The directory of the code, used in place (not copied).
    pub code_dir: PathBuf,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
}

fn default_timeout_s() -> u32 {
    limits::TIMEOUT_S_DEFAULT
}

fn default_memory_mb() -> u32 {
    limits::MEMORY_MB_DEFAULT
}

impl LambdaConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.function_concurrency_max == 0 {
            return Err("function_concurrency_max must be at least 1".into());
        }
        if self.event_queue_depth_max == 0 {
            return Err("event_queue_depth_max must be at least 1".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.functions {
            let which = format!("functions: {:?}", f.name);
            if !is_function_name(&f.name) || f.name.len() > limits::FUNCTION_NAME_CHARS_MAX {
                return Err(format!(
                    "{which}: a name is 1 to {} of a-z, A-Z, 0-9, - and _",
                    limits::FUNCTION_NAME_CHARS_MAX
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(format!("{which} is declared twice"));
            }
            if f.runtime.is_empty() || f.handler.is_empty() {
                return Err(format!("{which}: runtime and handler are required"));
            }
            let timeout = i64::from(f.timeout_s);
            if !(limits::TIMEOUT_S_MIN..=limits::TIMEOUT_S_MAX).contains(&timeout) {
                return Err(format!(
                    "{which}: timeout_s must be {} to {}",
                    limits::TIMEOUT_S_MIN,
                    limits::TIMEOUT_S_MAX
                ));
            }
            let memory = i64::from(f.memory_mb);
            if !(limits::MEMORY_MB_MIN..=limits::MEMORY_MB_MAX).contains(&memory) {
                return Err(format!(
                    "{which}: memory_mb must be {} to {}",
                    limits::MEMORY_MB_MIN,
                    limits::MEMORY_MB_MAX
                ));
            }
            if let Err(e) = crate::ops::functions::check_environment(&f.environment) {
                return Err(format!(
                    "{which}: environment: {}",
                    e.message.unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// The process pools' settings.
    pub fn runtimes_config(&self) -> sluice_runtime::RuntimesConfig {
        sluice_runtime::RuntimesConfig {
            python: self.python.clone(),
            idle_ms: self.idle_ms,
            queue_wait_ms: self.queue_wait_ms,
        }
    }
}
