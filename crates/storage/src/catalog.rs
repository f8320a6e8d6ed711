//! The catalog: a keyed store of versioned documents.

use std::future::Future;

use tokio::sync::watch;

use crate::error::CatalogError;

/// A document's version: the catalog sequence number of the commit that last wrote it. Versions
/// only compare within one catalog; a caller keeps the versions it read and commits against them.
pub type Version = u64;

/// Where the id counters live: one JSON object document, `{"next_<counter>": <next id>, ...}`
/// (the local layout since format version 1: `account/counters` in `meta.redb`).
pub const COUNTERS_TABLE: &str = "account";
pub const COUNTERS_KEY: &str = "counters";

/// One stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub table: String,
    pub key: String,
    pub version: Version,
    pub value: Vec<u8>,
}

/// Every document at one moment (one catalog sequence number).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The catalog's sequence at the snapshot: a change feed past it has newer changes.
    pub seq: u64,
    /// By table, then key.
    pub docs: Vec<Doc>,
}

impl Snapshot {
    pub fn get(&self, table: &str, key: &str) -> Option<&Doc> {
        self.docs.iter().find(|d| d.table == table && d.key == key)
    }

    /// The documents of one table, by key.
    pub fn table<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.table == table)
    }
}

/// What a write expects of the document it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (a blind write).
    Any,
    /// No document.
    Absent,
    /// Exactly this version.
    Version(Version),
}

/// One write of a change set: put `value`, or remove the document when `value` is `None`.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub expect: Expect,
    pub value: Option<&'a [u8]>,
}

impl<'a> Write<'a> {
    pub fn put(table: &'a str, key: &'a str, expect: Expect, value: &'a [u8]) -> Write<'a> {
        Write { table, key, expect, value: Some(value) }
    }

    pub fn remove(table: &'a str, key: &'a str, expect: Expect) -> Write<'a> {
        Write { table, key, expect, value: None }
    }
}

/// The catalog's sequence number, which every commit raises. A node that caches documents waits
/// on it and reloads (or re-reads what it holds) when it moves.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    rx: watch::Receiver<u64>,
}

impl ChangeFeed {
    pub fn new(rx: watch::Receiver<u64>) -> ChangeFeed {
        ChangeFeed { rx }
    }

    /// The sequence now.
    pub fn seq(&self) -> u64 {
        *self.rx.borrow()
    }

    /// Waits until the sequence is past `seen` and returns it; `None` when the catalog is gone.
    pub async fn wait_past(&mut self, seen: u64) -> Option<u64> {
        self.rx.wait_for(|seq| *seq > seen).await.ok().map(|seq| *seq)
    }
}

/// A keyed store of versioned documents (see the crate comment). Tables and keys are text,
/// values bytes; the typed layer above (the service's `MetaStore`) encodes them.
pub trait Catalog: Send + Sync + 'static {
    /// Names the store in messages: a path, or a URL without credentials.
    fn describe(&self) -> &str;

    /// Every document, consistently (one sequence number).
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, CatalogError>> + Send;

    /// One document, if present.
    fn get(&self, table: &str, key: &str) -> impl Future<Output = Result<Option<Doc>, CatalogError>> + Send;

    /// Applies every write or none, durably before it returns: `Conflict` when a write's
    /// expectation does not hold. Returns the new sequence, which is the new version of every
    /// document written.
    fn commit(&self, writes: &[Write<'_>]) -> impl Future<Output = Result<Version, CatalogError>> + Send;

    /// Takes `count` ids of the counter `counter` (ids never repeat; gaps are allowed) and
    /// returns the first. The default keeps the counters in the [`COUNTERS_TABLE`]/
    /// [`COUNTERS_KEY`] document by compare-and-set; a backend with sequences may override it.
    fn next_ids(&self, counter: &str, count: u64) -> impl Future<Output = Result<u64, CatalogError>> + Send {
        async move {
            let field = format!("next_{counter}");
            loop {
                let current = self.get(COUNTERS_TABLE, COUNTERS_KEY).await?;
                let (mut object, expect) = match &current {
                    None => (serde_json::Map::new(), Expect::Absent),
                    Some(doc) => match serde_json::from_slice::<serde_json::Value>(&doc.value) {
                        Ok(serde_json::Value::Object(object)) => (object, Expect::Version(doc.version)),
                        _ => {
                            return Err(CatalogError::Corrupt {
                                store: self.describe().to_string(),
                                what: format!("document {COUNTERS_TABLE}/{COUNTERS_KEY}"),
                                why: "not a JSON object".into(),
                            })
                        }
                    },
                };
                let first = match object.get(&field) {
                    None => 1,
                    Some(v) => v.as_u64().ok_or_else(|| CatalogError::Corrupt {
                        store: self.describe().to_string(),
                        what: format!("document {COUNTERS_TABLE}/{COUNTERS_KEY}"),
                        why: format!("{field} is not a whole number"),
                    })?,
                };
                let next = first.checked_add(count).ok_or_else(|| CatalogError::Corrupt {
                    store: self.describe().to_string(),
                    what: format!("document {COUNTERS_TABLE}/{COUNTERS_KEY}"),
                    why: format!("{field} would pass 2^64"),
                })?;
                object.insert(field.clone(), next.into());
                let bytes = serde_json::to_vec(&object).map_err(|e| CatalogError::Corrupt {
                    store: self.describe().to_string(),
                    what: format!("document {COUNTERS_TABLE}/{COUNTERS_KEY}"),
                    why: e.to_string(),
                })?;
                match self.commit(&[Write::put(COUNTERS_TABLE, COUNTERS_KEY, expect, &bytes)]).await {
                    Ok(_) => return Ok(first),
                    Err(CatalogError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// The change feed.
    fn changes(&self) -> ChangeFeed;
}

/// Checks a write's expectation against the version found.
pub(crate) fn check(store: &str, write: &Write<'_>, found: Option<Version>) -> Result<(), CatalogError> {
    let ok = match write.expect {
        Expect::Any => true,
        Expect::Absent => found.is_none(),
        Expect::Version(v) => found == Some(v),
    };
    if ok {
        return Ok(());
    }
    Err(CatalogError::Conflict {
        store: store.to_string(),
        table: write.table.to_string(),
        key: write.key.to_string(),
        expected: write.expect,
        found,
    })
}
