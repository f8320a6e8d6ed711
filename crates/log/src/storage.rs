//! The storage backend: every byte the log reads or writes goes through [`Storage`], so tests can
//! substitute [`crate::SimStorage`], which simulates crashes, torn writes and a full disk.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A directory tree of files, as the log needs it.
///
/// Durability contract (what [`crate::SimStorage`] simulates): data written to a file is durable
/// after [`StorageFile::sync_data`] returns; a created, renamed or removed directory entry is
/// durable after [`Storage::sync_dir`] of its parent returns.
pub trait Storage: Send + Sync + 'static {
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries (files and directories) of a directory, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the entries of a directory durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a new empty file; fails if it exists.
    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Creates a new empty file with permission bits `mode` (less the umask) from its first
    /// moment, so a secret is never readable by others; fails if it exists.
    fn create_file_with_mode(&self, path: &Path, mode: u32) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for reading and writing.
    fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory; a file at `to` is replaced atomically (POSIX `rename`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes the data of every file and every directory entry on the filesystem holding `path`
    /// durable in one call (Linux `syncfs`). One such call replaces an `fdatasync` per file when
    /// a group-commit round touched many files. Errors of any file's writeback since the last
    /// call are reported (Linux >= 5.8).
    fn sync_filesystem(&self, path: &Path) -> io::Result<()>;
}

/// An open file. Reads may run concurrently with each other and with the writer.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Current length in bytes.
    fn len_bytes(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; fails if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`. On error a prefix may have been written.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the file's data and all its metadata (mode, times) durable (fsync).
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// Replaces the file at `path` with `bytes`, atomically: a reader (or a restart after a crash)
/// finds either the old file whole or the new one whole, never a mix or a torn file.
///
/// The bytes go to a temporary file `<name>.tmp` in the same directory, created with permission
/// bits `mode` (less the umask) from its first moment, so a secret is never readable by others
/// even briefly; a stale temporary file from an earlier crash is removed first. With `sync`, the
/// temporary file is fsynced before it is renamed over `path`, and the directory after, so the
/// new file survives a crash once this returns. Without, the caller makes both durable later
/// (one [`Storage::sync_filesystem`] after many replacements). If anything fails, the old file
/// is left as it was and the temporary file is removed (best effort).
pub fn replace_file(
    storage: &dyn Storage,
    path: &Path,
    bytes: &[u8],
    mode: u32,
    sync: bool,
) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())));
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let file = match storage.create_file_with_mode(&tmp, mode) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            storage.remove_file(&tmp)?;
            storage.create_file_with_mode(&tmp, mode)?
        }
        Err(error) => return Err(error),
    };
    let written = file.write_all_at(bytes, 0).and_then(|()| if sync { file.sync_all() } else { Ok(()) });
    drop(file);
    if let Err(error) = written.and_then(|()| storage.rename(&tmp, path)) {
        let _ = storage.remove_file(&tmp);
        return Err(error);
    }
    if sync {
        storage.sync_dir(dir)?;
    }
    Ok(())
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile(fs::File);

impl Storage for FsStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            // Names that are not UTF-8 are none of ours; skip them.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        fs::File::open(path)?.sync_all()
    }

    fn create_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = fs::OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        Ok(Arc::new(FsFile(file)))
    }

    fn create_file_with_mode(&self, path: &Path, mode: u32) -> io::Result<Arc<dyn StorageFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new().read(true).write(true).create_new(true).mode(mode).open(path)?;
        Ok(Arc::new(FsFile(file)))
    }

    fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = fs::OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(FsFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn sync_filesystem(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let dir = fs::File::open(path)?;
        // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
        let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl StorageFile for FsFile {
    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// A copy of an I/O error for reporting one failure to several waiters.
pub(crate) fn copy_io_error(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{SimOp, SimStorage};

    fn read(storage: &dyn Storage, path: &Path) -> Vec<u8> {
        let file = storage.open_file(path).unwrap();
        let mut buf = vec![0; usize::try_from(file.len_bytes().unwrap()).unwrap()];
        file.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn replace_file_leaves_the_old_file_whole_when_a_write_fails_midway() {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/doc");
        replace_file(&sim, path, b"old contents", 0o600, true).unwrap();
        sim.set_disk_full(true);
        let err = replace_file(&sim, path, b"new contents, longer", 0o600, true).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        sim.set_disk_full(false);
        assert_eq!(read(&sim, path), b"old contents");
        assert_eq!(sim.list_dir(Path::new("/d")).unwrap(), vec!["doc".to_string()], "temporary file removed");
        // A stale temporary file (a crash between create and rename) does not stop the next one.
        sim.create_file(Path::new("/d/doc.tmp")).unwrap().write_all_at(b"junk", 0).unwrap();
        replace_file(&sim, path, b"new", 0o600, true).unwrap();
        assert_eq!(read(&sim, path), b"new");
    }

    #[test]
    fn replace_file_survives_a_crash_whole_once_it_returned() {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        let path = Path::new("/d/doc");
        replace_file(&sim, path, b"first", 0o600, true).unwrap();
        replace_file(&sim, path, b"second", 0o600, true).unwrap();
        // A power cut during the third: the second stays.
        sim.crash_after(SimOp::Sync, 1);
        let _ = replace_file(&sim, path, b"third", 0o600, true);
        sim.restart(None);
        assert_eq!(read(&sim, path), b"second");
    }

    #[test]
    fn replace_file_sets_the_mode_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        // A world-readable leftover temporary file is not reused.
        std::fs::write(dir.path().join("secret.tmp"), b"stale").unwrap();
        std::fs::set_permissions(dir.path().join("secret.tmp"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        replace_file(&FsStorage, &path, b"key", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!dir.path().join("secret.tmp").exists());
        // Replacing keeps the mode and the old contents go.
        replace_file(&FsStorage, &path, b"key 2", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"key 2");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
