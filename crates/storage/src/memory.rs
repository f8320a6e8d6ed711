//! The in-memory implementations (`kinesin serve --storage memory`): nothing is written to disk,
//! everything is gone at exit. Same contract as the local ones (epochs, seals, trims, watch,
//! compare-and-set), checked by the same tests.
//!
//! Records appended with a data key are kept in plain text in process memory (encryption at rest
//! protects files, and there are none), but each batch remembers the key generation it was
//! appended with: a read without that generation's key fails `KeyUnavailable`, and records
//! read back say they were stored encrypted, so StartStreamEncryption behaves as on disk.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use kinesin_log::{
    AppendOutcome, BatchKey, BatchKeys, LogId, RecordIn, StoredRecord, BATCH_BYTES_MAX, BATCH_HEADER_LEN,
    BATCH_RECORDS_MAX, ENCRYPTION_OVERHEAD_BYTES, RECORD_OVERHEAD_BYTES,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::catalog::{check, Catalog, ChangeFeed, Doc, Snapshot, Version, Write};
use crate::error::{CatalogError, ShardLogError};
use crate::owner::Ownership;
use crate::shard_log::{Epoch, KeySet, ReadOutcome, ReadRequest, ShardLog, TipWatch};

/// Shard logs in memory.
#[derive(Default)]
pub struct MemoryShardLog {
    logs: RwLock<BTreeMap<LogId, Arc<MemLog>>>,
}

struct MemLog {
    owner: Ownership,
    data: RwLock<MemData>,
}

struct MemData {
    /// The oldest stored sequence index (the tip when empty).
    first: u64,
    tip: u64,
    batches: VecDeque<MemBatch>,
    deleted: bool,
}

struct MemBatch {
    first: u64,
    arrival_ms: i64,
    generation: Option<u32>,
    /// As appended: the buffers the request decoded into are kept, not copied.
    records: Vec<RecordIn>,
    bytes: u64,
}

impl MemData {
    fn newest_arrival_ms(&self) -> Option<i64> {
        self.batches.back().map(|b| b.arrival_ms)
    }

    fn seek_time(&self, arrival_ms: i64) -> u64 {
        let i = self.batches.partition_point(|b| b.arrival_ms < arrival_ms);
        self.batches.get(i).map_or(self.tip, |b| b.first)
    }
}

impl MemoryShardLog {
    pub fn new() -> MemoryShardLog {
        MemoryShardLog::default()
    }

    fn log(&self, id: LogId) -> Result<Arc<MemLog>, ShardLogError> {
        self.logs.read().get(&id).cloned().ok_or(ShardLogError::NotFound(id))
    }
}

/// The checks the local log makes on an append, with its messages.
fn check_append(records: &[RecordIn], encrypted: bool) -> Result<usize, ShardLogError> {
    if records.is_empty() {
        return Err(ShardLogError::Invalid("no records".into()));
    }
    if records.len() > BATCH_RECORDS_MAX {
        return Err(ShardLogError::Invalid(format!(
            "{} records, at most {BATCH_RECORDS_MAX} allowed",
            records.len()
        )));
    }
    let payload: usize = records.iter().map(|r| r.partition_key.len() + r.data.len()).sum();
    let encoded = BATCH_HEADER_LEN
        + records.len() * RECORD_OVERHEAD_BYTES
        + payload
        + if encrypted { ENCRYPTION_OVERHEAD_BYTES } else { 0 };
    if encoded > BATCH_BYTES_MAX {
        return Err(ShardLogError::Invalid(format!(
            "{encoded} bytes encoded, at most {BATCH_BYTES_MAX} allowed"
        )));
    }
    Ok(payload)
}

impl ShardLog for MemoryShardLog {
    async fn create(&self, logs: &[(LogId, u64)]) -> Result<Vec<Epoch>, ShardLogError> {
        let made: Vec<Arc<MemLog>> = logs
            .iter()
            .map(|(_, first)| {
                Arc::new(MemLog {
                    owner: Ownership::new(*first),
                    data: RwLock::new(MemData {
                        first: *first,
                        tip: *first,
                        batches: VecDeque::new(),
                        deleted: false,
                    }),
                })
            })
            .collect();
        {
            let mut map = self.logs.write();
            for (i, (id, _)) in logs.iter().enumerate() {
                if map.contains_key(id) || logs[..i].iter().any(|(other, _)| other == id) {
                    return Err(ShardLogError::AlreadyExists(*id));
                }
            }
            for ((id, _), log) in logs.iter().zip(&made) {
                map.insert(*id, Arc::clone(log));
            }
        }
        let mut epochs = Vec::with_capacity(made.len());
        for log in made {
            epochs.push(log.owner.acquire().await);
        }
        Ok(epochs)
    }

    async fn acquire(&self, id: LogId) -> Result<Epoch, ShardLogError> {
        Ok(self.log(id)?.owner.acquire().await)
    }

    async fn append(
        &self,
        id: LogId,
        epoch: Epoch,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&BatchKey>,
    ) -> Result<AppendOutcome, ShardLogError> {
        let payload = check_append(&records, key.is_some())?;
        let log = self.log(id)?;
        let admitted = log.owner.admit(id, epoch).await?;
        let count = records.len() as u64;
        let out = {
            let mut data = log.data.write();
            if data.deleted {
                return Err(ShardLogError::NotFound(id));
            }
            // Arrival times never go back, as in the local log (time seeks rely on it).
            let arrival_ms = data.newest_arrival_ms().map_or(now_ms, |last| last.max(now_ms));
            let first = data.tip;
            data.batches.push_back(MemBatch {
                first,
                arrival_ms,
                generation: key.map(BatchKey::generation),
                records,
                bytes: payload as u64,
            });
            data.tip = first + count;
            AppendOutcome { first_seq_index: first, arrival_ms }
        };
        drop(admitted);
        log.owner.advanced(out.first_seq_index + count);
        Ok(out)
    }

