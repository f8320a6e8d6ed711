//! An in-memory [`Storage`] that can crash, and that records what it was asked to do.
//!
//! Every file keeps two versions of its bytes: what a reader sees now (`live`) and what was
//! there at its last `sync_data` (`synced`), plus the writes made since. Every directory keeps
//! two versions of its entries: now, and as of its last `sync_dir`. [`SimStorage::restart`]
//! throws away everything that was not made durable, as a power cut would, optionally keeping a
//! random prefix of each file's unsynced appended bytes (a torn write);
//! [`SimStorage::restart_with`] with [`SimCrash::Scrambled`] keeps any subset of the unsynced
//! writes, sector by sector, as a disk with a volatile cache may (for files written in place,
//! like the metadata database).
//!
//! Faults: [`SimStorage::crash_after`] stops the machine right after the Nth operation of a kind
//! (every later operation fails until `restart`), [`SimStorage::fail_nth`] makes one operation
//! fail (a failing write first writes half of its bytes), and [`SimStorage::set_disk_full`]
//! makes every write fail with ENOSPC until cleared. [`SimStorage::hold_syncs`] parks every
//! sync at a gate until [`SimStorage::release_syncs`], so a test can make a sync "slow" without
//! sleeping.
//!
//! Replay: every operation (its kind, arguments, the bytes written and the outcome) is folded
//! into a running hash, [`SimStorage::trace`]. A driver that makes every choice from a seed and
//! runs the log with [`crate::Log::open_stepped`] gets the same trace, bit for bit, from the
//! same seed; [`SimStorage::keep_trace_lines`] keeps the operations as text to find where two
//! runs part.
//!
//! Handles opened before a `restart` fail afterwards, so a log left over from before the
//! "crash" cannot touch the disk image of the next run.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::storage::{Storage, StorageFile};

/// Linux's errno for "No space left on device".
const ENOSPC: i32 = 28;
/// Linux's errno for "Input/output error".
const EIO: i32 = 5;
/// The unit a scrambled crash keeps or loses of a write.
const SECTOR: usize = 512;

/// Which operations a fault counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOp {
    /// `write_all_at`.
    Write,
    /// `sync_data` and `sync_dir`.
    Sync,
    /// Every operation that changes the disk: writes, syncs, `set_len`, creating, renaming and
    /// removing entries.
    Any,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFault {
    /// ENOSPC, "No space left on device".
    NoSpace,
    /// EIO, "Input/output error".
    Io,
}

impl SimFault {
    fn error(self) -> io::Error {
        match self {
            SimFault::NoSpace => io::Error::from_raw_os_error(ENOSPC),
            SimFault::Io => io::Error::from_raw_os_error(EIO),
        }
    }
}

/// What survives of the bytes and entries that were not made durable when the power goes
/// ([`SimStorage::restart_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCrash {
    /// Nothing: every file is as of its last sync, every directory as of its last sync.
    Clean,
    /// Each file that only grew since its last sync keeps none, all, or a prefix of the
    /// appended bytes (chosen from the seed); directories as of their last sync.
    TornTail(u64),
    /// Each write since the file's last sync is kept whole, lost, or kept sector by sector
    /// (512 bytes), each sector independently; each size change kept or lost (but kept if a
    /// later write is); each directory keeps all or none of its entry changes since its last
    /// sync (all chosen from the seed).
    Scrambled(u64),
}

/// Operation counts since the storage was made (not reset by `restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimCounts {
    pub writes: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    /// `sync_filesystem` calls.
    pub fs_syncs: u64,
    pub mutations: u64,
    /// Bytes returned by `read_exact_at` (to check what recovery reads).
    pub bytes_read: u64,
    /// File handles open now (created or opened, not yet dropped; a restart does not close them).
    pub open_handles: u64,
    /// The most file handles ever open at once.
    pub open_handles_max: u64,
}

