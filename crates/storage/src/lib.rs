//! kinesin-storage: where the service keeps its state, behind two traits that a second backend
//! (the cluster's PostgreSQL catalog and object-store shard log) can implement.
//!
//! - [`Catalog`]: a keyed store of versioned documents (streams, account values): a consistent
//!   snapshot, compare-and-set commits of several documents at once, id counters, and a change
//!   feed another node can wait on to invalidate its cache.
//! - [`ShardLog`]: the records of each shard: create, append under an ownership [`Epoch`] (a
//!   fenced writer fails), seal, read from a position or a time (async: the local log reads and
//!   decrypts on the blocking pool, never on a runtime worker), trim by time, delete, and a
//!   [`TipWatch`] for fan-out.
//!
//! Two implementations of each: [`local`] (the data directory's `meta.redb` and
//! `kinesin_log::Log`, formats unchanged) and [`memory`] (nothing on disk, for tests).
//! [`AnyCatalog`] and [`AnyShardLog`] pick one at run time by enum dispatch: no `Box`, no `dyn`,
//! no allocation per call on the append path.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod any;
mod catalog;
mod error;
pub mod local;
pub mod memory;
mod owner;
mod shard_log;

#[cfg(test)]
mod contract;

pub use crate::any::{AnyCatalog, AnyShardLog};
pub use crate::catalog::{
    Catalog, ChangeFeed, Doc, Expect, Snapshot, Version, Write, COUNTERS_KEY, COUNTERS_TABLE,
};
pub use crate::error::{CatalogError, ShardLogError};
pub use crate::shard_log::{Epoch, KeySet, ReadOutcome, ReadRequest, ShardLog, TipWatch};
pub use kinesin_log::{AppendOutcome, BatchKey, LogId, RecordIn, StoredRecord};
