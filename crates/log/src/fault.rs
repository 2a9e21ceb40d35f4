//! A fault-injecting, in-memory [`Storage`] for tests: it models what the operating system
//! keeps where, can be scripted to fail, and produces the images a crash would leave.
//!
//! The model:
//! - Every file has its **page cache** contents (what reads see, what a `kill -9` leaves) and
//!   its **durable** contents (what a power loss leaves). The writes and truncations since the
//!   last sync are kept, in order, as the file's pending operations; `sync_data` / `sync_all`
//!   apply them to the durable contents. A sync that fails drops them, as Linux does after a
//!   failed writeback (the pages stay cached and readable but are marked clean, so no later
//!   sync writes them): only writing the bytes again makes them durable.
//! - Directory entries (creations, renames, removals) are durable once the directory is synced
//!   ([`Storage::sync_dir`]); until then they are pending too, in the order they were made
//!   (a journaling file system commits them in that order). Directories themselves are durable
//!   when created.
//! - A capacity ([`FaultStorage::set_capacity_bytes`]) makes writes that would grow past it
//!   write what fits and report a short count, then fail with `ENOSPC`, as Linux does.
//!
//! Faults are scripted with [`FaultRule`]s: fail the Nth write or sync, or every one from now
//! on, with `EIO` or `ENOSPC`; short writes; a write that stores part of its bytes and then
//! fails; a power cut in the middle of a write (a torn write). [`FaultStorage::crash_image`]
//! turns the current state into a new storage holding what a crash would leave ([`Crash`]), on
//! which a test reopens a [`crate::Log`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::storage::{Storage, StorageFile};

/// Linux `EIO`.
const EIO: i32 = 5;
/// Linux `ENOSPC`.
const ENOSPC: i32 = 28;
/// Linux `ENOENT`.
const ENOENT: i32 = 2;

/// The operations a [`FaultRule`] can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `write_at` of a file.
    Write,
    /// `sync_data` or `sync_all` of a file.
    Sync,
    /// `sync_dir`.
    SyncDir,
    /// `set_len` of a file.
    SetLen,
    /// `read_at` of a file.
    Read,
    /// Creating a file.
    Create,
    /// Opening an existing file.
    Open,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
}

/// An error the storage can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: no space left on the device.
    NoSpace,
}

impl Errno {
    fn to_io(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            Errno::Eio => EIO,
            Errno::NoSpace => ENOSPC,
        })
    }
}

/// What happens to an operation a rule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with the error and changes nothing.
    Error(Errno),
    /// A write takes only its first `bytes` bytes (at most all of them) and reports that count,
    /// which is not an error: the caller is expected to write the rest. On other operations,
    /// nothing happens.
    Short { bytes: usize },
    /// A write stores its first `bytes` bytes (at most all of them) in the page cache, then
    /// fails with `error`. On other operations, the same as [`Fault::Error`].
    PartialThenError { bytes: usize, error: Errno },
    /// The power is cut in the middle of a write: its first `bytes` bytes reach the disk, the
    /// rest does not, and the image of the disk the power loss leaves is kept (see
    /// [`FaultStorage::take_crash_images`]): what was durable, plus that torn write, plus (as the
    /// disk wrote it before) what was written to the file since its last sync. From then on
    /// every operation fails with `EIO`, as a machine without power does. On other operations
    /// the power is cut before the operation does anything.
    TornCrash { bytes: usize },
}

/// One scripted fault: which operations it applies to, and when.
#[derive(Debug, Clone)]
pub struct FaultRule {
    op: Op,
    fault: Fault,
    skip: u64,
    times: Option<u64>,
    path_suffix: Option<String>,
}

impl FaultRule {
    /// Fires once, on the next operation of kind `op`.
    pub fn new(op: Op, fault: Fault) -> FaultRule {
        FaultRule {
            op,
            fault,
            skip: 0,
            times: Some(1),
            path_suffix: None,
        }
    }

    /// Lets `skip` matching operations pass first: `.after(2)` fails the third.
    pub fn after(mut self, skip: u64) -> FaultRule {
        self.skip = skip;
        self
    }