/// A fingerprint of every operation the storage was asked to do, in order: its kind, its
/// arguments (paths, offsets, lengths, a checksum of the bytes written) and its outcome, and
/// every fault armed and restart made. Two runs that did exactly the same have the same trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTrace {
    /// Operations recorded.
    pub ops: u64,
    /// 64-bit FNV-1a of the operations' descriptions, in order.
    pub hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for SimTrace {
    fn default() -> Self {
        SimTrace { ops: 0, hash: FNV_OFFSET }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir(usize),
    File(usize),
}

#[derive(Debug, Default)]
struct DirNode {
    live: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
}

/// A change to a file's bytes since its last sync.
#[derive(Debug)]
enum Unsynced {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

#[derive(Debug, Default)]
struct FileNode {
    live: Vec<u8>,
    synced: Vec<u8>,
    /// What was done to `live` since `synced`, in order.
    unsynced: Vec<Unsynced>,
}

impl FileNode {
    fn mark_synced(&mut self) {
        self.synced.clone_from(&self.live);
        self.unsynced.clear();
    }
}

#[derive(Debug)]
struct SimState {
    dirs: Vec<DirNode>,
    files: Vec<FileNode>,
    epoch: u64,
    stopped: bool,
    crash_after: Option<(SimOp, u64)>,
    fail_nth: Option<(SimOp, u64, SimFault)>,
    disk_full: bool,
    counts: SimCounts,
    trace: SimTrace,
    trace_lines: Option<Vec<String>>,
}

/// What `begin` decided about an operation.
enum Gate {
    Proceed,
    Fail(io::Error),
}

const ROOT: usize = 0;

/// Renders an operation's outcome for the trace (the kind and errno, not the message).
struct Outcome<'a, T>(&'a io::Result<T>);

impl<T> fmt::Display for Outcome<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(_) => f.write_str("ok"),
            Err(error) => write!(f, "err {:?} {:?}", error.kind(), error.raw_os_error()),
        }
    }
}

impl SimState {
    fn stopped_error() -> io::Error {
        io::Error::other("simulated crash: the machine is down")
    }

    fn check_epoch(&self, epoch: u64) -> io::Result<()> {
        if self.stopped {
            return Err(Self::stopped_error());
        }
        if epoch != self.epoch {
            return Err(io::Error::other("simulated crash: handle from before the restart"));
        }
        Ok(())
    }

    /// Folds one operation into the trace.
    fn record(&mut self, entry: fmt::Arguments<'_>) {
        let text = entry.to_string();
        let mut hash = self.trace.hash;
        for byte in text.as_bytes().iter().chain(b"\n") {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        self.trace.hash = hash;
        self.trace.ops += 1;
        if let Some(lines) = self.trace_lines.as_mut() {
            lines.push(text);
        }
    }

    /// Counts a mutating operation and applies the armed faults to it.
    fn begin(&mut self, op: SimOp) -> io::Result<Gate> {
        if self.stopped {
            return Err(Self::stopped_error());
        }
        self.counts.mutations += 1;
        match op {
            SimOp::Write => self.counts.writes += 1,
            SimOp::Sync => {}
            SimOp::Any => {}
        }
        let matches = |armed: SimOp| armed == SimOp::Any || armed == op;
        if let Some((armed, remaining, _)) = self.fail_nth.as_mut() {
            if matches(*armed) {
                *remaining -= 1;
                if *remaining == 0 {
                    let fault = self.fail_nth.take().map(|(_, _, fault)| fault);
                    if let Some(fault) = fault {
                        return Ok(Gate::Fail(fault.error()));
                    }
                }
            }
        }
        if let Some((armed, remaining)) = self.crash_after.as_mut() {
            if matches(*armed) {
                *remaining -= 1;
                if *remaining == 0 {
                    // This operation completes; every later one finds the machine down.
                    self.crash_after = None;
                    self.stopped = true;
                }
            }
        }
        Ok(Gate::Proceed)
    }

    fn lookup(&self, path: &Path) -> io::Result<Node> {
        let mut node = Node::Dir(ROOT);
        for name in components(path)? {
            let Node::Dir(dir) = node else {
                return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
            };
            node = *self.dirs[dir].live.get(name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
            })?;
        }
        Ok(node)
    }

