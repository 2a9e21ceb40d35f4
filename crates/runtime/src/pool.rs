//! The warm process pools: one [`Pool`] per function version, holding its idle processes and
//! a semaphore of `concurrency_max` slots (one per process that may run). An invocation takes
//! a slot (waiting up to `queue_wait_ms`, else throttled), then an idle process or a new one,
//! runs on it (`run_invocation`) and gives the process back if it may serve again.
//!
//! A pool is built from one [`FunctionSpec`]; an invocation with a different spec for the same
//! name and version retires it (idle processes stop at once, busy ones when they finish) and
//! starts a fresh pool. A background sweep stops processes idle for `idle_ms`, drops
//! processes that ended by themselves, and forgets pools with nothing in them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::api::{error_message_of, Assignment, Reply};
use crate::limits::{INIT_MS_MAX, RESPONSE_BYTES_MAX, SHUTDOWN_WAIT_MS, WAITERS_MAX};
use crate::process::{
    max_memory_used_mb, probe_python, Control, Exit, Launch, Process, SpawnError,
};
use crate::{FunctionSpec, Invocation, InvokeOutcome, InvokeResult, RuntimeError, RuntimesConfig};

/// Every lock here guards plain data left consistent at each unlock, so a poisoned one is
/// taken over rather than turned into a panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pools of every function (the inside of `Runtimes`).
pub(crate) struct Pools {
    pub(crate) config: RuntimesConfig,
    pools: Mutex<HashMap<(String, String), Arc<Pool>>>,
    /// Every process started and not yet seen ended, busy or idle, in any pool (retired ones
    /// too), so that `shutdown` reaches them all.
    live: Mutex<Vec<Weak<Control>>>,
    /// Interpreters known to import awslambdaric (only successes are kept: one fixed later
    /// is seen at the next invocation).
    pythons: Mutex<HashSet<PathBuf>>,
    sweeper_started: AtomicBool,
    closed: AtomicBool,
}

struct Pool {
    spec: Arc<FunctionSpec>,
    launch: Launch,
    /// One permit per process that may run an invocation (`concurrency_max`).
    slots: Arc<Semaphore>,
    waiters: AtomicUsize,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    /// Most recently used last: taken from the end (warmest), swept from the front.
    idle: Vec<Idle>,
    /// No more processes are kept: idle ones were stopped, busy ones stop when they finish.
    retired: bool,
    /// Invocations between choosing this pool and leaving it (the sweep keeps such pools).
    users: usize,
}

struct Idle {
    process: Process,
    since: Instant,
}

/// A pool in use by one invocation.
struct PoolUse {
    pool: Arc<Pool>,
}

impl Drop for PoolUse {
    fn drop(&mut self) {
        let mut state = lock(&self.pool.state);
        state.users = state.users.saturating_sub(1);
    }
}

struct WaiterCount<'a>(&'a AtomicUsize);

impl Drop for WaiterCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    fn new(spec: FunctionSpec, launch: Launch) -> Pool {
        let slots = spec.concurrency_max.min(Semaphore::MAX_PERMITS);
        Pool {
            spec: Arc::new(spec),
            launch,
            slots: Arc::new(Semaphore::new(slots)),
            waiters: AtomicUsize::new(0),
            state: Mutex::new(PoolState::default()),
        }
    }

    fn throttled(&self) -> RuntimeError {
        RuntimeError::Throttled {
            function: self.spec.name.clone(),
            limit: self.spec.concurrency_max,
        }
    }

    /// A slot to run in: at once if one is free, else after waiting up to `queue_wait_ms`.
    async fn acquire(&self, queue_wait_ms: u64) -> Result<OwnedSemaphorePermit, RuntimeError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if queue_wait_ms == 0 || self.spec.concurrency_max == 0 {
            return Err(self.throttled());
        }
        let waiting = self.waiters.fetch_add(1, Ordering::AcqRel);
        let _count = WaiterCount(&self.waiters);
        if waiting >= WAITERS_MAX {
            return Err(self.throttled());
        }
        let wait = Duration::from_millis(queue_wait_ms);
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.throttled()),
        }
    }

    /// The warmest idle process still alive.
    fn take_idle(&self) -> Option<Process> {
        let mut ended = Vec::new();
        let mut state = lock(&self.state);
        let found = loop {
            match state.idle.pop() {
                Some(idle) if idle.process.exited() => ended.push(idle),
                Some(idle) => break Some(idle.process),
                None => break None,
            }
        };
        drop(state);
        drop(ended);
        found
    }

    /// Gives `process` back after an invocation (before its slot is released, so a waiter
    /// finds it), or stops it.
    fn release(&self, process: Process, reusable: bool) {
        let mut state = lock(&self.state);
        if reusable && !state.retired && !process.exited() {
            state.idle.push(Idle {
                process,
                since: Instant::now(),
            });
            return;
        }
        drop(state);
        drop(process);
    }

    /// Marks the pool retired; returns its idle processes (to be dropped, which stops them).
    fn retire(&self) -> Vec<Idle> {
        let mut state = lock(&self.state);
        state.retired = true;
        std::mem::take(&mut state.idle)
    }
}

