//! Helpers shared by the log's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use kinesin_log::{Durability, Log, LogConfig, LogId, RecordIn, SimStorage, StoredRecord};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

pub fn sim_config(segment_bytes_max: u64) -> LogConfig {
    LogConfig {
        dir: PathBuf::from("/logs"),
        durability: Durability::Fsync,
        segment_bytes_max,
        tail_bytes_per_log_max: 1024,
        // Small, so that the crash tests also run through evicted tails and re-opened files.
        tail_bytes_total_max: 4096,
        open_files_max: 3,
    }
}

pub fn open_sim(sim: &SimStorage, config: &LogConfig) -> Log {
    Log::open(config.clone(), Arc::new(sim.clone())).expect("open")
}

/// `n` records whose data names the log, the append and the record, padded to `pad` bytes.
pub fn records(log: LogId, append: u64, n: usize, pad: usize) -> Vec<RecordIn> {
    (0..n)
        .map(|i| {
            let mut data = format!("{}:{append}:{i}:", log.0).into_bytes();
            data.resize(data.len().max(pad), b'.');
            RecordIn { partition_key: Bytes::from(format!("pk{i}")), data: Bytes::from(data) }
        })
        .collect()
}

/// (log, append, index) named by a record made by `records`.
pub fn tag(record: &StoredRecord) -> (u64, u64, usize) {
    let text = std::str::from_utf8(&record.data).expect("utf8 data");
    let mut parts = text.split(':');
    let mut next = || parts.next().expect("part").parse::<u64>().expect("number");
    let log = next();
    let append = next();
    let index = next() as usize;
    (log, append, index)
}

/// Every stored record of a log, read in small pieces.
pub fn read_all(log: &Log, id: LogId) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut from = log.first(id).expect("first");
    let tip = log.tip(id).expect("tip");
    loop {
        let got = log.read(id, from, 7, 4096).expect("read");
        if got.records.is_empty() {
            assert!(got.next_seq_index >= tip || from >= tip, "read stalled at {from} below tip {tip}");
            break;
        }
        assert!(got.next_seq_index > from);
        from = got.next_seq_index;
        out.extend(got.records);
    }
    out
}

/// Polls all futures on the current task until every one is done (a minimal `join_all`).
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    for result in results {
        outputs.push(result.expect("completed"));
    }
    outputs
}
