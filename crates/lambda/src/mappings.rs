//! Event source mappings: each mapping's settings, stored durably, and the pollers
//! (`sluice-poller`) that run the enabled ones.
//!
//! Layout: `lambda/mappings/<uuid>.json`, one [`MappingRecord`] (JSON) per mapping, written
//! like `function.json` (temporary file, fsync, rename, fsync of the directory): the record is
//! the commit point of every change. A mapping's checkpoints live in the stream catalog under
//! the consumer name `lambda-esm/<uuid>`, so a poller started again (after an update, a
//! disable, a restart) resumes where the last one committed.
//!
//! States: every change is committed in a transitional state (Creating, Enabling, Disabling,
//! Updating, Deleting) and answered; a task of its own then carries it out ([`settle`]): it
//! stops the mapping's poller, starts one with the new settings if the mapping is enabled and
//! commits Enabled or Disabled; a Deleting mapping's checkpoints and record are removed
//! instead. The API refuses to change a mapping in a transitional state
//! (ResourceInUseException), so at most one task works on a mapping at a time. At open, a
//! mapping found in a transitional state (a crash) is settled the same way: Enabled or
//! Disabled by its `enabled` flag, or removed if it was being deleted.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_poller::{FailureSinks, Filter, Poller, PollerSpec, StartingPosition};
use sluice_streams::{ConsumerName, Streams};

use crate::names::{FunctionName, Scope};
use crate::service::Lambda;
use crate::store::{io_err, remove_any, sync_dir, write_atomic, StoreError};

const FORMAT_VERSION: u32 = 1;
const RECORD_SUFFIX: &str = ".json";

/// A mapping's state, as `State` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingState {
    Creating,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Updating,
    Deleting,
}

impl MappingState {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingState::Creating => "Creating",
            MappingState::Enabling => "Enabling",
            MappingState::Enabled => "Enabled",
            MappingState::Disabling => "Disabling",
            MappingState::Disabled => "Disabled",
            MappingState::Updating => "Updating",
            MappingState::Deleting => "Deleting",
        }
    }

    /// Enabled or Disabled: no change under way.
    pub fn is_settled(self) -> bool {
        matches!(self, MappingState::Enabled | MappingState::Disabled)
    }

    /// Where a change ends, for a mapping whose `enabled` flag is `enabled`.
    pub fn settled(enabled: bool) -> MappingState {
        if enabled {
            MappingState::Enabled
        } else {
            MappingState::Disabled
        }
    }
}

/// One mapping as stored (`<uuid>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRecord {
    pub format_version: u32,
    pub uuid: String,
    /// The function's name, and the qualifier the request named it with (only `$LATEST`
    /// exists): `FunctionArn` shows it.
    pub function_name: String,
    pub qualifier: Option<String>,
    /// As given: a stream ARN or a registered consumer's.
    pub event_source_arn: String,
    /// The stream read (the consumer's stream for a consumer ARN).
    pub stream: String,
    /// `TRIM_HORIZON`, `LATEST` or `AT_TIMESTAMP`.
    pub starting_position: String,
    pub starting_position_timestamp_ms: Option<i64>,
    /// When the mapping was created (ms since 1970): where `LATEST` starts, so that every
    /// record put once CreateEventSourceMapping has answered is processed, however late the
    /// poller's first read comes. None in mappings stored before it was kept (plain LATEST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<i64>,
    pub batch_size: u32,
    pub batching_window_s: u32,
    pub parallelization_factor: u32,
    pub bisect_batch_on_function_error: bool,
    /// -1: until the records expire.
    pub maximum_retry_attempts: i64,
    /// -1: no limit.
    pub maximum_record_age_s: i64,
    /// FunctionResponseTypes `["ReportBatchItemFailures"]`.
    pub report_batch_item_failures: bool,
    /// FilterCriteria.Filters[].Pattern, as given.
    pub filter_patterns: Vec<String>,
    /// 0: none.
    pub tumbling_window_s: u32,
    /// MetricsConfig.Metrics as given (`EventCount`); sluice exports every mapping's event
    /// counts on `/metrics` whatever it says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// DestinationConfig.OnFailure.Destination.
    pub on_failure: Option<String>,
    pub enabled: bool,
    pub state: MappingState,
    pub last_modified_ms: i64,
    /// LastProcessingResult when the mapping last stopped (a running poller has its own).
    pub last_processing_result: String,
    pub tags: BTreeMap<String, String>,
}