    /// Fires on `n` matching operations (once armed), then retires.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.times = Some(n);
        self
    }

    /// Fires on every matching operation until [`FaultStorage::clear_faults`].
    pub fn forever(mut self) -> FaultRule {
        self.times = None;
        self
    }

    /// Only operations on paths ending with `suffix` (for example `".seg"`) match.
    pub fn on_paths_ending(mut self, suffix: &str) -> FaultRule {
        self.path_suffix = Some(suffix.to_string());
        self
    }

    fn matches(&self, op: Op, path: &Path) -> bool {
        self.op == op
            && self
                .path_suffix
                .as_deref()
                .is_none_or(|s| path.as_os_str().to_string_lossy().ends_with(s))
    }
}

/// Which crash a [`FaultStorage::crash_image`] models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// Power loss: only what was made durable survives.
    PowerLoss,
    /// Power loss after which the disk turns out to have written some of what was not yet
    /// synced: a prefix of the pending directory changes, and for each file, in order, each
    /// pending write skipped, whole, or cut at a random byte (a torn write), each pending
    /// truncation done or not. The choices come from `seed`.
    PowerLossTorn { seed: u64 },
    /// The process is killed (`kill -9`): the page cache survives, so everything written is
    /// there, synced or not.
    ProcessKill,
}

/// What a sync hook is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPoint {
    /// The file synced, or the directory for a directory sync.
    pub path: PathBuf,
    /// True for a directory sync.
    pub dir: bool,
    /// Successful syncs (file and directory) so far, this one included.
    pub count: u64,
}

/// Called after each successful sync, on the thread that synced, with no lock held: it may
/// take a [`FaultStorage::crash_image`].
pub type SyncHook = Arc<dyn Fn(&FaultStorage, &SyncPoint) + Send + Sync>;

type InodeId = u64;

#[derive(Debug, Clone)]
enum Pending {
    Write { position: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// The page cache: what reads see.
    data: Vec<u8>,
    /// What is on the disk for sure.
    durable: Vec<u8>,
    /// Changes since the last sync, oldest first: `durable` plus these is `data`.
    pending: Vec<Pending>,
}

/// A directory change not yet made durable: the names it sets (to an inode, or to nothing).
#[derive(Debug, Clone)]
struct NameOp {
    changes: Vec<(PathBuf, Option<InodeId>)>,
}

#[derive(Debug, Default)]
struct Disk {
    dirs: BTreeSet<PathBuf>,
    names: BTreeMap<PathBuf, InodeId>,
    durable_names: BTreeMap<PathBuf, InodeId>,
    pending_names: Vec<NameOp>,
    inodes: HashMap<InodeId, Inode>,
    next_inode: InodeId,
    rules: Vec<FaultRule>,
    counts: HashMap<Op, u64>,
    faults_fired: u64,
    capacity_bytes: Option<u64>,
    /// The power is off: every operation fails.
    dead: bool,
    captured: Vec<Disk>,
    syncs: u64,
}

/// The fault to apply to this operation, if any; counts the operation.
fn fault_for(disk: &mut Disk, op: Op, path: &Path) -> Option<Fault> {
    *disk.counts.entry(op).or_insert(0) += 1;
    if disk.dead {
        return Some(Fault::Error(Errno::Eio));
    }
    let mut fired = None;
    for rule in disk.rules.iter_mut() {
        if !rule.matches(op, path) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        if fired.is_none() && rule.times != Some(0) {
            fired = Some(rule.fault);
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
        }
    }
    disk.rules.retain(|r| r.times != Some(0));
    if fired.is_some() {
        disk.faults_fired += 1;
    }
    fired
}

impl Disk {
    fn used_bytes(&self) -> u64 {
        let live: BTreeSet<InodeId> = self.names.values().copied().collect();
        live.iter()
            .filter_map(|i| self.inodes.get(i))
            .map(|n| n.data.len() as u64)
            .sum()
    }

    fn set_name(&mut self, changes: Vec<(PathBuf, Option<InodeId>)>) {
        for (path, inode) in &changes {
            match inode {
                Some(i) => {
                    self.names.insert(path.clone(), *i);
                }
                None => {
                    self.names.remove(path);
                }
            }
        }
        self.pending_names.push(NameOp { changes });
    }

