//! Micro-benchmark behind the group-commit choice in ARCHITECTURE.md ("Choices"): how long does
//! one durable round take when 1,000 per-shard files each got a write, synced (a) one
//! `fdatasync` after another, (b) by a bounded pool of threads in parallel, (c) by one
//! `syncfs`, against (d) a shared journal: the same bytes in one file and one `fdatasync`.
//! Ignored by default (it writes to the real disk and takes seconds); run with
//! `cargo test -p kinesin-log --test log_sync_bench -- --ignored --nocapture`.
//! `KINESIN_SYNC_BENCH_FILES` sets the file count (default 1000); `KINESIN_SYNC_BENCH_DIR` picks the directory (default: a temporary one under the target dir).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ROUNDS: usize = 8;
const SYNC_THREADS: &[usize] = &[4, 16, 64];

fn open_files(dir: &Path, n: usize) -> Vec<File> {
    (0..n)
        .map(|i| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join(format!("{i:05}.seg")))
                .expect("open")
        })
        .collect()
}

fn syncfs(file: &File) {
    // SAFETY: syncfs takes any open descriptor and touches no memory of ours.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    assert_eq!(rc, 0, "syncfs: {}", std::io::Error::last_os_error());
}

fn parallel_sync(files: &[File], threads: usize) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                file.sync_data().expect("fdatasync");
            });
        }
    });
}

/// Runs `ROUNDS` rounds of one `write_bytes` write to each file, then `sync`; returns the mean
/// round time.
fn rounds(files: &[File], write_bytes: usize, sync: &dyn Fn(&[File])) -> Duration {
    let buf = vec![0x5au8; write_bytes];
    let mut offsets = vec![0u64; files.len()];
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for (file, offset) in files.iter().zip(offsets.iter_mut()) {
            file.write_all_at(&buf, *offset).expect("write");
            *offset += write_bytes as u64;
        }
        sync(files);
    }
    start.elapsed() / ROUNDS as u32
}

fn report(name: &str, syncs_per_round: usize, round: Duration, bytes_per_round: usize) {
    let mb_s = bytes_per_round as f64 / round.as_secs_f64() / 1e6;
    println!(
        "{name:<34} {syncs_per_round:>6} syncs/round  {:>8.2} ms/round  {mb_s:>7.1} MB/s",
        round.as_secs_f64() * 1e3
    );
}

#[test]
#[ignore = "writes to the real disk; run by hand for numbers"]
fn sync_strategies_for_1000_files() {
    let files_n: usize =
        std::env::var("KINESIN_SYNC_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let base = std::env::var_os("KINESIN_SYNC_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    for write_bytes in [4096usize, 64 * 1024] {
        let per_round = files_n * write_bytes;
        println!("--- {files_n} files x {write_bytes} bytes per round ({} MB/round)", per_round / 1_000_000);
        let files = open_files(&dir.path().join("seq").tap_mkdir(), files_n);
        report(
            "sequential fdatasync",
            files_n,
            rounds(&files, write_bytes, &|f| f.iter().for_each(|f| f.sync_data().expect("sync"))),
            per_round,
        );
        for &threads in SYNC_THREADS {
            let files =
                open_files(&dir.path().join(format!("par{threads}-{write_bytes}")).tap_mkdir(), files_n);
            report(
                &format!("parallel fdatasync, {threads} threads"),
                files_n,
                rounds(&files, write_bytes, &|f| parallel_sync(f, threads)),
                per_round,
            );
        }
        let files = open_files(&dir.path().join(format!("syncfs-{write_bytes}")).tap_mkdir(), files_n);
        report("one syncfs", 1, rounds(&files, write_bytes, &|f| syncfs(&f[0])), per_round);
        // A shared journal: every shard's bytes in one file, one fdatasync per round. (A journal
        // design writes them a second time into the shard segments later.)
        let journal = open_files(&dir.path().join(format!("journal-{write_bytes}")).tap_mkdir(), 1);
        report(
            "journal: one file, one fdatasync",
            1,
            rounds(&journal, per_round, &|f| f[0].sync_data().expect("sync")),
            per_round,
        );
        std::fs::remove_dir_all(dir.path().join("seq")).ok();
    }
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}