impl MappingRecord {
    /// The consumer name the mapping's checkpoints live under.
    pub fn consumer(&self) -> Option<ConsumerName> {
        ConsumerName::new(&format!("lambda-esm/{}", self.uuid))
    }

    pub fn function(&self) -> Option<FunctionName> {
        FunctionName::new(&self.function_name)
    }

    /// `FunctionArn`: the function's ARN, with the qualifier the mapping was made with.
    pub fn function_arn(&self, scope: &Scope) -> String {
        let mut arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            scope.region, scope.account_id, self.function_name
        );
        if let Some(q) = &self.qualifier {
            arn.push(':');
            arn.push_str(q);
        }
        arn
    }

    /// `EventSourceMappingArn`.
    pub fn arn(&self, scope: &Scope) -> String {
        mapping_arn(scope, &self.uuid)
    }
}

/// `arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>`.
pub fn mapping_arn(scope: &Scope, uuid: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:event-source-mapping:{uuid}",
        scope.region, scope.account_id
    )
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
pub fn stream_arn(scope: &Scope, stream: &str) -> String {
    format!(
        "arn:aws:kinesis:{}:{}:stream/{stream}",
        scope.region, scope.account_id
    )
}

/// Whether `s` can be a mapping's UUID (and so a file name): hex digits and dashes.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// The mapping records on disk.
#[derive(Debug)]
pub struct MappingStore {
    /// `<data_dir>/lambda/mappings`.
    dir: PathBuf,
}

impl MappingStore {
    /// Opens (creating) `<data_dir>/lambda/mappings` and reads every record; temporary files a
    /// write left behind are removed. Blocking.
    pub fn open(data_dir: &Path) -> Result<(MappingStore, Vec<MappingRecord>), StoreError> {
        let dir = data_dir.join("lambda").join("mappings");
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut records = Vec::new();
        let entries = fs::read_dir(&dir).map_err(io_err(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err("reading the mapping directory"))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(uuid) = file_name.strip_suffix(RECORD_SUFFIX).filter(|u| is_uuid(u)) else {
                tracing::info!(path = %path.display(), "removing a leftover in the mapping store");
                remove_any(&path);
                continue;
            };
            let text = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
            let record: MappingRecord = serde_json::from_slice(&text)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
            if record.format_version != FORMAT_VERSION || record.uuid != uuid {
                return Err(StoreError::Corrupt(format!(
                    "{}: format version {} for mapping {:?}",
                    path.display(),
                    record.format_version,
                    record.uuid
                )));
            }
            records.push(record);
        }
        records.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok((MappingStore { dir }, records))
    }

    fn path(&self, uuid: &str) -> PathBuf {
        self.dir.join(format!("{uuid}{RECORD_SUFFIX}"))
    }

    /// Commits `record` (creating or replacing it). Blocking.
    pub fn put(&self, record: &MappingRecord) -> Result<(), StoreError> {
        let mut record = record.clone();
        record.format_version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| StoreError::Corrupt(format!("encoding mapping {}: {e}", record.uuid)))?;
        write_atomic(&self.path(&record.uuid), &bytes)
            .map_err(io_err(format!("writing mapping {}", record.uuid)))
    }

    /// Removes a mapping's record. Blocking.
    pub fn remove(&self, uuid: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(uuid)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("deleting mapping {uuid}"))(e)),
        }
        sync_dir(&self.dir)
    }
}

/// The mappings of one server: their records and the pollers of the enabled ones.
pub(crate) struct Mappings {
    store: MappingStore,
    records: Mutex<BTreeMap<String, Arc<MappingRecord>>>,
    pollers: Mutex<HashMap<String, Poller>>,
    /// Held across every change of a record (async, so that waiting does not hold a worker).
    writer: tokio::sync::Mutex<()>,
    /// Set by shutdown: no poller starts after it.
    closing: AtomicBool,
    pub(crate) streams: Arc<Streams>,
    sinks: Arc<FailureSinks>,
    /// How long a change stays in its transitional state before it is carried out.
    state_delay_ms: u64,
}

