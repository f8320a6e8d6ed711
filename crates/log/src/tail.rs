//! The in-memory tails of all logs, under one budget.
//!
//! Each log keeps its newest batches in memory (at most `tail_bytes_per_log_max`), so reads near
//! the tip do not touch the disk. With thousands of logs that alone is unbounded, so the bytes of
//! all tails are also counted together, and once they pass `tail_bytes_total_max` the tails of
//! the logs least recently appended to or read are dropped whole, until the total is back under
//! the budget. A log without a tail reads from its segments through the index, as after a
//! restart; its next append starts a new tail.
//!
//! Lock order: `touch` and `enforce` run with no shard's read lock held (the writer may hold a
//! shard's write mutex: that lock comes first anyway), and the LRU mutex is never held
//! while a shard lock is taken.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::shard::Shard;

/// A recent batch kept in memory, encoded exactly as on disk.
#[derive(Debug, Clone)]
pub(crate) struct MemBatch {
    pub first_seq: u64,
    pub buf: Bytes,
}

/// One log's newest batches, oldest first; their bytes are also counted in the shared total.
#[derive(Debug)]
pub(crate) struct Tail {
    batches: VecDeque<MemBatch>,
    bytes: usize,
    total: Arc<AtomicUsize>,
}

impl Tail {
    pub fn new(total: Arc<AtomicUsize>) -> Tail {
        Tail { batches: VecDeque::new(), bytes: 0, total }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push_back(&mut self, batch: MemBatch) {
        self.bytes += batch.buf.len();
        self.total.fetch_add(batch.buf.len(), Ordering::Relaxed);
        self.batches.push_back(batch);
    }

    pub fn pop_front(&mut self) -> Option<MemBatch> {
        let batch = self.batches.pop_front()?;
        self.bytes -= batch.buf.len();
        self.total.fetch_sub(batch.buf.len(), Ordering::Relaxed);
        Some(batch)
    }

    pub fn front(&self) -> Option<&MemBatch> {
        self.batches.front()
    }

    /// The batch starting at `first_seq`, if it is in memory.
    pub fn find(&self, first_seq: u64) -> Option<&MemBatch> {
        let front = self.batches.front()?;
        if first_seq < front.first_seq {
            return None;
        }
        let index = self.batches.partition_point(|batch| batch.first_seq < first_seq);
        self.batches.get(index).filter(|batch| batch.first_seq == first_seq)
    }

    pub fn clear(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
        // Give the ring's memory back too: an evicted log may stay cold for long.
        self.batches = VecDeque::new();
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The shared budget and the recency order of the logs that may hold a tail.
pub(crate) struct TailBudget {
    total: Arc<AtomicUsize>,
    bytes_max: usize,
    lru: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    tick: u64,
    /// Last-use tick → log, oldest first. At most one entry per log (`Shard::tail_tick`).
    order: BTreeMap<u64, Weak<Shard>>,
}

impl TailBudget {
    pub fn new(bytes_max: usize) -> TailBudget {
        TailBudget { total: Arc::new(AtomicUsize::new(0)), bytes_max, lru: Mutex::new(Lru::default()) }
    }

    /// The counter every log's [`Tail`] adds to.
    pub fn total(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.total)
    }

    /// Bytes held in all tails now.
    pub fn bytes(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Marks the log as just used (appended to or read). Call without holding its locks.
    pub fn touch(&self, shard: &Arc<Shard>) {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let tick = lru.tick;
        // Every change of `tail_tick` happens under the LRU mutex.
        let old = shard.tail_tick.swap(tick, Ordering::Relaxed);
        if old != 0 {
            lru.order.remove(&old);
        }
        lru.order.insert(tick, Arc::downgrade(shard));
    }

    /// Takes a deleted log out of the recency order, which otherwise keeps an entry per log
    /// ever used until the budget is next exceeded.
    pub fn forget(&self, shard: &Shard) {
        let mut lru = self.lru.lock();
        let tick = shard.tail_tick.swap(0, Ordering::Relaxed);
        if tick != 0 {
            lru.order.remove(&tick);
        }
    }

    /// Drops the tails of the least recently used logs until the total is within the budget.
    /// Call without holding any shard lock.
    pub fn enforce(&self) {
        // Bounded by the number of logs in the order (each is popped at most once).
        while self.bytes() > self.bytes_max {
            let victim = {
                let mut lru = self.lru.lock();
                let Some((tick, victim)) = lru.order.pop_first() else { break };
                if let Some(shard) = victim.upgrade() {
                    let _ = shard.tail_tick.compare_exchange(tick, 0, Ordering::Relaxed, Ordering::Relaxed);
                    Some(shard)
                } else {
                    None
                }
            };
            if let Some(shard) = victim {
                shard.read.write().tail.clear();
            }
        }
    }
}

/// A log's place in the recency order (0: not in it).
pub(crate) type TailTick = AtomicU64;