impl Pools {
    pub(crate) fn new(config: RuntimesConfig) -> Pools {
        Pools {
            config,
            pools: Mutex::new(HashMap::new()),
            live: Mutex::new(Vec::new()),
            pythons: Mutex::new(HashSet::new()),
            sweeper_started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) async fn invoke(
        self: &Arc<Self>,
        spec: &FunctionSpec,
        invocation: Invocation,
    ) -> Result<InvokeResult, RuntimeError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RuntimeError::Unsupported(
                "the function runtimes are shut down".to_owned(),
            ));
        }
        self.start_sweeper();
        // The handler's time, kept for when it gets the event (see `Assignment::budget_ms`).
        let budget_ms =
            u64::try_from(invocation.deadline_ms.saturating_sub(epoch_ms())).unwrap_or(0);
        let launch = Launch::for_runtime(spec, &self.config)?;
        if let Launch::Python { python } = &launch {
            self.check_python(python, &spec.runtime).await?;
        }
        let pool = self.pool_for(spec, launch);
        let pools = Arc::clone(self);
        // On a task of its own: a caller that stops waiting does not cut the invocation (or
        // its process) short, as with Lambda; the process goes back to the pool either way.
        let function = spec.name.clone();
        let task = tokio::spawn(async move { pools.run(pool, invocation, budget_ms).await });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(RuntimeError::Io {
                function,
                source: std::io::Error::other(format!("invocation task failed: {error}")),
            }),
        }
    }

    async fn check_python(&self, python: &Path, runtime: &str) -> Result<(), RuntimeError> {
        if lock(&self.pythons).contains(python) {
            return Ok(());
        }
        probe_python(python, runtime).await?;
        lock(&self.pythons).insert(python.to_path_buf());
        Ok(())
    }

    /// The pool for `spec` (a fresh one if the spec changed), counted as in use.
    fn pool_for(&self, spec: &FunctionSpec, launch: Launch) -> PoolUse {
        let key = (spec.name.clone(), spec.version.clone());
        let mut retired = Vec::new();
        let mut pools = lock(&self.pools);
        let pool = match pools.get(&key) {
            Some(pool) if *pool.spec == *spec => Arc::clone(pool),
            existing => {
                if let Some(old) = existing {
                    retired = old.retire();
                }
                let pool = Arc::new(Pool::new(spec.clone(), launch));
                pools.insert(key, Arc::clone(&pool));
                pool
            }
        };
        lock(&pool.state).users += 1;
        drop(pools);
        drop(retired);
        PoolUse { pool }
    }

    async fn run(
        &self,
        pool: PoolUse,
        invocation: Invocation,
        budget_ms: u64,
    ) -> Result<InvokeResult, RuntimeError> {
        let pool = &pool.pool;
        let permit = pool.acquire(self.config.queue_wait_ms).await?;
        let mut process = match self.take_ready(pool).await {
            Some(process) => process,
            None => match Process::spawn(&pool.spec, &pool.launch).await {
                Ok(process) => {
                    self.register(&process);
                    process
                }
                Err(SpawnError::Runtime(error)) => return Err(error),
                Err(SpawnError::InvalidEntrypoint(reason)) => {
                    return Ok(InvokeResult {
                        outcome: InvokeOutcome::RuntimeFailed {
                            error_type: "Runtime.InvalidEntrypoint".to_owned(),
                            message: format!(
                                "RequestId: {} Error: {reason}",
                                invocation.request_id
                            ),
                        },
                        log_tail: Bytes::new(),
                        duration_ms: 0,
                    })
                }
            },
        };
        let (result, reusable) =
            run_invocation(&pool.spec, &mut process, invocation, budget_ms).await;
        pool.release(process, reusable);
        drop(permit);
        Ok(result)
    }

    /// An idle process that is ready for an event: waiting in `GET /next`. One that ends
    /// instead (it failed after its last answer, e.g. a runtime that exits when its response
    /// was refused as too large) or never asks is dropped, and the next one is tried.
    async fn take_ready(&self, pool: &Pool) -> Option<Process> {
        let wait_max = Duration::from_millis(INIT_MS_MAX);
        while let Some(process) = pool.take_idle() {
            let ready = tokio::select! {
                biased;
                () = process.endpoint.polling() => true,
                _ = process.control.wait() => false,
                () = tokio::time::sleep(wait_max) => false,
            };
            if ready {
                return Some(process);
            }
            tracing::debug!(
                function = pool.spec.name,
                "an idle process ended or stopped asking for events"
            );
        }
        None
    }

    fn register(&self, process: &Process) {
        let mut live = lock(&self.live);
        live.retain(|control| control.upgrade().is_some_and(|c| !c.exited()));
        live.push(Arc::downgrade(&process.control));
    }

    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let pools = Arc::downgrade(self);
        let period = Duration::from_millis((self.config.idle_ms / 4).clamp(50, 5_000));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(pools) = pools.upgrade() else {
                    break;
                };
                pools.sweep();
            }
        });
    }

    /// Stops processes idle for `idle_ms`, drops ended ones, forgets empty unused pools.
    fn sweep(&self) {
        let now = Instant::now();
        let idle_for = Duration::from_millis(self.config.idle_ms);
        let mut stopped = Vec::new();
        let mut pools = lock(&self.pools);
        pools.retain(|_, pool| {
            let mut state = lock(&pool.state);
            let (keep, stop): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|idle| {
                    !idle.process.exited() && now.duration_since(idle.since) < idle_for
                });
            state.idle = keep;
            stopped.extend(stop);
            state.users > 0 || !state.idle.is_empty()
        });
        drop(pools);
        if !stopped.is_empty() {
            tracing::debug!(
                processes = stopped.len(),
                "stopping idle function processes"
            );
        }
        drop(stopped);
        lock(&self.live).retain(|control| control.upgrade().is_some_and(|c| !c.exited()));
    }

    pub(crate) fn retire(&self, function: &str) {
        let mut stopped = Vec::new();
        let mut pools = lock(&self.pools);
        pools.retain(|(name, _), pool| {
            if name != function {
                return true;
            }
            stopped.extend(pool.retire());
            false
        });
        drop(pools);
        drop(stopped);
    }

    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let retired: Vec<Arc<Pool>> = lock(&self.pools).drain().map(|(_, pool)| pool).collect();
        for pool in retired {
            drop(pool.retire());
        }
        let controls: Vec<Arc<Control>> = lock(&self.live)
            .drain(..)
            .filter_map(|control| control.upgrade())
            .collect();
        for control in &controls {
            control.stop();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(SHUTDOWN_WAIT_MS);
        for control in &controls {
            if tokio::time::timeout_at(deadline, control.wait())
                .await
                .is_err()
            {
                tracing::warn!(pid = ?control.pid(), "a function process did not end in time");
            }
        }
    }
}