    /// The disk a crash leaves.
    fn image(&self, crash: Crash) -> Disk {
        let mut rng = Rng(match crash {
            Crash::PowerLossTorn { seed } => seed,
            _ => 0,
        });
        let names = match crash {
            Crash::ProcessKill => self.names.clone(),
            Crash::PowerLoss => self.durable_names.clone(),
            Crash::PowerLossTorn { .. } => {
                let mut names = self.durable_names.clone();
                let applied = rng.below(self.pending_names.len() as u64 + 1) as usize;
                for op in &self.pending_names[..applied] {
                    apply_names(&mut names, op);
                }
                names
            }
        };
        let mut inodes = HashMap::new();
        for inode in names.values() {
            if inodes.contains_key(inode) {
                continue;
            }
            let Some(node) = self.inodes.get(inode) else {
                continue;
            };
            let contents = match crash {
                Crash::ProcessKill => node.data.clone(),
                Crash::PowerLoss => node.durable.clone(),
                Crash::PowerLossTorn { .. } => {
                    let mut c = node.durable.clone();
                    for p in &node.pending {
                        match p {
                            Pending::Write { position, bytes } => match rng.below(3) {
                                0 => {}
                                1 => write_into(&mut c, *position, bytes),
                                _ => {
                                    let keep = rng.below(bytes.len() as u64 + 1) as usize;
                                    write_into(&mut c, *position, &bytes[..keep]);
                                }
                            },
                            Pending::SetLen(len) => {
                                if rng.below(2) == 0 {
                                    resize(&mut c, *len);
                                }
                            }
                        }
                    }
                    c
                }
            };
            inodes.insert(
                *inode,
                Inode {
                    data: contents.clone(),
                    durable: contents,
                    pending: Vec::new(),
                },
            );
        }
        Disk {
            dirs: self.dirs.clone(),
            durable_names: names.clone(),
            names,
            inodes,
            next_inode: self.next_inode,
            ..Disk::default()
        }
    }
}

fn apply_names(names: &mut BTreeMap<PathBuf, InodeId>, op: &NameOp) {
    for (path, inode) in &op.changes {
        match inode {
            Some(i) => {
                names.insert(path.clone(), *i);
            }
            None => {
                names.remove(path);
            }
        }
    }
}

fn apply(data: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { position, bytes } => write_into(data, *position, bytes),
        Pending::SetLen(len) => resize(data, *len),
    }
}

fn resize(data: &mut Vec<u8>, len: u64) {
    data.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
}

fn write_into(data: &mut Vec<u8>, position: u64, bytes: &[u8]) {
    let start = usize::try_from(position).unwrap_or(usize::MAX);
    let end = start.saturating_add(bytes.len());
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(bytes);
}

/// splitmix64: enough randomness for torn images, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

struct Inner {
    disk: Mutex<Disk>,
    hook: RwLock<Option<SyncHook>>,
}

/// The in-memory, fault-injecting storage. Clones share the same disk.
#[derive(Clone)]
pub struct FaultStorage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FaultStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let disk = self.disk();
        f.debug_struct("FaultStorage")
            .field("files", &disk.names.len())
            .field("rules", &disk.rules.len())
            .field("dead", &disk.dead)
            .finish()
    }
}

impl Default for FaultStorage {
    fn default() -> Self {
        FaultStorage::new()
    }
}

impl FaultStorage {
    /// An empty disk with no faults scripted.
    pub fn new() -> FaultStorage {
        FaultStorage::from_disk(Disk::default())
    }

    fn from_disk(disk: Disk) -> FaultStorage {
        FaultStorage {
            inner: Arc::new(Inner {
                disk: Mutex::new(disk),
                hook: RwLock::new(None),
            }),
        }
    }

    /// The disk state. A panic while holding the lock (only in a test's own code) leaves the
    /// model as consistent as any crash would, so a poisoned lock is used as is.
    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.inner
            .disk
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a scripted fault. Rules are checked in the order added; the first armed one that
    /// matches an operation fires, and every matching rule counts the operation for `after`.
    pub fn inject(&self, rule: FaultRule) {
        self.disk().rules.push(rule);
    }

    /// Removes every scripted fault (a disk full by capacity stays full).
    pub fn clear_faults(&self) {
        self.disk().rules.clear();
    }

