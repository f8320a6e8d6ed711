//! An in-memory [`Storage`] that can crash.
//!
//! Every file keeps two versions of its bytes: what a reader sees now (`live`) and what was
//! there at its last `sync_data` (`synced`). Every directory keeps two versions of its entries:
//! now, and as of its last `sync_dir`. [`SimStorage::restart`] throws away everything that was
//! not made durable, as a power cut would, optionally keeping a random prefix of each file's
//! unsynced appended bytes (a torn write).
//!
//! Faults: [`SimStorage::crash_after`] stops the machine right after the Nth operation of a kind
//! (every later operation fails until `restart`), [`SimStorage::fail_nth`] makes one operation
//! fail (a failing write first writes half of its bytes), and [`SimStorage::set_disk_full`]
//! makes every write fail with ENOSPC until cleared.
//!
//! Handles opened before a `restart` fail afterwards, so a log left over from before the
//! "crash" cannot touch the disk image of the next run.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::storage::{Storage, StorageFile};

/// Linux's errno for "No space left on device".
const ENOSPC: i32 = 28;
/// Linux's errno for "Input/output error".
const EIO: i32 = 5;

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

#[derive(Debug, Default)]
struct FileNode {
    live: Vec<u8>,
    synced: Vec<u8>,
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
}

/// What `begin` decided about an operation.
enum Gate {
    Proceed,
    Fail(io::Error),
}

const ROOT: usize = 0;

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

