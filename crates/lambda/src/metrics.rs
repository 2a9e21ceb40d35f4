//! Lambda's CloudWatch function metrics as Prometheus series, for every way a function runs
//! (Invoke RequestResponse and Event, InvokeAsync, event source mappings).
//!
//! Names: `sluice_lambda_` + the CloudWatch name in snake case, `_total` on counters, the
//! duration in seconds (CloudWatch's `Duration` is milliseconds; Prometheus histograms here
//! are seconds, with the server's `*_seconds` buckets); every series has the label
//! `function_name` (CloudWatch's `FunctionName` dimension):
//! - `sluice_lambda_invocations_total`: runs of the function's code, successful or not
//!   (CloudWatch `Invocations`; throttled requests are not runs).
//! - `sluice_lambda_errors_total`: runs that ended in a function error: the handler raised,
//!   timed out, or its process failed (`Errors`).
//! - `sluice_lambda_throttles_total`: invocations refused for concurrency (reserved
//!   concurrency 0 or used up, every process busy, a full Event queue) (`Throttles`).
//! - `sluice_lambda_duration_seconds`: how long each run took (`Duration`).
//!
//! Label cardinality is bounded as Kinesis's `stream` label is: the first
//! [`FUNCTION_LABELS_MAX`] function names seen since start get a label of their own, later
//! ones share `function_name="(other)"` (no function can have that name). A deleted
//! function's series stay until restart.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics::{Counter, Histogram};
use sluice_runtime::InvokeOutcome;

/// Function names with a label of their own; further names share [`OTHER_FUNCTIONS`].
pub const FUNCTION_LABELS_MAX: usize = 1_000;
/// The `function_name` label of the functions past [`FUNCTION_LABELS_MAX`].
pub const OTHER_FUNCTIONS: &str = "(other)";

struct FunctionSeries {
    invocations: Counter,
    errors: Counter,
    throttles: Counter,
    duration: Histogram,
}

impl FunctionSeries {
    fn register(function: &str) -> FunctionSeries {
        let label = || [("function_name", function.to_string())];
        FunctionSeries {
            invocations: metrics::counter!("sluice_lambda_invocations_total", &label()),
            errors: metrics::counter!("sluice_lambda_errors_total", &label()),
            throttles: metrics::counter!("sluice_lambda_throttles_total", &label()),
            duration: metrics::histogram!("sluice_lambda_duration_seconds", &label()),
        }
    }
}

/// The function metrics of one Lambda service.
#[derive(Default)]
pub struct Metrics {
    functions: RwLock<HashMap<String, Arc<FunctionSeries>>>,
    other: OnceLock<Arc<FunctionSeries>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn series(&self, function: &str) -> Arc<FunctionSeries> {
        {
            let map = self
                .functions
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = map.get(function) {
                return s.clone();
            }
            if map.len() >= FUNCTION_LABELS_MAX {
                return self.other();
            }
        }
        let mut map = self
            .functions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= FUNCTION_LABELS_MAX && !map.contains_key(function) {
            return self.other();
        }
        map.entry(function.to_string())
            .or_insert_with(|| Arc::new(FunctionSeries::register(function)))
            .clone()
    }

    fn other(&self) -> Arc<FunctionSeries> {
        self.other
            .get_or_init(|| Arc::new(FunctionSeries::register(OTHER_FUNCTIONS)))
            .clone()
    }

    /// One run of `function`'s code that ended as `outcome` after `duration_ms`.
    pub fn ran(&self, function: &str, outcome: &InvokeOutcome, duration_ms: u64) {
        let s = self.series(function);
        s.invocations.increment(1);
        if !matches!(outcome, InvokeOutcome::Success(_)) {
            s.errors.increment(1);
        }
        s.duration.record(duration_ms as f64 / 1000.0);
    }

    /// One invocation of `function` refused for concurrency.
    pub fn throttled(&self, function: &str) {
        self.series(function).throttles.increment(1);
    }

    /// How many functions have a label of their own (for tests).
    pub fn labelled(&self) -> usize {
        self.functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let m = Metrics::default();
        for i in 0..FUNCTION_LABELS_MAX + 5 {
            m.throttled(&format!("f{i}"));
        }
        assert_eq!(m.labelled(), FUNCTION_LABELS_MAX);
        // A name seen before keeps its own label.
        m.ran("f0", &InvokeOutcome::TimedOut, 5);
        assert_eq!(m.labelled(), FUNCTION_LABELS_MAX);
        assert!(Arc::ptr_eq(&m.series("f9999"), &m.series("another")));
    }
}