    /// Limits the bytes all files together may hold; `None` for no limit.
    pub fn set_capacity_bytes(&self, capacity: Option<u64>) {
        self.disk().capacity_bytes = capacity;
    }

    /// Bytes all files hold now (page cache view).
    pub fn used_bytes(&self) -> u64 {
        self.disk().used_bytes()
    }

    /// Installs (or removes) the function called after every successful sync.
    pub fn set_sync_hook(&self, hook: Option<SyncHook>) {
        *self
            .inner
            .hook
            .write()
            .unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// How many operations of kind `op` were made, faulted or not.
    pub fn op_count(&self, op: Op) -> u64 {
        self.disk().counts.get(&op).copied().unwrap_or(0)
    }

    /// How many times a scripted fault fired.
    pub fn faults_fired(&self) -> u64 {
        self.disk().faults_fired
    }

    /// True once a [`Fault::TornCrash`] cut the power.
    pub fn is_dead(&self) -> bool {
        self.disk().dead
    }

    /// The images kept by [`Fault::TornCrash`], oldest first; taken out.
    pub fn take_crash_images(&self) -> Vec<FaultStorage> {
        std::mem::take(&mut self.disk().captured)
            .into_iter()
            .map(FaultStorage::from_disk)
            .collect()
    }

    /// A new storage holding what `crash` would leave of this one now. It has no faults.
    pub fn crash_image(&self, crash: Crash) -> FaultStorage {
        FaultStorage::from_disk(self.disk().image(crash))
    }

    /// The paths of all files, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.disk().names.keys().cloned().collect()
    }

    /// A file's contents as reads see them (page cache).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk();
        let inode = disk.names.get(path)?;
        disk.inodes.get(inode).map(|n| n.data.clone())
    }

    /// A file's durable contents (what a power loss leaves, if its name is durable too).
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk();
        let inode = disk.names.get(path)?;
        disk.inodes.get(inode).map(|n| n.durable.clone())
    }

    /// Replaces a file's contents, durably, as a test's tampering with the disk would.
    pub fn overwrite(&self, path: &Path, contents: Vec<u8>) -> io::Result<()> {
        let mut disk = self.disk();
        let inode = *disk.names.get(path).ok_or_else(not_found)?;
        let node = disk.inodes.entry(inode).or_default();
        node.durable = contents.clone();
        node.data = contents;
        node.pending.clear();
        Ok(())
    }

    fn file(&self, path: &Path, inode: InodeId) -> Arc<dyn StorageFile> {
        Arc::new(FaultFile {
            storage: self.clone(),
            path: path.to_path_buf(),
            inode,
        })
    }

    fn after_sync(&self, path: &Path, dir: bool, count: u64) {
        let hook = self
            .inner
            .hook
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(
                self,
                &SyncPoint {
                    path: path.to_path_buf(),
                    dir,
                    count,
                },
            );
        }
    }

    /// Applies a fault to a non-write operation: `Err` to return, or `Ok` to go on.
    fn check(&self, disk: &mut Disk, op: Op, path: &Path) -> io::Result<()> {
        match fault_for(disk, op, path) {
            None | Some(Fault::Short { .. }) => Ok(()),
            Some(Fault::Error(e)) | Some(Fault::PartialThenError { error: e, .. }) => {
                Err(e.to_io())
            }
            Some(Fault::TornCrash { .. }) => {
                power_cut(disk, None);
                Err(Errno::Eio.to_io())
            }
        }
    }
}

/// Keeps the image a power loss now leaves (with `torn` applied on top: the write in flight),
/// then turns the power off.
fn power_cut(disk: &mut Disk, torn: Option<(InodeId, u64, &[u8])>) {
    let mut image = disk.image(Crash::PowerLoss);
    if let Some((inode, position, bytes)) = torn {
        // A torn write reaches the disk only with the writes before it in the same file that
        // the disk had already taken: model the worst order that still tears this one, all
        // earlier pending writes of the file applied.
        if let (Some(node), Some(target)) = (disk.inodes.get(&inode), image.inodes.get_mut(&inode))
        {
            let mut c = node.durable.clone();
            for p in &node.pending {
                apply(&mut c, p);
            }
            write_into(&mut c, position, bytes);
            target.durable = c.clone();
            target.data = c;
        }
    }
    disk.captured.push(image);
    disk.dead = true;
}