/// In-memory storage with simulated crashes and faults. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
    sync_delay: Arc<Mutex<Duration>>,
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
            })),
            sync_delay: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// The machine stops right after the `n`th (1-based) next operation of kind `op`.
    pub fn crash_after(&self, op: SimOp, n: u64) {
        assert!(n >= 1);
        self.state.lock().crash_after = Some((op, n));
    }

    /// The `n`th (1-based) next operation of kind `op` fails with `fault`; a failing write
    /// writes half of its bytes first.
    pub fn fail_nth(&self, op: SimOp, n: u64, fault: SimFault) {
        assert!(n >= 1);
        self.state.lock().fail_nth = Some((op, n, fault));
    }

    /// While set, every write fails with ENOSPC after writing half of its bytes.
    pub fn set_disk_full(&self, full: bool) {
        self.state.lock().disk_full = full;
    }

    /// Every sync sleeps this long first, like a real disk's flush.
    pub fn set_sync_delay(&self, delay: Duration) {
        *self.sync_delay.lock() = delay;
    }

    /// True once a `crash_after` fault has stopped the machine.
    pub fn is_stopped(&self) -> bool {
        self.state.lock().stopped
    }

    pub fn counts(&self) -> SimCounts {
        self.state.lock().counts
    }

    /// Power cut and reboot: everything not durable is lost. With `torn_seed`, each file that
    /// grew since its last sync keeps a pseudo-random prefix of the unsynced bytes. Clears the
    /// armed faults and invalidates every open handle.
    pub fn restart(&self, torn_seed: Option<u64>) {
        let mut state = self.state.lock();
        let mut rng = torn_seed.map(SplitMix64);
        for dir in &mut state.dirs {
            dir.live = dir.durable.clone();
        }
        for file in &mut state.files {
            let synced_len = file.synced.len();
            let grew = file.live.len() > synced_len && file.live[..synced_len] == file.synced[..];
            let mut survivor = file.synced.clone();
            if let (true, Some(rng)) = (grew, rng.as_mut()) {
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
            file.live = survivor.clone();
            file.synced = survivor;
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
        match state.lookup(path)? {
            Node::File(id) => {
                state.files[id].live = contents.to_vec();
                state.files[id].synced = contents.to_vec();
                Ok(())
            }
            Node::Dir(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn sleep_for_sync(&self) {
        let delay = *self.sync_delay.lock();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
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
        let mut dir = ROOT;
        for name in components(path)? {
            match state.dirs[dir].live.get(name).copied() {
                Some(Node::Dir(next)) => dir = next,
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"));
                }
                None => {
                    if let Gate::Fail(err) = state.begin(SimOp::Any)? {
                        return Err(err);
                    }
                    let next = state.dirs.len();
                    state.dirs.push(DirNode::default());
                    state.dirs[dir].live.insert(name.to_owned(), Node::Dir(next));
                    dir = next;
                }
            }
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        state.check_epoch(state.epoch)?;
        let dir = state.lookup_dir(path)?;
        Ok(state.dirs[dir].live.keys().cloned().collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.sleep_for_sync();
        let mut state = self.state.lock();
        let dir = state.lookup_dir(path)?;
        if let Gate::Fail(err) = state.begin(SimOp::Sync)? {
            return Err(err);
        }
        state.counts.dir_syncs += 1;
        let entries = state.dirs[dir].live.clone();
        state.dirs[dir].durable = entries;
        Ok(())
    }

    fn sync_filesystem(&self, _path: &Path) -> io::Result<()> {
        self.sleep_for_sync();
        let mut state = self.state.lock();
        if let Gate::Fail(err) = state.begin(SimOp::Sync)? {
            return Err(err);
        }
        state.counts.fs_syncs += 1;
        for file in &mut state.files {
            file.synced.clone_from(&file.live);
        }
        for dir in &mut state.dirs {
            dir.durable.clone_from(&dir.live);
        }
        Ok(())
    }

    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state.lock();
        let (dir, name) = state.parent(path)?;
        if state.dirs[dir].live.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        if let Gate::Fail(err) = state.begin(SimOp::Any)? {
            return Err(err);
        }
        let id = state.files.len();
        state.files.push(FileNode::default());
        state.dirs[dir].live.insert(name.to_owned(), Node::File(id));
        state.opened_handle();
        Ok(Arc::new(SimFile { state: Arc::clone(&self.state), sim: self.clone(), id, epoch: state.epoch }))
    }

    /// Permissions are not simulated.
    fn create_file_with_mode(&self, path: &Path, _mode: u32) -> io::Result<Arc<dyn StorageFile>> {
        self.create_file(path)
    }

    fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state.lock();
        state.check_epoch(state.epoch)?;
        match state.lookup(path)? {
            Node::File(id) => {
                state.opened_handle();
                Ok(Arc::new(SimFile {
                    state: Arc::clone(&self.state),
                    sim: self.clone(),
                    id,
                    epoch: state.epoch,
                }))
            }
            Node::Dir(_) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (dir, name) = state.parent(path)?;
        match state.dirs[dir].live.get(name) {
            Some(Node::File(_)) => {}
            Some(Node::Dir(_)) => return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
            None => {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))
            }
        }
        if let Gate::Fail(err) = state.begin(SimOp::Any)? {
            return Err(err);
        }
        state.dirs[dir].live.remove(name);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (from_dir, from_name) = state.parent(from)?;
        let (to_dir, to_name) = state.parent(to)?;
        let node = *state.dirs[from_dir].live.get(from_name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{} not found", from.display()))
        })?;
        match (node, state.dirs[to_dir].live.get(to_name)) {
            // POSIX: a file replaces a file atomically.
            (_, None) | (Node::File(_), Some(Node::File(_))) => {}
            _ => {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", to.display())))
            }
        }
        if let Gate::Fail(err) = state.begin(SimOp::Any)? {
            return Err(err);
        }
        state.dirs[from_dir].live.remove(from_name);
        state.dirs[to_dir].live.insert(to_name.to_owned(), node);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let (dir, name) = state.parent(path)?;
        match state.dirs[dir].live.get(name) {
            Some(Node::Dir(_)) => {}
            Some(Node::File(_)) => {
                return Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"))
            }
            None => {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))
            }
        }
        if let Gate::Fail(err) = state.begin(SimOp::Any)? {
            return Err(err);
        }
        // Unlinking the children is durable only with their directory's sync; the simulation
        // treats a removed subtree's own entries as gone at once, which is what a reader of the
        // parent sees in either case.
        state.dirs[dir].live.remove(name);
        Ok(())
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
        let state = self.state.lock();
        state.check_epoch(self.epoch)?;
        Ok(state.file(self.id).live.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.counts.bytes_read += buf.len() as u64;
        state.check_epoch(self.epoch)?;
        let data = &state.file(self.id).live;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        if end > data.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file"));
        }
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.check_epoch(self.epoch)?;
        let gate = state.begin(SimOp::Write)?;
        let full = state.disk_full;
        let (bytes, result) = match gate {
            Gate::Fail(err) => (&buf[..buf.len() / 2], Err(err)),
            Gate::Proceed if full => (&buf[..buf.len() / 2], Err(SimFault::NoSpace.error())),
            Gate::Proceed => (buf, Ok(())),
        };
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let data = &mut state.files[self.id].live;
        if data.len() < start + bytes.len() {
            data.resize(start + bytes.len(), 0);
        }
        data[start..start + bytes.len()].copy_from_slice(bytes);
        result
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.check_epoch(self.epoch)?;
        if let Gate::Fail(err) = state.begin(SimOp::Any)? {
            return Err(err);
        }
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        state.files[self.id].live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sim.sleep_for_sync();
        let mut state = self.state.lock();
        state.check_epoch(self.epoch)?;
        if let Gate::Fail(err) = state.begin(SimOp::Sync)? {
            return Err(err);
        }
        state.counts.file_syncs += 1;
        let file = &mut state.files[self.id];
        file.synced.clone_from(&file.live);
        Ok(())
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
}