impl std::fmt::Debug for Mappings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mappings")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Mappings {
    /// Opens the mapping store and settles what a crash left in a transitional state:
    /// Enabled or Disabled by the `enabled` flag, Deleting ones removed with their
    /// checkpoints. Blocking.
    pub(crate) fn open(
        data_dir: &Path,
        streams: Arc<Streams>,
        lake: sluice_lake::Lake,
        state_delay_ms: u64,
    ) -> Result<Mappings, StoreError> {
        let (store, found) = MappingStore::open(data_dir)?;
        let mut records = BTreeMap::new();
        for mut r in found {
            match r.state {
                MappingState::Deleting => {
                    tracing::info!(mapping = r.uuid, "finishing the deletion of a mapping");
                    if let Some(consumer) = r.consumer() {
                        Poller::forget(&streams, &consumer);
                    }
                    store.remove(&r.uuid)?;
                    continue;
                }
                s if !s.is_settled() => {
                    r.state = MappingState::settled(r.enabled);
                    store.put(&r)?;
                }
                _ => {}
            }
            records.insert(r.uuid.clone(), Arc::new(r));
        }
        let sinks = Arc::new(FailureSinks {
            streams: streams.clone(),
            lake,
        });
        Ok(Mappings {
            store,
            records: Mutex::new(records),
            pollers: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            closing: AtomicBool::new(false),
            streams,
            sinks,
            state_delay_ms,
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<MappingRecord>>> {
        // Each change is one insert or remove: a poisoned lock's map is whole.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn running(&self) -> MutexGuard<'_, HashMap<String, Poller>> {
        self.pollers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, uuid: &str) -> Option<Arc<MappingRecord>> {
        self.map().get(uuid).cloned()
    }

    /// Every mapping, by UUID.
    pub(crate) fn list(&self) -> Vec<Arc<MappingRecord>> {
        self.map().values().cloned().collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.map().len()
    }

    /// Serializes changes: hold the guard across a read-modify-write.
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// Commits `record` and makes it the one the API sees. Blocking; call with the writer
    /// lock held.
    pub(crate) fn commit(&self, record: MappingRecord) -> Result<Arc<MappingRecord>, StoreError> {
        self.store.put(&record)?;
        let r = Arc::new(record);
        self.map().insert(r.uuid.clone(), r.clone());
        Ok(r)
    }

    /// LastProcessingResult: the running poller's, else the one kept when it stopped.
    pub(crate) fn last_processing_result(&self, record: &MappingRecord) -> String {
        match self.running().get(&record.uuid) {
            Some(p) => p.status().last_processing_result,
            None => record.last_processing_result.clone(),
        }
    }

    /// Stops every poller (each finishes the invocation in flight); none starts after this.
    pub(crate) async fn shutdown(&self) {
        {
            let _writer = self.writer.lock().await;
            self.closing.store(true, Ordering::SeqCst);
        }
        let pollers: Vec<Poller> = self.running().drain().map(|(_, p)| p).collect();
        let mut stops = tokio::task::JoinSet::new();
        for p in pollers {
            stops.spawn(p.stop());
        }
        while stops.join_next().await.is_some() {}
    }
}

/// Where a mapping without checkpoints starts reading. LATEST is taken as of the mapping's
/// creation: the first read may come later (a busy machine, a restart before any checkpoint),
/// and what was put in between is the mapping's too.
fn starting_position(r: &MappingRecord) -> StartingPosition {
    match (
        r.starting_position.as_str(),
        r.starting_position_timestamp_ms,
    ) {
        ("TRIM_HORIZON", _) => StartingPosition::TrimHorizon,
        ("AT_TIMESTAMP", Some(ms)) => StartingPosition::AtTimestamp(ms),
        _ => r
            .created_ms
            .map_or(StartingPosition::Latest, StartingPosition::AtTimestamp),
    }
}

/// The poller settings of `r`. An error says why it cannot run (a pattern the filter
/// compiler no longer takes, a destination that no longer parses).
pub(crate) fn poller_spec(lambda: &Lambda, r: &MappingRecord) -> Result<PollerSpec, String> {
    let consumer = r
        .consumer()
        .ok_or_else(|| format!("mapping {} has no valid consumer name", r.uuid))?;
    let mut spec = PollerSpec::new(
        &r.uuid,
        consumer,
        &r.stream,
        &stream_arn(&lambda.scope, &r.stream),
    );
    spec.starting_position = starting_position(r);
    spec.batch_size = r.batch_size;
    spec.batching_window_ms = u64::from(r.batching_window_s) * 1000;
    spec.parallelization_factor = r.parallelization_factor;
    spec.bisect_on_error = r.bisect_batch_on_function_error;
    spec.maximum_retry_attempts = u32::try_from(r.maximum_retry_attempts).ok();
    spec.maximum_record_age_ms = u64::try_from(r.maximum_record_age_s).ok().map(|s| s * 1000);
    spec.report_batch_item_failures = r.report_batch_item_failures;
    spec.filters = r
        .filter_patterns
        .iter()
        .map(|p| Filter::parse(p).map(Arc::new).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    spec.tumbling_window_s = r.tumbling_window_s;
    spec.on_failure = match &r.on_failure {
        Some(arn) => Some(
            crate::ops::mappings::destination(&lambda.scope, arn)
                .map_err(|e| e.message.unwrap_or_default())?,
        ),
        None => None,
    };
    Ok(spec)
}

/// Starts `r`'s poller (it must be enabled), replacing none: the caller has stopped any.
fn start_poller(lambda: &Arc<Lambda>, r: &MappingRecord) {
    let spec = match poller_spec(lambda, r) {
        Ok(s) => s,
        Err(why) => {
            tracing::error!(
                mapping = r.uuid,
                error = why,
                "cannot start the mapping's poller"
            );
            return;
        }
    };
    let Some(function) = r.function() else {
        tracing::error!(
            mapping = r.uuid,
            function = r.function_name,
            "mapping names no valid function"
        );
        return;
    };
    let target = Arc::new(crate::target::FunctionTarget::new(
        Arc::downgrade(lambda),
        function,
        r.function_arn(&lambda.scope),
    ));
    let m = &lambda.mappings;
    let poller = Poller::start(m.streams.clone(), spec, target, m.sinks.clone());
    if let Some(old) = m.running().insert(r.uuid.clone(), poller) {
        // Not expected (each mapping has one change under way at most); stop it anyway.
        tokio::spawn(old.stop());
    }
}

/// Starts the pollers of every enabled mapping (at start, once handlers can reach sluice).
pub(crate) fn start_all(lambda: &Arc<Lambda>) {
    let enabled: Vec<Arc<MappingRecord>> = lambda
        .mappings
        .list()
        .into_iter()
        .filter(|r| r.state == MappingState::Enabled)
        .collect();
    for r in &enabled {
        start_poller(lambda, r);
    }
    if !enabled.is_empty() {
        tracing::info!(mappings = enabled.len(), "event source mappings started");
    }
}

/// Carries out the change committed for `uuid` once the state delay has passed, on a task of
/// its own.
pub(crate) fn schedule(lambda: &Arc<Lambda>, uuid: String) {
    let weak = Arc::downgrade(lambda);
    let delay = lambda.mappings.state_delay_ms;
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if let Some(lambda) = weak.upgrade() {
            settle(&lambda, &uuid).await;
        }
    });
}

/// Stops the mapping's poller, then commits where its change ends: Enabled (and a new poller)
/// or Disabled; a Deleting mapping's checkpoints and record are removed.
pub(crate) async fn settle(lambda: &Arc<Lambda>, uuid: &str) {
    let m = &lambda.mappings;
    let old = m.running().remove(uuid);
    let mut last_result = None;
    if let Some(p) = old {
        last_result = Some(p.status().last_processing_result);
        p.stop().await;
    }
    let _writer = m.writer.lock().await;
    let Some(r) = m.get(uuid) else { return };
    if r.state == MappingState::Deleting {
        if let Some(consumer) = r.consumer() {
            let streams = m.streams.clone();
            let forgotten =
                tokio::task::spawn_blocking(move || Poller::forget(&streams, &consumer)).await;
            if let Err(e) = forgotten {
                tracing::warn!(mapping = uuid, error = %e, "could not remove the mapping's checkpoints");
            }
        }
        match sluice_aws::blocking(|| m.store.remove(uuid)) {
            Ok(()) => {
                m.map().remove(uuid);
                tracing::info!(mapping = uuid, "event source mapping deleted");
            }
            Err(e) => {
                tracing::error!(mapping = uuid, error = %e, "could not delete the mapping's record; it is removed at the next start");
            }
        }
        return;
    }
    let mut next = (*r).clone();
    next.state = MappingState::settled(r.enabled);
    if next.state != r.state {
        // LastModified is also when the state last changed.
        next.last_modified_ms = (lambda.now_ms)();
    }
    if let Some(l) = last_result {
        next.last_processing_result = l;
    }
    let r = if next != *r {
        match sluice_aws::blocking(|| m.commit(next)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(mapping = uuid, error = %e, "could not commit the mapping's state; it is settled at the next start");
                return;
            }
        }
    } else {
        r
    };
    if r.state == MappingState::Enabled && !m.closing.load(Ordering::SeqCst) {
        start_poller(lambda, &r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(uuid: &str) -> MappingRecord {
        MappingRecord {
            format_version: FORMAT_VERSION,
            uuid: uuid.into(),
            function_name: "f".into(),
            qualifier: None,
            event_source_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
            stream: "s".into(),
            starting_position: "LATEST".into(),
            starting_position_timestamp_ms: None,
            created_ms: None,
            batch_size: 100,
            batching_window_s: 0,
            parallelization_factor: 1,
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: -1,
            maximum_record_age_s: -1,
            report_batch_item_failures: false,
            filter_patterns: Vec::new(),
            tumbling_window_s: 0,
            metrics: Vec::new(),
            on_failure: None,
            enabled: true,
            state: MappingState::Enabled,
            last_modified_ms: 1,
            last_processing_result: "No records processed".into(),
            tags: BTreeMap::new(),
        }
    }

    const A: &str = "0dcede66-709c-4073-a628-724d01b92095";
    const B: &str = "14e0db71-5d35-4eb5-b481-8945cf9d10c2";
    const C: &str = "27b21cb4-2e9b-42e7-9431-2e2a985fd42e";
    const D: &str = "00a3d08e-fa6a-4e0c-8e86-4aafeac0ceef";

    #[test]
    fn latest_starts_where_the_mapping_was_created() {
        let mut r = record("a");
        assert_eq!(starting_position(&r), StartingPosition::Latest);
        r.created_ms = Some(1_700_000_000_000);
        assert_eq!(
            starting_position(&r),
            StartingPosition::AtTimestamp(1_700_000_000_000)
        );
        r.starting_position = "TRIM_HORIZON".into();
        assert_eq!(starting_position(&r), StartingPosition::TrimHorizon);
        r.starting_position = "AT_TIMESTAMP".into();
        r.starting_position_timestamp_ms = Some(5);
        assert_eq!(starting_position(&r), StartingPosition::AtTimestamp(5));
    }

    #[test]
    fn uuids() {
        assert!(is_uuid(A));
        assert!(is_uuid(&crate::store::new_revision_id()));
        assert!(!is_uuid("0dcede66-709c-4073-a628-724d01b9209"));
        assert!(!is_uuid("0dcede66x709c-4073-a628-724d01b92095"));
        assert!(!is_uuid("../../../../etc/passwd-0000000000000000"));
    }

    #[test]
    fn records_survive_reopen_and_leftovers_go() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, found) = MappingStore::open(tmp.path()).unwrap();
        assert!(found.is_empty());
        let mut a = record(A);
        a.tags.insert("k".into(), "v".into());
        store.put(&a).unwrap();
        store.put(&record(B)).unwrap();
        store.remove(B).unwrap();
        store.remove(B).unwrap();
        let dir = tmp.path().join("lambda/mappings");
        fs::write(dir.join(format!("{C}.json.tmp")), b"{half").unwrap();
        drop(store);
        let (_, found) = MappingStore::open(tmp.path()).unwrap();
        assert_eq!(found, vec![a]);
        assert!(!dir.join(format!("{C}.json.tmp")).exists());
        // A record that does not parse stops the open.
        fs::write(dir.join(format!("{D}.json")), b"{}").unwrap();
        assert!(matches!(
            MappingStore::open(tmp.path()),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn open_settles_what_a_crash_left() {
        let tmp = tempfile::tempdir().unwrap();
        let streams = Arc::new(
            Streams::open(
                sluice_streams::StreamsConfig::new(tmp.path().join("streams")),
                Arc::new(sluice_streams::SystemClock),
            )
            .unwrap(),
        );
        let (store, _) = MappingStore::open(tmp.path()).unwrap();
        let mut creating = record(A);
        creating.state = MappingState::Creating;
        let mut updating_disabled = record(B);
        updating_disabled.state = MappingState::Disabling;
        updating_disabled.enabled = false;
        let mut deleting = record(C);
        deleting.state = MappingState::Deleting;
        for r in [&creating, &updating_disabled, &deleting] {
            store.put(r).unwrap();
        }
        let m = Mappings::open(
            tmp.path(),
            streams.clone(),
            sluice_lake::Lake::local(tmp.path().join("lake")),
            0,
        )
        .unwrap();
        assert_eq!(m.get(A).unwrap().state, MappingState::Enabled);
        assert_eq!(m.get(B).unwrap().state, MappingState::Disabled);
        assert!(m.get(C).is_none());
        assert!(!tmp
            .path()
            .join(format!("lambda/mappings/{C}.json"))
            .exists());
        // Settled on disk too.
        let (_, found) = MappingStore::open(tmp.path()).unwrap();
        let states: Vec<_> = found.iter().map(|r| r.state).collect();
        assert_eq!(states, [MappingState::Enabled, MappingState::Disabled]);
        streams.close();
    }
}