fn not_found() -> io::Error {
    io::Error::from_raw_os_error(ENOENT)
}

impl Storage for FaultStorage {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut disk = self.disk();
        self.check(&mut disk, Op::Create, path)?;
        let parent = path.parent().unwrap_or(Path::new(""));
        if !disk.dirs.contains(parent) {
            return Err(not_found());
        }
        let inode = match disk.names.get(path).copied() {
            Some(inode) => {
                // O_TRUNC on an existing file: a pending truncation of the same inode.
                let node = disk.inodes.entry(inode).or_default();
                node.data.clear();
                node.pending.push(Pending::SetLen(0));
                inode
            }
            None => {
                disk.next_inode += 1;
                let inode = disk.next_inode;
                disk.inodes.insert(inode, Inode::default());
                disk.set_name(vec![(path.to_path_buf(), Some(inode))]);
                inode
            }
        };
        drop(disk);
        Ok(self.file(path, inode))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut disk = self.disk();
        self.check(&mut disk, Op::Open, path)?;
        let inode = *disk.names.get(path).ok_or_else(not_found)?;
        drop(disk);
        Ok(self.file(path, inode))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let disk = self.disk();
        if disk.dead {
            return Err(Errno::Eio.to_io());
        }
        if !disk.dirs.contains(dir) {
            return Err(not_found());
        }
        let mut out: Vec<OsString> = disk
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect();
        out.extend(
            disk.dirs
                .iter()
                .filter(|d| d.parent() == Some(dir))
                .filter_map(|d| d.file_name().map(|n| n.to_os_string())),
        );
        Ok(out)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        if disk.dead {
            return Err(Errno::Eio.to_io());
        }
        for d in dir.ancestors() {
            disk.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        self.check(&mut disk, Op::Rename, from)?;
        let inode = *disk.names.get(from).ok_or_else(not_found)?;
        disk.set_name(vec![
            (to.to_path_buf(), Some(inode)),
            (from.to_path_buf(), None),
        ]);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        self.check(&mut disk, Op::Remove, path)?;
        if !disk.names.contains_key(path) {
            return Err(not_found());
        }
        disk.set_name(vec![(path.to_path_buf(), None)]);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let count = {
            let mut disk = self.disk();
            self.check(&mut disk, Op::SyncDir, dir)?;
            if !disk.dirs.contains(dir) {
                return Err(not_found());
            }
            // Entries of `dir` become durable; changes elsewhere stay pending, in order.
            let pending = std::mem::take(&mut disk.pending_names);
            for op in pending {
                if op.changes.iter().any(|(p, _)| p.parent() == Some(dir)) {
                    apply_names(&mut disk.durable_names, &op);
                } else {
                    disk.pending_names.push(op);
                }
            }
            disk.syncs += 1;
            disk.syncs
        };
        self.after_sync(dir, true, count);
        Ok(())
    }
}

/// An open file of a [`FaultStorage`].
struct FaultFile {
    storage: FaultStorage,
    /// The name it was opened under (rules match on it).
    path: PathBuf,
    inode: InodeId,
}

impl std::fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("inode", &self.inode)
            .finish()
    }
}

impl FaultFile {
    fn sync(&self) -> io::Result<()> {
        let count = {
            let mut disk = self.storage.disk();
            match fault_for(&mut disk, Op::Sync, &self.path) {
                None | Some(Fault::Short { .. }) => {}
                Some(Fault::Error(e)) | Some(Fault::PartialThenError { error: e, .. }) => {
                    // As Linux does after a failed writeback: the pages stay in the cache,
                    // marked clean, so no later sync writes them.
                    if let Some(node) = disk.inodes.get_mut(&self.inode) {
                        node.pending.clear();
                    }
                    return Err(e.to_io());
                }
                Some(Fault::TornCrash { .. }) => {
                    power_cut(&mut disk, None);
                    return Err(Errno::Eio.to_io());
                }
            }
            let node = disk.inodes.entry(self.inode).or_default();
            let pending = std::mem::take(&mut node.pending);
            for p in &pending {
                apply(&mut node.durable, p);
            }
            disk.syncs += 1;
            disk.syncs
        };
        self.storage.after_sync(&self.path, false, count);
        Ok(())
    }
}