    async fn seal(&self, id: LogId, epoch: Epoch) -> Result<u64, ShardLogError> {
        let log = self.log(id)?;
        log.owner.seal(id, epoch, || Ok(log.data.read().tip)).await
    }

    async fn read(
        &self,
        id: LogId,
        request: ReadRequest,
        keys: KeySet,
    ) -> Result<ReadOutcome, ShardLogError> {
        let log = self.log(id)?;
        let data = log.data.read();
        let horizon =
            if request.not_before_ms == i64::MIN { 0 } else { data.seek_time(request.not_before_ms) };
        let start = request.from.max(horizon);
        let mut records = Vec::new();
        let mut next = start.max(data.first);
        let mut bytes = 0usize;
        // The batch holding `next` (or the first after it).
        let mut b = data.batches.partition_point(|batch| batch.first + batch.records.len() as u64 <= next);
        'batches: while let Some(batch) = data.batches.get(b) {
            if let Some(generation) = batch.generation {
                if keys.key(generation).is_none() {
                    return Err(ShardLogError::KeyUnavailable { id, generation });
                }
            }
            for (i, record) in batch.records.iter().enumerate() {
                let seq = batch.first + i as u64;
                if seq < next {
                    continue;
                }
                let size = record.partition_key.len() + record.data.len();
                if records.len() >= request.max_records
                    || (!records.is_empty() && bytes + size > request.max_bytes)
                {
                    break 'batches;
                }
                bytes += size;
                records.push(StoredRecord {
                    seq_index: seq,
                    arrival_ms: batch.arrival_ms,
                    partition_key: record.partition_key.clone(),
                    data: record.data.clone(),
                    encrypted: batch.generation.is_some(),
                });
                next = seq + 1;
            }
            b += 1;
        }
        Ok(ReadOutcome {
            records,
            start,
            next_seq_index: next,
            tip: data.tip,
            newest_arrival_ms: data.newest_arrival_ms(),
        })
    }

    async fn seek_time(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        Ok(self.log(id)?.data.read().seek_time(arrival_ms))
    }

    async fn tip(&self, id: LogId) -> Result<u64, ShardLogError> {
        Ok(self.log(id)?.data.read().tip)
    }

    async fn trim_before(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        let log = self.log(id)?;
        let mut data = log.data.write();
        let mut freed = 0u64;
        while data.batches.front().is_some_and(|b| b.arrival_ms < arrival_ms) {
            if let Some(batch) = data.batches.pop_front() {
                freed += batch.bytes;
                data.first = batch.first + batch.records.len() as u64;
            }
        }
        Ok(freed)
    }

    async fn delete(&self, id: LogId) -> Result<(), ShardLogError> {
        let log = self.logs.write().remove(&id).ok_or(ShardLogError::NotFound(id))?;
        let mut data = log.data.write();
        data.deleted = true;
        data.batches.clear();
        Ok(())
    }

    async fn ids(&self) -> Result<Vec<LogId>, ShardLogError> {
        Ok(self.logs.read().keys().copied().collect())
    }

    fn watch(&self, id: LogId) -> Result<TipWatch, ShardLogError> {
        Ok(self.log(id)?.owner.watch())
    }

    fn shutdown(&self) {}
}

/// A catalog in memory.
pub struct MemoryCatalog {
    state: Mutex<MemCatalog>,
    feed: watch::Sender<u64>,
}

struct MemCatalog {
    seq: u64,
    docs: BTreeMap<(String, String), (Version, Vec<u8>)>,
}

impl Default for MemoryCatalog {
    fn default() -> MemoryCatalog {
        MemoryCatalog {
            state: Mutex::new(MemCatalog { seq: 1, docs: BTreeMap::new() }),
            feed: watch::Sender::new(1),
        }
    }
}

impl MemoryCatalog {
    pub fn new() -> MemoryCatalog {
        MemoryCatalog::default()
    }
}

impl Catalog for MemoryCatalog {
    fn describe(&self) -> &str {
        "memory"
    }

    async fn snapshot(&self) -> Result<Snapshot, CatalogError> {
        let state = self.state.lock();
        let docs = state
            .docs
            .iter()
            .map(|((table, key), (version, value))| Doc {
                table: table.clone(),
                key: key.clone(),
                version: *version,
                value: value.clone(),
            })
            .collect();
        Ok(Snapshot { seq: state.seq, docs })
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Doc>, CatalogError> {
        let state = self.state.lock();
        Ok(state.docs.get(&(table.to_string(), key.to_string())).map(|(version, value)| Doc {
            table: table.to_string(),
            key: key.to_string(),
            version: *version,
            value: value.clone(),
        }))
    }

    async fn commit(&self, writes: &[Write<'_>]) -> Result<Version, CatalogError> {
        let mut state = self.state.lock();
        for w in writes {
            let found = state.docs.get(&(w.table.to_string(), w.key.to_string())).map(|(v, _)| *v);
            check("memory", w, found)?;
        }
        let seq = state.seq + 1;
        for w in writes {
            let key = (w.table.to_string(), w.key.to_string());
            match w.value {
                Some(value) => {
                    state.docs.insert(key, (seq, value.to_vec()));
                }
                None => {
                    state.docs.remove(&key);
                }
            }
        }
        state.seq = seq;
        drop(state);
        self.feed.send_replace(seq);
        Ok(seq)
    }

    fn changes(&self) -> ChangeFeed {
        ChangeFeed::new(self.feed.subscribe())
    }
}
