//! Event (asynchronous) invocations: one bounded queue per function, drained by one task per
//! function that runs up to the function's concurrency of them at once.
//!
//! An event that finds every process busy (the pool throttles it) is retried with a growing
//! backoff, a bounded number of times, then dropped with a log line; so is one that cannot
//! run at all (an unsupported runtime). A function error is not retried (AWS retries twice,
//! over minutes). Events of a deleted function, or of one with reserved concurrency 0, are
//! dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use sluice_runtime::{InvokeOutcome, RuntimeError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::Throttle;
use crate::names::FunctionName;
use crate::service::Lambda;
use crate::store::Function;

/// Tries of an event the pool throttles, and the backoff between them.
const THROTTLED_ATTEMPTS_MAX: u32 = 8;
const THROTTLED_BACKOFF_MS_MIN: u64 = 100;
const THROTTLED_BACKOFF_MS_MAX: u64 = 5_000;

/// One accepted Event invocation.
#[derive(Debug, Clone)]
pub struct Event {
    pub request_id: String,
    pub payload: Bytes,
    pub trace_id: Option<String>,
}

/// The functions' queues.
#[derive(Debug)]
pub struct EventQueues {
    depth_max: usize,
    queues: Mutex<HashMap<FunctionName, mpsc::Sender<Event>>>,
}

impl EventQueues {
    pub fn new(depth_max: usize) -> EventQueues {
        EventQueues {
            depth_max: depth_max.max(1),
            queues: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<FunctionName, mpsc::Sender<Event>>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `event` for `name`, starting its queue's task on first use. A full queue is a
    /// throttle.
    pub(crate) fn enqueue(
        &self,
        lambda: &Arc<Lambda>,
        name: &FunctionName,
        event: Event,
    ) -> Result<(), Throttle> {
        let mut queues = self.map();
        let sender = match queues.get(name) {
            Some(s) if !s.is_closed() => s.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(self.depth_max);
                tokio::spawn(drain(Arc::downgrade(lambda), name.clone(), rx));
                queues.insert(name.clone(), tx.clone());
                tx
            }
        };
        drop(queues);
        sender.try_send(event).map_err(|_| Throttle::EventQueue)
    }

    /// Forgets a function's queue (it was deleted): its task ends once the queue is empty,
    /// dropping what is left.
    pub fn remove(&self, name: &FunctionName) {
        self.map().remove(name);
    }
}

async fn drain(lambda: Weak<Lambda>, name: FunctionName, mut rx: mpsc::Receiver<Event>) {
    let mut running = JoinSet::new();
    while let Some(event) = rx.recv().await {
        let Some(l) = lambda.upgrade() else { break };
        let Some(f) = l.store.get(&name) else {
            tracing::debug!(function = %name, request_id = event.request_id, "event for a deleted function dropped");
            continue;
        };
        let limit = f
            .record
            .reserved_concurrency
            .map(|n| n as usize)
            .unwrap_or(l.config.function_concurrency_max);
        if limit == 0 {
            l.metrics.throttled(name.as_str());
            tracing::warn!(function = %name, request_id = event.request_id, "event dropped: the function's reserved concurrency is 0");
            continue;
        }
        while running.len() >= limit {
            running.join_next().await;
        }
        running.spawn(run(l, f, event));
    }
    while running.join_next().await.is_some() {}
}

async fn run(lambda: Arc<Lambda>, f: Arc<Function>, event: Event) {
    let mut backoff_ms = THROTTLED_BACKOFF_MS_MIN;
    for attempt in 1..=THROTTLED_ATTEMPTS_MAX {
        let spec = crate::ops::invoke::spec(&lambda, &f);
        let invocation = crate::ops::invoke::invocation(
            &lambda,
            &f,
            &event.request_id,
            event.payload.clone(),
            event.trace_id.clone(),
            None,
        );
        match lambda.runtimes.invoke(&spec, invocation).await {
            Ok(result) => {
                lambda
                    .metrics
                    .ran(f.name.as_str(), &result.outcome, result.duration_ms);
                match result.outcome {
                    InvokeOutcome::Success(_) => {
                        tracing::debug!(function = %f.name, request_id = event.request_id, duration_ms = result.duration_ms, "event invocation done");
                    }
                    InvokeOutcome::FunctionError { error_type, .. } => {
                        tracing::info!(function = %f.name, request_id = event.request_id, error_type, "event invocation: function error");
                    }
                    InvokeOutcome::TimedOut => {
                        tracing::info!(function = %f.name, request_id = event.request_id, "event invocation timed out");
                    }
                    InvokeOutcome::RuntimeFailed {
                        error_type,
                        message,
                    } => {
                        tracing::info!(function = %f.name, request_id = event.request_id, error_type, message, "event invocation: runtime failed");
                    }
                }
                return;
            }
            Err(RuntimeError::Throttled { .. }) if attempt < THROTTLED_ATTEMPTS_MAX => {
                lambda.metrics.throttled(f.name.as_str());
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(THROTTLED_BACKOFF_MS_MAX);
            }
            Err(e) => {
                if matches!(e, RuntimeError::Throttled { .. }) {
                    lambda.metrics.throttled(f.name.as_str());
                }
                tracing::warn!(function = %f.name, request_id = event.request_id, error = %e, attempt, "event invocation dropped");
                return;
            }
        }
    }
}