impl StorageFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        let mut disk = self.storage.disk();
        self.storage.check(&mut disk, Op::Read, &self.path)?;
        let Some(node) = disk.inodes.get(&self.inode) else {
            return Ok(0);
        };
        let start = usize::try_from(position).unwrap_or(usize::MAX);
        if start >= node.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(node.data.len() - start);
        buf[..n].copy_from_slice(&node.data[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        let mut disk = self.storage.disk();
        let fault = fault_for(&mut disk, Op::Write, &self.path);
        let (mut take, error) = match fault {
            None => (buf.len(), None),
            Some(Fault::Error(e)) => (0, Some(e)),
            Some(Fault::Short { bytes }) => (bytes.min(buf.len()), None),
            Some(Fault::PartialThenError { bytes, error }) => (bytes.min(buf.len()), Some(error)),
            Some(Fault::TornCrash { bytes }) => {
                // (A dead disk reports `Error(Eio)` above, so the power is still on here.)
                let keep = bytes.min(buf.len());
                power_cut(&mut disk, Some((self.inode, position, &buf[..keep])));
                return Err(Errno::Eio.to_io());
            }
        };
        let mut no_space = false;
        if let Some(capacity) = disk.capacity_bytes {
            let used = disk.used_bytes();
            let len = disk
                .inodes
                .get(&self.inode)
                .map(|n| n.data.len() as u64)
                .unwrap_or(0);
            let allowed_end = len + capacity.saturating_sub(used);
            let end = position + take as u64;
            if end > allowed_end {
                take = allowed_end.saturating_sub(position) as usize;
                no_space = take == 0;
            }
        }
        if take > 0 {
            let bytes = buf[..take].to_vec();
            let node = disk.inodes.entry(self.inode).or_default();
            write_into(&mut node.data, position, &bytes);
            node.pending.push(Pending::Write { position, bytes });
        }
        match error {
            Some(e) => Err(e.to_io()),
            None if no_space => Err(Errno::NoSpace.to_io()),
            None => Ok(take),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.storage.disk();
        self.storage.check(&mut disk, Op::SetLen, &self.path)?;
        let node = disk.inodes.entry(self.inode).or_default();
        resize(&mut node.data, len);
        node.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn len_bytes(&self) -> io::Result<u64> {
        let disk = self.storage.disk();
        if disk.dead {
            return Err(Errno::Eio.to_io());
        }
        Ok(disk
            .inodes
            .get(&self.inode)
            .map(|n| n.data.len() as u64)
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    fn storage_with_file() -> (FaultStorage, Arc<dyn StorageFile>, PathBuf) {
        let s = FaultStorage::new();
        s.create_dir_all(&dir()).unwrap();
        let path = dir().join("f");
        let f = s.create(&path).unwrap();
        (s, f, path)
    }

    #[test]
    fn power_loss_keeps_only_synced_data_and_names() {
        let (s, f, path) = storage_with_file();
        f.write_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        f.write_at(b" world", 5).unwrap();
        // The name is not durable yet: a power loss loses the whole file.
        assert!(s.crash_image(Crash::PowerLoss).files().is_empty());
        s.sync_dir(&dir()).unwrap();
        let image = s.crash_image(Crash::PowerLoss);
        assert_eq!(image.contents(&path).unwrap(), b"hello");
        let killed = s.crash_image(Crash::ProcessKill);
        assert_eq!(killed.contents(&path).unwrap(), b"hello world");
    }

    #[test]
    fn torn_images_lie_between_synced_and_written() {
        let (s, f, path) = storage_with_file();
        s.sync_dir(&dir()).unwrap();
        f.write_at(b"abcd", 0).unwrap();
        f.sync_data().unwrap();
        f.write_at(b"efghijkl", 4).unwrap();
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let c = s
                .crash_image(Crash::PowerLossTorn { seed })
                .contents(&path)
                .unwrap();
            assert!(c.starts_with(b"abcd"));
            assert!(b"abcdefghijkl".starts_with(&c));
            seen.insert(c.len());
        }
        assert!(seen.len() > 3, "torn lengths vary: {seen:?}");
    }

    #[test]
    fn scripted_faults_fire_on_the_nth_operation() {
        let (s, f, _) = storage_with_file();
        s.inject(FaultRule::new(Op::Write, Fault::Error(Errno::NoSpace)).after(2));
        f.write_at(b"a", 0).unwrap();
        f.write_at(b"b", 1).unwrap();
        let e = f.write_at(b"c", 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        f.write_at(b"c", 2).unwrap();
        s.inject(FaultRule::new(Op::Sync, Fault::Error(Errno::Eio)).forever());
        assert!(f.sync_data().is_err());
        assert!(f.sync_data().is_err());
        s.clear_faults();
        f.sync_data().unwrap();
        assert_eq!(s.faults_fired(), 3);
    }

    #[test]
    fn a_failed_sync_loses_the_pending_writes() {
        let (s, f, path) = storage_with_file();
        s.sync_dir(&dir()).unwrap();
        f.write_at(b"abc", 0).unwrap();
        s.inject(FaultRule::new(Op::Sync, Fault::Error(Errno::Eio)));
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        assert_eq!(s.contents(&path).unwrap(), b"abc", "still cached");
        assert_eq!(s.durable_contents(&path).unwrap(), b"", "never written");
        f.write_at(b"abc", 0).unwrap();
        f.sync_data().unwrap();
        assert_eq!(s.durable_contents(&path).unwrap(), b"abc");
    }

    #[test]
    fn short_and_partial_writes() {
        let (s, f, path) = storage_with_file();
        s.inject(FaultRule::new(Op::Write, Fault::Short { bytes: 2 }));
        assert_eq!(f.write_at(b"hello", 0).unwrap(), 2);
        s.inject(FaultRule::new(
            Op::Write,
            Fault::PartialThenError {
                bytes: 3,
                error: Errno::Eio,
            },
        ));
        assert!(f.write_at(b"xyzw", 2).is_err());
        assert_eq!(s.contents(&path).unwrap(), b"hexyz");
    }

    #[test]
    fn capacity_gives_a_short_write_then_enospc() {
        let (s, f, _) = storage_with_file();
        s.set_capacity_bytes(Some(10));
        assert_eq!(f.write_at(&[1; 8], 0).unwrap(), 8);
        assert_eq!(f.write_at(&[2; 8], 8).unwrap(), 2);
        assert_eq!(
            f.write_at(&[3; 8], 10).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        // Overwriting in place needs no space.
        assert_eq!(f.write_at(&[4; 4], 0).unwrap(), 4);
        f.set_len(4).unwrap();
        assert_eq!(f.write_at(&[5; 6], 4).unwrap(), 6);
    }

    #[test]
    fn torn_crash_keeps_an_image_and_kills_the_disk() {
        let (s, f, path) = storage_with_file();
        s.sync_dir(&dir()).unwrap();
        f.write_at(b"0123", 0).unwrap();
        f.sync_data().unwrap();
        s.inject(FaultRule::new(Op::Write, Fault::TornCrash { bytes: 3 }));
        assert!(f.write_at(b"456789", 4).is_err());
        assert!(s.is_dead());
        assert!(f.write_at(b"x", 0).is_err());
        assert!(f.sync_data().is_err());
        let images = s.take_crash_images();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].contents(&path).unwrap(), b"0123456");
    }

    #[test]
    fn renames_and_removals_are_durable_after_a_directory_sync() {
        let (s, f, path) = storage_with_file();
        f.write_at(b"x", 0).unwrap();
        f.sync_all().unwrap();
        s.sync_dir(&dir()).unwrap();
        let to = dir().join("g");
        s.rename(&path, &to).unwrap();
        let before = s.crash_image(Crash::PowerLoss);
        assert_eq!(before.files(), vec![path.clone()]);
        s.sync_dir(&dir()).unwrap();
        assert_eq!(s.crash_image(Crash::PowerLoss).files(), vec![to.clone()]);
        s.remove_file(&to).unwrap();
        assert_eq!(s.crash_image(Crash::PowerLoss).files(), vec![to]);
        assert!(s.crash_image(Crash::ProcessKill).files().is_empty());
    }
}
