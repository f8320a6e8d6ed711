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
    /// Opens an existing file for reading and writing.
    fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory.
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
}

/// A copy of an I/O error for reporting one failure to several waiters.
pub(crate) fn copy_io_error(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}
