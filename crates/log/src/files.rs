//! A bounded cache of open segment files.
//!
//! Segment files are opened on first use and kept open while they are used; at most
//! `open_files_max - 1` handles are cached, and the least recently used one is closed to make
//! room. The one left over is for the index file the writer thread may be writing. Nothing
//! else holds a segment handle for longer than one operation (one write, one sync, one read),
//! and those take their handle from the cache, so the log's open files stay within
//! `open_files_max` however many logs and segments exist. (Index files are written one at a
//! time, by the writer thread, or by `open` and `shutdown` while it is not running.) Only one
//! thing can pass the cap, briefly: a handle the cache closed while a read or write still uses
//! it stays open until that ends; the cache closes the oldest *unused* handle first, so this
//! needs about as many reads in progress at once as the cap.
//!
//! Closing and re-opening a file between its write and its sync is safe: `fdatasync` flushes
//! the file's (the inode's) dirty pages through any descriptor, and a group-commit round over
//! many files uses one `syncfs`, which needs no descriptor at all. (A writeback error that
//! nobody has seen yet is reported to a descriptor opened after it, Linux >= 4.16.)
//!
//! Invariant: a cached handle always refers to the file now at its path. Whoever removes or
//! renames a segment file calls [`FileCache::forget`] (or [`FileCache::forget_under`]) first;
//! a newly created file replaces any cached handle of its path.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Storage, StorageFile};

pub(crate) struct FileCache {
    storage: Arc<dyn Storage>,
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    files: HashMap<PathBuf, Cached>,
    /// Last-use tick → path, oldest first.
    order: BTreeMap<u64, PathBuf>,
    tick: u64,
}

struct Cached {
    file: Arc<dyn StorageFile>,
    tick: u64,
}

impl CacheState {
    fn bump(&mut self, path: &Path) -> Option<Arc<dyn StorageFile>> {
        self.tick += 1;
        let tick = self.tick;
        let cached = self.files.get_mut(path)?;
        let old = std::mem::replace(&mut cached.tick, tick);
        let file = Arc::clone(&cached.file);
        if let Some(path) = self.order.remove(&old) {
            self.order.insert(tick, path);
        }
        Some(file)
    }

    fn remove(&mut self, path: &Path) {
        if let Some(cached) = self.files.remove(path) {
            self.order.remove(&cached.tick);
        }
    }

    /// Closes cached handles until fewer than `capacity` remain, oldest unused first. A handle
    /// in use (someone holds a clone) is closed by its user when done, so it is taken only if
    /// every cached handle is in use.
    fn make_room(&mut self, capacity: usize) {
        while self.files.len() >= capacity.max(1) {
            let victim = self
                .order
                .values()
                .find(|path| self.files.get(*path).is_some_and(|cached| Arc::strong_count(&cached.file) == 1))
                .or_else(|| self.order.values().next())
                .cloned();
            let Some(victim) = victim else { break };
            self.remove(&victim);
        }
    }

    fn insert(&mut self, path: PathBuf, file: Arc<dyn StorageFile>) {
        self.tick += 1;
        let tick = self.tick;
        self.order.insert(tick, path.clone());
        self.files.insert(path, Cached { file, tick });
    }
}

impl FileCache {
    /// A cache that keeps the log within `open_files_max` open files (see the module comment).
    pub fn new(storage: Arc<dyn Storage>, open_files_max: usize) -> FileCache {
        assert!(open_files_max >= 1, "open_files_max must be positive");
        // One handle is left for an index file being written; with a cap of 1, there is none.
        let capacity = open_files_max.saturating_sub(1).max(1);
        FileCache { storage, capacity, state: Mutex::new(CacheState::default()) }
    }

    /// The open file at `path`, opening it (and closing the least recently used one) if needed.
    pub fn get(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state.lock();
        if let Some(file) = state.bump(path) {
            return Ok(file);
        }
        state.make_room(self.capacity);
        // Opened under the lock, so that two users of one path never open it twice.
        let file = self.storage.open_file(path)?;
        state.insert(path.to_path_buf(), Arc::clone(&file));
        Ok(file)
    }

    /// Caches a file just created at `path` (replacing any handle of an older file there).
    pub fn insert(&self, path: &Path, file: Arc<dyn StorageFile>) {
        let mut state = self.state.lock();
        state.remove(path);
        state.make_room(self.capacity);
        state.insert(path.to_path_buf(), file);
    }

    /// Drops the cached handle of `path` (the file is about to be removed or replaced).
    pub fn forget(&self, path: &Path) {
        self.state.lock().remove(path);
    }

    /// Drops every cached handle of a file under `dir`.
    pub fn forget_under(&self, dir: &Path) {
        let mut state = self.state.lock();
        let gone: Vec<PathBuf> = state.files.keys().filter(|path| path.starts_with(dir)).cloned().collect();
        for path in gone {
            state.remove(&path);
        }
    }

    /// Handles cached now.
    pub fn len(&self) -> usize {
        self.state.lock().files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimStorage;

    #[test]
    fn keeps_at_most_capacity_and_closes_the_least_recently_used() {
        let sim = SimStorage::new();
        for i in 0..5 {
            sim.create_file(Path::new(&format!("/f{i}"))).unwrap();
        }
        let cache = FileCache::new(Arc::new(sim.clone()), 4);
        for i in 0..3 {
            cache.get(Path::new(&format!("/f{i}"))).unwrap();
        }
        cache.get(Path::new("/f0")).unwrap(); // f1 is now the oldest
        cache.get(Path::new("/f3")).unwrap();
        assert_eq!(cache.len(), 3);
        let state = cache.state.lock();
        assert!(!state.files.contains_key(Path::new("/f1")));
        assert!(state.files.contains_key(Path::new("/f0")));
        drop(state);
        assert_eq!(sim.counts().open_handles, 3);
        // A handle in use is kept over an older unused one.
        let held = cache.get(Path::new("/f2")).unwrap();
        cache.get(Path::new("/f0")).unwrap();
        cache.get(Path::new("/f3")).unwrap(); // f2 is now the oldest, but in use
        cache.get(Path::new("/f4")).unwrap();
        let state = cache.state.lock();
        assert!(state.files.contains_key(Path::new("/f2")));
        assert!(!state.files.contains_key(Path::new("/f0")));
        drop(state);
        drop(held);
        cache.forget_under(Path::new("/"));
        assert_eq!(cache.len(), 0);
        assert_eq!(sim.counts().open_handles, 0);
    }
}