/// How the wait for an invocation's end finished.
enum Ended {
    Reply(Reply),
    Exit(Exit),
    /// The deadline passed (or, before the event was taken, the init limit).
    Timeout,
}

async fn delivery(pending: &mut Option<oneshot::Receiver<Instant>>) -> Instant {
    let Some(receiver) = pending.as_mut() else {
        return std::future::pending().await;
    };
    let delivered = receiver.await;
    *pending = None;
    match delivered {
        Ok(at) => at,
        Err(_) => std::future::pending().await,
    }
}

/// Runs one invocation on `process`; returns its result and whether the process may serve
/// again.
async fn run_invocation(
    spec: &FunctionSpec,
    process: &mut Process,
    invocation: Invocation,
    budget_ms: u64,
) -> (InvokeResult, bool) {
    let request_id = invocation.request_id.clone();
    let cold = process.invocations == 0;
    process.invocations += 1;
    let start_line = format!("START RequestId: {request_id} Version: {}\n", spec.version);

    let (delivered, delivered_rx) = oneshot::channel();
    let (reply, reply_rx) = oneshot::channel();
    let assigned_at = Instant::now();
    process.endpoint.assign(Assignment {
        invocation,
        budget_ms,
        start_line: start_line.clone(),
        delivered,
        reply,
    });
    let control = Arc::clone(&process.control);
    let reply = async move {
        match reply_rx.await {
            Ok(reply) => reply,
            // The runtime's connection broke mid-answer: its exit (or the deadline) decides.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(reply);
    let exit = control.wait();
    tokio::pin!(exit);
    let mut pending_delivery = Some(delivered_rx);
    let mut delivered_at: Option<Instant> = None;
    let budget = Duration::from_millis(budget_ms);
    // A warm process takes the event at once; a cold one initialises first, within Lambda's
    // init limit, and the handler's time starts when it takes the event.
    let init_limit = if cold {
        Duration::from_millis(INIT_MS_MAX)
    } else {
        budget
    };
    let ended = loop {
        let deadline = match delivered_at {
            Some(at) => at + budget,
            None => assigned_at + init_limit,
        };
        tokio::select! {
            biased;
            reply = &mut reply => break Ended::Reply(reply),
            exit = &mut exit => break Ended::Exit(exit),
            at = delivery(&mut pending_delivery) => delivered_at = Some(at),
            () = tokio::time::sleep_until(deadline.into()) => break Ended::Timeout,
        }
    };
    if delivered_at.is_none() {
        if let Some(mut receiver) = pending_delivery {
            delivered_at = receiver.try_recv().ok();
        }
    }
    let ended_at = Instant::now();
    let duration = ended_at.duration_since(delivered_at.unwrap_or(assigned_at));
    let max_memory_mb = max_memory_used_mb(control.pid()).await;

    let mut notes = String::new();
    let mut status = String::new();
    let (outcome, reusable) = match ended {
        Ended::Reply(Reply::Response(body)) => (InvokeOutcome::Success(body), true),
        Ended::Reply(Reply::Error { error_type, body }) => (
            InvokeOutcome::FunctionError {
                error_type,
                payload: body,
            },
            true,
        ),
        Ended::Reply(Reply::TooLarge) => (
            InvokeOutcome::RuntimeFailed {
                error_type: "Function.ResponseSizeTooLarge".to_owned(),
                message: format!(
                    "Response payload size exceeded maximum allowed payload size \
                     ({RESPONSE_BYTES_MAX} bytes)."
                ),
            },
            true,
        ),
        Ended::Reply(Reply::InitError { error_type, body }) => {
            // The runtime exits after reporting; make sure of it.
            control.stop();
            let message = error_message_of(&body).unwrap_or_else(|| {
                format!("RequestId: {request_id} Error: Runtime failed to initialize")
            });
            status = format!("\tStatus: error\tError Type: {error_type}");
            (
                InvokeOutcome::RuntimeFailed {
                    error_type,
                    message,
                },
                false,
            )
        }
        Ended::Exit(exit) => {
            let message = format!("RequestId: {request_id} Error: {}", exit.lambda_reason());
            notes = format!("{message}\nRuntime.ExitError\n");
            status = "\tStatus: error\tError Type: Runtime.ExitError".to_owned();
            (
                InvokeOutcome::RuntimeFailed {
                    error_type: "Runtime.ExitError".to_owned(),
                    message,
                },
                false,
            )
        }
        Ended::Timeout => {
            control.stop();
            tracing::debug!(function = spec.name, request_id, "invocation timed out");
            notes = match delivered_at {
                Some(_) => format!(
                    "{} {request_id} Task timed out after {:.2} seconds\n",
                    utc_timestamp(),
                    budget_ms as f64 / 1000.0
                ),
                None => format!(
                    "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout\n",
                    ms(duration)
                ),
            };
            status = "\tStatus: timeout".to_owned();
            (InvokeOutcome::TimedOut, false)
        }
    };
    let billed_ms = u64::try_from(duration.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    let init = match (cold, delivered_at) {
        (true, Some(at)) => format!(
            "\tInit Duration: {:.2} ms",
            ms(at.duration_since(process.spawned_at))
        ),
        _ => String::new(),
    };
    let lines = format!(
        "{notes}END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {:.2} ms\t\
         Billed Duration: {billed_ms} ms\tMemory Size: {} MB\tMax Memory Used: {max_memory_mb} MB\
         {init}{status}\t\n",
        ms(duration),
        spec.memory_mb,
    );
    // Never delivered (the process failed or hung in its init): the invocation's lines still
    // open with START.
    process.output.begin(start_line).await;
    let log_tail = process.output.end(lines).await;
    (
        InvokeResult {
            outcome,
            log_tail,
            duration_ms: billed_ms,
        },
        reusable,
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Now as `2024-01-15T10:00:03.123Z`, as Lambda stamps its own log lines.
fn utc_timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (year, month, day) = crate::process::civil_date(secs / 86_400);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        now.subsec_millis()
    )
}