    fn lookup_dir(&self, path: &Path) -> io::Result<usize> {
        match self.lookup(path)? {
            Node::Dir(dir) => Ok(dir),
            Node::File(_) => Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    /// The parent directory of `path` and the last name.
    fn parent<'p>(&self, path: &'p Path) -> io::Result<(usize, &'p str)> {
        let names = components(path)?;
        let (last, init) = names
            .split_last()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the root has no parent"))?;
        let mut dir = ROOT;
        for name in init {
            match self.dirs[dir].live.get(*name) {
                Some(Node::Dir(next)) => dir = *next,
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{} not found", path.display()),
                    ));
                }
            }
        }
        Ok((dir, last))
    }

    fn file(&self, id: usize) -> &FileNode {
        &self.files[id]
    }

    fn opened_handle(&mut self) {
        self.counts.open_handles += 1;
        self.counts.open_handles_max = self.counts.open_handles_max.max(self.counts.open_handles);
    }

    fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let mut dir = ROOT;
        for name in components(path)? {
            match self.dirs[dir].live.get(name).copied() {
                Some(Node::Dir(next)) => dir = next,
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
                }
                None => {
                    if let Gate::Fail(err) = self.begin(SimOp::Any)? {
                        return Err(err);
                    }
                    let next = self.dirs.len();
                    self.dirs.push(DirNode::default());
                    self.dirs[dir].live.insert(name.to_owned(), Node::Dir(next));
                    dir = next;
                }
            }
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.check_epoch(self.epoch)?;
        let dir = self.lookup_dir(path)?;
        Ok(self.dirs[dir].live.keys().cloned().collect())
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let dir = self.lookup_dir(path)?;
        if let Gate::Fail(err) = self.begin(SimOp::Sync)? {
            return Err(err);
        }
        self.counts.dir_syncs += 1;
        let entries = self.dirs[dir].live.clone();
        self.dirs[dir].durable = entries;
        Ok(())
    }

    fn sync_filesystem(&mut self) -> io::Result<()> {
        if let Gate::Fail(err) = self.begin(SimOp::Sync)? {
            return Err(err);
        }
        self.counts.fs_syncs += 1;
        for file in &mut self.files {
            file.mark_synced();
        }
        for dir in &mut self.dirs {
            dir.durable.clone_from(&dir.live);
        }
        Ok(())
    }

    fn create_file(&mut self, path: &Path) -> io::Result<usize> {
        let (dir, name) = self.parent(path)?;
        if self.dirs[dir].live.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        if let Gate::Fail(err) = self.begin(SimOp::Any)? {
            return Err(err);
        }
        let id = self.files.len();
        self.files.push(FileNode::default());
        self.dirs[dir].live.insert(name.to_owned(), Node::File(id));
        self.opened_handle();
        Ok(id)
    }

    fn open_file(&mut self, path: &Path) -> io::Result<usize> {
        self.check_epoch(self.epoch)?;
        match self.lookup(path)? {
            Node::File(id) => {
                self.opened_handle();
                Ok(id)
            }
            Node::Dir(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        match self.dirs[dir].live.get(name) {
            Some(Node::File(_)) => {}
            Some(Node::Dir(_)) => return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
            None => {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))
            }
        }
        if let Gate::Fail(err) = self.begin(SimOp::Any)? {
            return Err(err);
        }
        self.dirs[dir].live.remove(name);
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        let node = *self.dirs[from_dir].live.get(from_name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{} not found", from.display()))
        })?;
        match (node, self.dirs[to_dir].live.get(to_name)) {
            // POSIX: a file replaces a file atomically.
            (_, None) | (Node::File(_), Some(Node::File(_))) => {}
            _ => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", to.display())))
            }
        }
        if let Gate::Fail(err) = self.begin(SimOp::Any)? {
            return Err(err);
        }
        self.dirs[from_dir].live.remove(from_name);
        self.dirs[to_dir].live.insert(to_name.to_owned(), node);
        Ok(())
    }

    fn remove_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        match self.dirs[dir].live.get(name) {
            Some(Node::Dir(_)) => {}
            Some(Node::File(_)) => {
                return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"))
            }
            None => {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))
            }
        }
        if let Gate::Fail(err) = self.begin(SimOp::Any)? {
            return Err(err);
        }
        // Unlinking the children is durable only with their directory's sync; the simulation
        // treats a removed subtree's own entries as gone at once, which is what a reader of the
        // parent sees in either case.
        self.dirs[dir].live.remove(name);
        Ok(())
    }

    fn read_exact_at(&mut self, id: usize, epoch: u64, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.counts.bytes_read += buf.len() as u64;
        self.check_epoch(epoch)?;
        let data = &self.file(id).live;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        if end > data.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file"));
        }
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn write_all_at(&mut self, id: usize, epoch: u64, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_epoch(epoch)?;
        let gate = self.begin(SimOp::Write)?;
        let full = self.disk_full;
        let (bytes, result) = match gate {
            Gate::Fail(err) => (&buf[..buf.len() / 2], Err(err)),
            Gate::Proceed if full => (&buf[..buf.len() / 2], Err(SimFault::NoSpace.error())),
            Gate::Proceed => (buf, Ok(())),
        };
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let file = &mut self.files[id];
        let data = &mut file.live;
        if data.len() < start + bytes.len() {
            data.resize(start + bytes.len(), 0);
        }
        data[start..start + bytes.len()].copy_from_slice(bytes);
        if !bytes.is_empty() {
            file.unsynced.push(Unsynced::Write { offset: start, bytes: bytes.to_vec() });
        }
        result
    }

    fn set_len(&mut self, id: usize, epoch: u64, len: u64) -> io::Result<()> {
        self.check_epoch(epoch)?;
        if let Gate::Fail(err) = self.begin(SimOp::Any)? {
            return Err(err);
        }
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        let file = &mut self.files[id];
        file.live.resize(len, 0);
        file.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&mut self, id: usize, epoch: u64) -> io::Result<()> {
        self.check_epoch(epoch)?;
        if let Gate::Fail(err) = self.begin(SimOp::Sync)? {
            return Err(err);
        }
        self.counts.file_syncs += 1;
        self.files[id].mark_synced();
        Ok(())
    }
}

fn components(path: &Path) -> io::Result<Vec<&str>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => names.push(
                name.to_str()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"))?,
            ),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "only absolute, plain paths")),
        }
    }
    Ok(names)
}

/// Where syncs wait while [`SimStorage::hold_syncs`] is in force.
#[derive(Debug, Default)]
struct SyncGate {
    held: bool,
    /// Syncs waiting at the gate now.
    waiting: usize,
}

/// In-memory storage with simulated crashes and faults. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
    gate: Arc<(Mutex<SyncGate>, Condvar)>,
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl SimStorage {
    /// An empty disk holding only the root directory `/`.
    pub fn new() -> SimStorage {
        SimStorage {
            state: Arc::new(Mutex::new(SimState {
                dirs: vec![DirNode::default()],
                files: Vec::new(),
                epoch: 0,
                stopped: false,
                crash_after: None,
                fail_nth: None,
                disk_full: false,
                counts: SimCounts::default(),
                trace: SimTrace::default(),
                trace_lines: None,
            })),
            gate: Arc::new((Mutex::new(SyncGate::default()), Condvar::new())),
        }
    }

    /// The machine stops right after the `n`th (1-based) next operation of kind `op`.
    pub fn crash_after(&self, op: SimOp, n: u64) {
        assert!(n >= 1);
        let mut state = self.state.lock();
        state.crash_after = Some((op, n));
        state.record(format_args!("arm crash after {op:?} #{n}"));
    }

    /// The `n`th (1-based) next operation of kind `op` fails with `fault`; a failing write
    /// writes half of its bytes first.
    pub fn fail_nth(&self, op: SimOp, n: u64, fault: SimFault) {
        assert!(n >= 1);
        let mut state = self.state.lock();
        state.fail_nth = Some((op, n, fault));
        state.record(format_args!("arm {fault:?} at {op:?} #{n}"));
    }

    /// While set, every write fails with ENOSPC after writing half of its bytes.
    pub fn set_disk_full(&self, full: bool) {
        let mut state = self.state.lock();
        state.disk_full = full;
        state.record(format_args!("disk full {full}"));
    }

    /// From now on every sync (`sync_data`, `sync_dir`, `sync_filesystem`) waits before it
    /// starts until [`SimStorage::release_syncs`]: a slow disk flush, without sleeping.
    pub fn hold_syncs(&self) {
        self.gate.0.lock().held = true;
    }

    /// Lets every held sync go, and syncs pass freely again.
    pub fn release_syncs(&self) {
        let (gate, waiters) = &*self.gate;
        gate.lock().held = false;
        waiters.notify_all();
    }

    /// Blocks until at least `n` syncs are waiting at the gate ([`SimStorage::hold_syncs`]).
    pub fn wait_for_held_syncs(&self, n: usize) {
        let (gate, waiters) = &*self.gate;
        let mut gate = gate.lock();
        while gate.waiting < n {
            waiters.wait(&mut gate);
        }
    }

    fn pass_sync_gate(&self) {
        let (gate, waiters) = &*self.gate;
        let mut gate = gate.lock();
        if !gate.held {
            return;
        }
        gate.waiting += 1;
        waiters.notify_all();
        while gate.held {
            waiters.wait(&mut gate);
        }
        gate.waiting -= 1;
    }

    /// True once a `crash_after` fault has stopped the machine.
    pub fn is_stopped(&self) -> bool {
        self.state.lock().stopped
    }

    pub fn counts(&self) -> SimCounts {
        self.state.lock().counts
    }

    /// True when every file reachable from `/` holds only synced bytes (so a power cut now
    /// loses no data), for tests that await a periodic sync instead of sleeping.
    pub fn all_files_synced(&self) -> bool {
        let state = self.state.lock();
        let mut dirs = vec![ROOT];
        while let Some(dir) = dirs.pop() {
            for node in state.dirs[dir].live.values() {
                match *node {
                    Node::Dir(child) => dirs.push(child),
                    Node::File(id) => {
                        let file = state.file(id);
                        if !file.unsynced.is_empty() || file.live != file.synced {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// The fingerprint of every operation so far (see [`SimTrace`]).
    pub fn trace(&self) -> SimTrace {
        self.state.lock().trace
    }

    /// From now on also keep every operation's description (see [`SimStorage::trace_lines`]),
    /// to find the first operation where two runs that should replay differ.
    pub fn keep_trace_lines(&self) {
        let mut state = self.state.lock();
        if state.trace_lines.is_none() {
            state.trace_lines = Some(Vec::new());
        }
    }

    /// The operations recorded since [`SimStorage::keep_trace_lines`], one line each.
    pub fn trace_lines(&self) -> Vec<String> {
        self.state.lock().trace_lines.clone().unwrap_or_default()
    }

    /// Power cut and reboot: everything not durable is lost. With `torn_seed`, each file that
    /// grew since its last sync keeps a pseudo-random prefix of the unsynced bytes
    /// ([`SimCrash::TornTail`]). Clears the armed faults and invalidates every open handle.
    pub fn restart(&self, torn_seed: Option<u64>) {
        self.restart_with(match torn_seed {
            Some(seed) => SimCrash::TornTail(seed),
            None => SimCrash::Clean,
        });
    }

    /// Power cut and reboot, keeping of what was not durable what `crash` says. Clears the
    /// armed faults and invalidates every open handle.
    pub fn restart_with(&self, crash: SimCrash) {
        let mut state = self.state.lock();
        state.record(format_args!("restart {crash:?}"));
        let mut rng = match crash {
            SimCrash::Clean => None,
            SimCrash::TornTail(seed) | SimCrash::Scrambled(seed) => Some(SplitMix64(seed)),
        };
        let scrambled = matches!(crash, SimCrash::Scrambled(_));
        for dir in &mut state.dirs {
            // Scrambled: half the time all of the directory's changes since its last sync
            // reached the disk.
            let kept = match rng.as_mut() {
                Some(rng) if scrambled => rng.next().is_multiple_of(2),
                _ => false,
            };
            if !kept {
                dir.live = dir.durable.clone();
            }
            dir.durable = dir.live.clone();
        }
        for file in &mut state.files {
            let survivor = match rng.as_mut() {
                Some(rng) if scrambled => scramble(file, rng),
                Some(rng) => torn_tail(file, rng),
                None => file.synced.clone(),
            };
            file.live = survivor.clone();
            file.synced = survivor;
            file.unsynced.clear();
        }
        state.epoch += 1;
        state.stopped = false;
        state.crash_after = None;
        state.fail_nth = None;
        state.disk_full = false;
    }

    /// Reads a whole file as a reader sees it now (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        match state.lookup(path)? {
            Node::File(id) => Ok(state.file(id).live.clone()),
            Node::Dir(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    /// Replaces a file's contents, durably, bypassing faults (for tests that damage files).
    pub fn overwrite_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        state.record(format_args!("overwrite {} {:08x}", path.display(), crc32c::crc32c(contents)));
        match state.lookup(path)? {
            Node::File(id) => {
                let file = &mut state.files[id];
                file.live = contents.to_vec();
                file.mark_synced();
                Ok(())
            }
            Node::Dir(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn file_handle(&self, id: usize, epoch: u64) -> Arc<dyn StorageFile> {
        Arc::new(SimFile { state: Arc::clone(&self.state), sim: self.clone(), id, epoch })
    }
}

/// A file that only grew since its last sync keeps none, all, or a prefix of the new bytes.
fn torn_tail(file: &FileNode, rng: &mut SplitMix64) -> Vec<u8> {
    let synced_len = file.synced.len();
    let grew = file.live.len() > synced_len && file.live[..synced_len] == file.synced[..];
    let mut survivor = file.synced.clone();
    if grew {
        let extra = file.live.len() - synced_len;
        // A third of the time nothing of the unsynced bytes reached the disk, a third of
        // the time all of it did, otherwise a random prefix (a torn write).
        let keep = match rng.next() % 3 {
            0 => 0,
            1 => extra,
            _ => (rng.next() % (extra as u64 + 1)) as usize,
        };
        survivor.extend_from_slice(&file.live[synced_len..synced_len + keep]);
    }
    survivor
}

/// Any subset of the writes since the last sync, sector by sector. A size change (`set_len`) is
/// kept or lost, but never lost while a later write to the file is kept: a filesystem orders
/// the size change before data written after it (ext4's `data=ordered`), and the metadata store
/// relies on that (redb 2.6 asserts, at open, that the file is as long as its header says).
fn scramble(file: &FileNode, rng: &mut SplitMix64) -> Vec<u8> {
    // Which sectors of each write reach the disk, decided first, in order.
    let kept_sectors: Vec<Vec<bool>> = file
        .unsynced
        .iter()
        .map(|change| match change {
            Unsynced::SetLen(_) => Vec::new(),
            Unsynced::Write { bytes, .. } => {
                let how = rng.next() % 3;
                (0..bytes.len().div_ceil(SECTOR))
                    .map(|_| match how {
                        0 => true,
                        1 => false,
                        _ => rng.next().is_multiple_of(2),
                    })
                    .collect()
            }
        })
        .collect();
    let mut survivor = file.synced.clone();
    for (i, change) in file.unsynced.iter().enumerate() {
        match change {
            Unsynced::SetLen(len) => {
                let later_write_kept = kept_sectors[i + 1..].iter().flatten().any(|kept| *kept);
                if rng.next().is_multiple_of(2) || later_write_kept {
                    survivor.resize(*len, 0);
                }
            }
            Unsynced::Write { offset, bytes } => {
                for (j, sector) in bytes.chunks(SECTOR).enumerate() {
                    if kept_sectors[i][j] {
                        let start = offset + j * SECTOR;
                        if survivor.len() < start + sector.len() {
                            survivor.resize(start + sector.len(), 0);
                        }
                        survivor[start..start + sector.len()].copy_from_slice(sector);
                    }
                }
            }
        }
    }
    survivor
}

/// A tiny deterministic generator for torn-write lengths (no dependency needed).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.create_dir_all(path);
        state.record(format_args!("mkdir {} {}", path.display(), Outcome(&result)));
        result
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.lock();
        let result = state.list_dir(path);
        let names = result.as_ref().map(|names| names.join(",")).unwrap_or_default();
        state.record(format_args!("list {} [{names}] {}", path.display(), Outcome(&result)));
        result
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.pass_sync_gate();
        let mut state = self.state.lock();
        let result = state.sync_dir(path);
        state.record(format_args!("sync dir {} {}", path.display(), Outcome(&result)));
        result
    }

    fn sync_filesystem(&self, path: &Path) -> io::Result<()> {
        self.pass_sync_gate();
        let mut state = self.state.lock();
        let result = state.sync_filesystem();
        state.record(format_args!("syncfs {} {}", path.display(), Outcome(&result)));
        result
    }

    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state.lock();
        let result = state.create_file(path);
        state.record(format_args!(
            "create {} {:?} {}",
            path.display(),
            result.as_ref().ok(),
            Outcome(&result)
        ));
        let epoch = state.epoch;
        drop(state);
        Ok(self.file_handle(result?, epoch))
    }

    /// Permissions are not simulated.
    fn create_file_with_mode(&self, path: &Path, _mode: u32) -> io::Result<Arc<dyn StorageFile>> {
        self.create_file(path)
    }

    fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state.lock();
        let result = state.open_file(path);
        state.record(format_args!("open {} {:?} {}", path.display(), result.as_ref().ok(), Outcome(&result)));
        let epoch = state.epoch;
        drop(state);
        Ok(self.file_handle(result?, epoch))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.remove_file(path);
        state.record(format_args!("remove {} {}", path.display(), Outcome(&result)));
        result
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.rename(from, to);
        state.record(format_args!("rename {} {} {}", from.display(), to.display(), Outcome(&result)));
        result
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.remove_dir_all(path);
        state.record(format_args!("rmdir {} {}", path.display(), Outcome(&result)));
        result
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<SimState>>,
    sim: SimStorage,
    id: usize,
    epoch: u64,
}

impl Drop for SimFile {
    fn drop(&mut self) {
        self.state.lock().counts.open_handles -= 1;
    }
}

impl StorageFile for SimFile {
    fn len_bytes(&self) -> io::Result<u64> {
        let mut state = self.state.lock();
        let result = state.check_epoch(self.epoch).map(|()| state.file(self.id).live.len() as u64);
        state.record(format_args!("len #{} {:?} {}", self.id, result.as_ref().ok(), Outcome(&result)));
        result
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.read_exact_at(self.id, self.epoch, buf, offset);
        state.record(format_args!("read #{} {offset}+{} {}", self.id, buf.len(), Outcome(&result)));
        result
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.write_all_at(self.id, self.epoch, buf, offset);
        state.record(format_args!(
            "write #{} {offset}+{} {:08x} {}",
            self.id,
            buf.len(),
            crc32c::crc32c(buf),
            Outcome(&result)
        ));
        result
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let result = state.set_len(self.id, self.epoch, len);
        state.record(format_args!("set_len #{} {len} {}", self.id, Outcome(&result)));
        result
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sim.pass_sync_gate();
        let mut state = self.state.lock();
        let result = state.sync_data(self.id, self.epoch);
        state.record(format_args!("sync #{} {}", self.id, Outcome(&result)));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn unsynced_data_and_entries_are_lost_on_restart() {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        let a = sim.create_file(Path::new("/d/a")).unwrap();
        a.write_all_at(b"hello", 0).unwrap();
        a.sync_data().unwrap();
        a.write_all_at(b" world", 5).unwrap();
        sim.sync_dir(Path::new("/d")).unwrap();
        let b = sim.create_file(Path::new("/d/b")).unwrap();
        b.write_all_at(b"x", 0).unwrap();
        b.sync_data().unwrap();
        sim.restart(None);
        assert_eq!(sim.read_file(Path::new("/d/a")).unwrap(), b"hello");
        assert!(sim.read_file(Path::new("/d/b")).is_err(), "b's entry was never synced");
        assert!(a.len_bytes().is_err(), "old handles die with the crash");
    }

    #[test]
    fn torn_restart_keeps_a_prefix() {
        let sim = SimStorage::new();
        let path = PathBuf::from("/f");
        let f = sim.create_file(&path).unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(&[9u8; 100], 3).unwrap();
        sim.restart(Some(7));
        let data = sim.read_file(&path).unwrap();
        assert!(data.len() >= 3 && data.len() <= 103);
        assert_eq!(&data[..3], b"abc");
        assert!(data[3..].iter().all(|b| *b == 9));
    }

    #[test]
    fn scrambled_restart_keeps_synced_bytes_and_any_sectors_of_the_rest() {
        let mut kept_some = false;
        let mut lost_some = false;
        for seed in 0..64 {
            let sim = SimStorage::new();
            let path = PathBuf::from("/f");
            let f = sim.create_file(&path).unwrap();
            sim.sync_dir(Path::new("/")).unwrap();
            f.write_all_at(&[1u8; 2048], 0).unwrap();
            f.sync_data().unwrap();
            // Overwrite in place, then append: neither synced.
            f.write_all_at(&[2u8; 1024], 512).unwrap();
            f.write_all_at(&[3u8; 1024], 2048).unwrap();
            sim.restart_with(SimCrash::Scrambled(seed));
            let data = sim.read_file(&path).unwrap();
            assert!(matches!(data.len(), 2048 | 2560 | 3072), "seed {seed}: {} bytes", data.len());
            for (i, sector) in data.chunks(SECTOR).enumerate() {
                let first = sector[0];
                assert!(sector.iter().all(|b| *b == first), "seed {seed}: sector {i} torn inside");
                let allowed: &[u8] = match i {
                    0 | 3 => &[1],
                    1 | 2 => &[1, 2],
                    _ => &[3, 0],
                };
                assert!(allowed.contains(&first), "seed {seed}: sector {i} holds {first}");
                kept_some |= first == 2 || first == 3;
                lost_some |= (i == 1 || i == 2) && first == 1;
            }
        }
        assert!(kept_some && lost_some, "the seeds exercise both outcomes");
    }

    #[test]
    fn faults_fire_once_and_crash_stops_everything() {
        let sim = SimStorage::new();
        let f = sim.create_file(Path::new("/f")).unwrap();
        sim.fail_nth(SimOp::Write, 2, SimFault::NoSpace);
        f.write_all_at(b"aaaa", 0).unwrap();
        let err = f.write_all_at(b"bbbb", 4).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(f.len_bytes().unwrap(), 6, "a failed write leaves half of its bytes");
        f.write_all_at(b"cc", 6).unwrap();
        sim.crash_after(SimOp::Sync, 1);
        f.sync_data().unwrap();
        assert!(sim.is_stopped());
        assert!(f.write_all_at(b"d", 8).is_err());
        assert!(sim.list_dir(Path::new("/")).is_err());
    }

    #[test]
    fn the_trace_tells_runs_apart_by_what_they_did() {
        let run = |second: &[u8], lines: bool| {
            let sim = SimStorage::new();
            if lines {
                sim.keep_trace_lines();
            }
            let f = sim.create_file(Path::new("/f")).unwrap();
            f.write_all_at(b"first", 0).unwrap();
            f.write_all_at(second, 5).unwrap();
            f.sync_data().unwrap();
            let _ = sim.open_file(Path::new("/missing"));
            (sim.trace(), sim.trace_lines())
        };
        let (a, _) = run(b"second", false);
        let (b, lines) = run(b"second", true);
        assert_eq!(a, b, "the same operations, the same trace");
        assert_eq!(a.ops, 5);
        assert_eq!(lines.len(), 5);
        assert!(lines[2].starts_with("write #0 5+6 "), "{lines:?}");
        assert!(lines[4].contains("err NotFound"), "{lines:?}");
        let (c, _) = run(b"secont", false);
        assert_eq!(c.ops, a.ops);
        assert_ne!(c.hash, a.hash, "the bytes written are part of the trace");
    }

    #[test]
    fn held_syncs_wait_for_release() {
        let sim = SimStorage::new();
        let f = sim.create_file(Path::new("/f")).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        sim.hold_syncs();
        let syncing = std::thread::spawn(move || f.sync_data());
        sim.wait_for_held_syncs(1);
        assert_eq!(sim.counts().file_syncs, 0, "the sync waits at the gate");
        sim.release_syncs();
        syncing.join().unwrap().unwrap();
        assert_eq!(sim.counts().file_syncs, 1);
    }
}
