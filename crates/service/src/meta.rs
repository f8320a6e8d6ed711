//! Stream metadata and its durable store.
//!
//! Everything but record data lives in one redb database, `meta.redb` in the data dir: streams
//! (with their shards, tags, policies, settings) as versioned JSON documents, and a few account
//! values. Every control-plane change is one redb write transaction, committed (fsynced) before
//! the call answers. Layout: docs/format.md, "Metadata".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use kinesin_wire::ids::{HashKey, HashKeyRange, SequenceNumber, ShardId};

/// Stream documents, keyed by stream name.
const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
/// Account-wide values, keyed by name (see the `KEY_*` constants).
const ACCOUNT: TableDefinition<&str, &[u8]> = TableDefinition::new("account");

const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_TOKEN_KEY: &str = "token_key";
const KEY_COUNTERS: &str = "counters";
const KEY_SETTINGS: &str = "settings";

/// Version of the metadata documents. Bump on any incompatible change and add an upgrade path.
pub const META_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    #[error("metadata store {path}: {source}")]
    Store { path: String, source: Box<redb::Error> },
    #[error("metadata store {path}: document {key} is damaged: {why}")]
    Corrupt { path: String, key: String, why: String },
    #[error("metadata store {path}: document {key} cannot be encoded: {why}")]
    Encode { path: String, key: String, why: String },
    #[error("metadata format version {found} is newer than this kinesin understands ({supported}); upgrade kinesin")]
    TooNew { found: u32, supported: u32 },
}

fn store_err(path: &str) -> impl Fn(redb::Error) -> MetaError + '_ {
    move |e| MetaError::Store { path: path.to_string(), source: Box::new(e) }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

/// Sequence index of a shard's first record. The shard's StartingSequenceNumber uses index 0, so
/// every record's sequence number is strictly greater than it, and AFTER_SEQUENCE_NUMBER of the
/// StartingSequenceNumber (what a consumer that has read nothing resumes from) starts at the first
/// record. (Logs created before this constant started at 0; they keep working.)
pub const FIRST_RECORD_SEQ_INDEX: u64 = 1;

/// A shard that no longer takes writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosedShard {
    /// The last sequence index the shard holds (exclusive end: the log's tip at closing).
    pub end_seq_index: u64,
    pub closed_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardMeta {
    pub index: u32,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    /// Hash keys as decimal strings: JSON numbers cannot hold 128 bits portably.
    pub start_hash: String,
    pub end_hash: String,
    pub created_ms: i64,
    /// The record log holding this shard's data.
    pub log_id: u64,
    pub closed: Option<ClosedShard>,
    /// `start_hash`..=`end_hash` parsed once: routing looks it up for every record.
    #[serde(skip)]
    pub range_cache: std::sync::OnceLock<HashKeyRange>,
    /// Shard-level metrics; clones of the snapshot share them (`crate::metrics`).
    #[serde(skip)]
    pub metrics: crate::metrics::ShardMetricsRef,
    /// The shard's write gate (`crate::reshard`); clones of the snapshot share it.
    #[serde(skip)]
    pub gate: std::sync::Arc<crate::reshard::Gate>,
}

impl ShardMeta {
    pub fn id(&self) -> ShardId {
        ShardId(self.index)
    }

    /// The shard's hash-key range. Stored documents are checked when they are loaded
    /// ([`ShardMeta::parse_range`]), and shards made in memory hold ranges written from
    /// `HashKey`s, so the strings always parse here.
    pub fn range(&self) -> HashKeyRange {
        *self.range_cache.get_or_init(|| {
            #[allow(clippy::expect_used)]
            self.parse_range().expect("hash keys are checked when a stream document is loaded")
        })
    }

    /// `start_hash`..=`end_hash` parsed strictly, or what is wrong with them.
    pub fn parse_range(&self) -> Result<HashKeyRange, String> {
        let parse = |name: &str, text: &str| {
            HashKey::parse(text).map_err(|e| format!("shard {}: {name} {text:?}: {e}", self.id()))
        };
        let start = parse("start_hash", &self.start_hash)?;
        let end = parse("end_hash", &self.end_hash)?;
        if start > end {
            return Err(format!("shard {}: start_hash {start} is above end_hash {end}", self.id()));
        }
        Ok(HashKeyRange { start, end })
    }

    pub fn create_secs(&self) -> u64 {
        (self.created_ms / 1000).max(0) as u64
    }

    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// The sequence number of a record of this shard.
    pub fn sequence_number(&self, seq_index: u64, arrival_ms: i64) -> SequenceNumber {
        SequenceNumber {
            shard_create_secs: self.create_secs(),
            shard_index: self.index,
            seq_index,
            arrival_secs: (arrival_ms / 1000).max(0) as u64,
        }
    }

    pub fn starting_sequence_number(&self) -> SequenceNumber {
        self.sequence_number(0, self.created_ms)
    }

    pub fn ending_sequence_number(&self) -> Option<SequenceNumber> {
        self.closed.as_ref().map(|c| self.sequence_number(SequenceNumber::MAX_SEQ_INDEX, c.closed_ms))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamMeta {
    pub name: String,
    /// Unique for the life of the data dir: a re-created stream gets a new one.
    pub incarnation: u64,
    pub created_ms: i64,
    pub status: StreamStatus,
    /// When the current transitional status (CREATING, UPDATING, DELETING) ends.
    pub status_until_ms: i64,
    pub mode: StreamMode,
    pub retention_hours: i64,
    pub shards: Vec<ShardMeta>,
    pub tags: BTreeMap<String, String>,
    pub shard_level_metrics: BTreeSet<String>,
    /// KMS key id while server-side encryption is on.
    pub encryption_key_id: Option<String>,
    pub max_record_size_kib: i64,
    pub policy: Option<String>,
    /// When UpdateShardCount ran, for AWS's limit of scalings per rolling 24 hours.
    #[serde(default)]
    pub scalings_ms: Vec<i64>,
    /// When UpdateStreamMode switched the mode, for AWS's limit of switches per rolling 24 hours.
    #[serde(default)]
    pub mode_switches_ms: Vec<i64>,
    /// Warm throughput asked for an ON_DEMAND stream (CreateStream, UpdateStreamMode,
    /// UpdateStreamWarmThroughput), MiB/s.
    #[serde(default)]
    pub warm_throughput_mibps: Option<i64>,
    /// Enhanced fan-out consumers, in registration order.
    #[serde(default)]
    pub consumers: Vec<ConsumerMeta>,
    /// The newest consumer registration time ever (deregistered ones included): a consumer
    /// registered again under the same name must get a new ARN, whose seconds are after it.
    #[serde(default)]
    pub consumer_created_ms_last: i64,
    /// Stream-level metrics; clones of the snapshot share them (`crate::metrics`).
    #[serde(skip)]
    pub metrics: crate::metrics::StreamMetricsRef,
    /// Data keys (wrapped) and the history of encryption changes.
    #[serde(default)]
    pub encryption: crate::kms::EncryptionMeta,
    /// A SplitShard / MergeShards / UpdateShardCount accepted while `--update-stream-ms` is
    /// above 0: the stream is UPDATING with its old shards (open, taking writes, listed), and the
    /// steps are applied when UPDATING ends, as AWS shows the old shard set until then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_reshard: Vec<PendingStep>,
}

/// One resharding step waiting for the end of its stream's UPDATING window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingStep {
    /// SplitShard; the hash key as a decimal string (JSON numbers cannot hold 128 bits).
    Split {
        shard: u32,
        at: String,
    },
    Merge {
        shard: u32,
        adjacent: u32,
    },
    /// UpdateShardCount with UNIFORM_SCALING.
    Scale {
        target: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerStatus {
    Creating,
    Active,
    Deleting,
}

impl ConsumerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerStatus::Creating => "CREATING",
            ConsumerStatus::Active => "ACTIVE",
            ConsumerStatus::Deleting => "DELETING",
        }
    }
}

/// An enhanced fan-out consumer of a stream (RegisterStreamConsumer).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsumerMeta {
    pub name: String,
    /// Registration time; its epoch seconds are part of the consumer's ARN.
    pub created_ms: i64,
    pub status: ConsumerStatus,
    /// When CREATING or DELETING ends.
    pub status_until_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ConsumerMeta {
    /// `<stream ARN>/consumer/<name>:<creation epoch seconds>`, as AWS writes it.
    pub fn arn(&self, stream_arn: &str) -> String {
        format!("{stream_arn}/consumer/{}:{}", self.name, self.created_ms.div_euclid(1000))
    }
}

impl StreamMeta {
    pub fn retention_ms(&self) -> i64 {
        self.retention_hours * 3_600_000
    }

    pub fn open_shard_count(&self) -> u64 {
        self.shards.iter().filter(|s| s.is_open()).count() as u64
    }

    pub fn shard(&self, index: u32) -> Option<&ShardMeta> {
        // Shards are stored in index order and indexes are never reused.
        self.shards.binary_search_by_key(&index, |s| s.index).ok().map(|i| &self.shards[i])
    }

    /// The index the next new shard gets: shard ids are never reused.
    pub fn next_shard_index(&self) -> u32 {
        self.shards.last().map_or(0, |s| s.index + 1)
    }

    /// The open shard whose hash key range holds `key`.
    pub fn route(&self, key: HashKey) -> Option<&ShardMeta> {
        self.shards.iter().find(|s| s.is_open() && s.range().contains(key))
    }
}

/// Counters that must never repeat.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    pub next_incarnation: u64,
    pub next_log_id: u64,
}

/// Account settings (UpdateAccountSettings).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccountSettings {
    pub billing_commitment_enabled_ms: Option<i64>,
    pub billing_commitment_ended_ms: Option<i64>,
}

/// The durable metadata store.
pub struct MetaStore {
    db: Database,
    path: String,
}

/// What `MetaStore::open` found.
pub struct Loaded {
    pub streams: Vec<StreamMeta>,
    pub counters: Counters,
    pub settings: AccountSettings,
    pub token_key: [u8; 32],
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<(MetaStore, Loaded), MetaError> {
        let p = path.display().to_string();
        let db = Database::create(path).map_err(|e| store_err(&p)(e.into()))?;
        let store = MetaStore { db, path: p };
        let loaded = store.load_or_init()?;
        Ok((store, loaded))
    }

    fn load_or_init(&self) -> Result<Loaded, MetaError> {
        let e = store_err(&self.path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        let loaded;
        {
            let mut account = tx.open_table(ACCOUNT).map_err(|x| e(x.into()))?;
            let streams_table = tx.open_table(STREAMS).map_err(|x| e(x.into()))?;
            let get = |table: &redb::Table<&str, &[u8]>, key: &str| -> Result<Option<Vec<u8>>, MetaError> {
                Ok(table.get(key).map_err(|x| e(x.into()))?.map(|v| v.value().to_vec()))
            };
            match get(&account, KEY_FORMAT_VERSION)? {
                Some(v) => {
                    let found: u32 = decode(&self.path, KEY_FORMAT_VERSION, &v)?;
                    if found > META_FORMAT_VERSION {
                        return Err(MetaError::TooNew { found, supported: META_FORMAT_VERSION });
                    }
                }
                None => {
                    account
                        .insert(
                            KEY_FORMAT_VERSION,
                            self.encode(KEY_FORMAT_VERSION, &META_FORMAT_VERSION)?.as_slice(),
                        )
                        .map_err(|x| e(x.into()))?;
                }
            }
            let token_key = match get(&account, KEY_TOKEN_KEY)? {
                Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| MetaError::Corrupt {
                    path: self.path.clone(),
                    key: KEY_TOKEN_KEY.into(),
                    why: format!("expected 32 bytes, found {}", bytes.len()),
                })?,
                None => {
                    let key: [u8; 32] = rand::random();
                    account.insert(KEY_TOKEN_KEY, key.as_slice()).map_err(|x| e(x.into()))?;
                    key
                }
            };
            let counters = match get(&account, KEY_COUNTERS)? {
                Some(v) => decode(&self.path, KEY_COUNTERS, &v)?,
                None => Counters { next_incarnation: 1, next_log_id: 1 },
            };
            let settings = match get(&account, KEY_SETTINGS)? {
                Some(v) => decode(&self.path, KEY_SETTINGS, &v)?,
                None => AccountSettings::default(),
            };
            let mut streams = Vec::new();
            for entry in streams_table.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                let stream = decode::<StreamMeta>(&self.path, k.value(), v.value())?;
                check_stream(&stream).map_err(|why| MetaError::Corrupt {
                    path: self.path.clone(),
                    key: k.value().to_string(),
                    why,
                })?;
                streams.push(stream);
            }
            loaded = Loaded { streams, counters, settings, token_key };
        }
        tx.commit().map_err(|x| e(x.into()))?;
        Ok(loaded)
    }

    /// Applies one change atomically and durably.
    pub fn commit(&self, change: &Change<'_>) -> Result<(), MetaError> {
        let e = store_err(&self.path);
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut streams = tx.open_table(STREAMS).map_err(|x| e(x.into()))?;
            let mut account = tx.open_table(ACCOUNT).map_err(|x| e(x.into()))?;
            for s in change.put_streams {
                streams
                    .insert(s.name.as_str(), self.encode(&s.name, s)?.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            for name in change.remove_streams {
                streams.remove(*name).map_err(|x| e(x.into()))?;
            }
            if let Some(c) = change.counters {
                account
                    .insert(KEY_COUNTERS, self.encode(KEY_COUNTERS, c)?.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            if let Some(s) = change.settings {
                account
                    .insert(KEY_SETTINGS, self.encode(KEY_SETTINGS, s)?.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        tx.commit().map_err(|x| e(x.into()))?;
        Ok(())
    }
}

/// One atomic metadata change.
#[derive(Default)]
pub struct Change<'a> {
    pub put_streams: &'a [&'a StreamMeta],
    pub remove_streams: &'a [&'a str],
    pub counters: Option<&'a Counters>,
    pub settings: Option<&'a AccountSettings>,
}

impl MetaStore {
    /// A document's bytes; a failure is an error (the change is not committed), never an empty
    /// document.
    fn encode<T: Serialize>(&self, key: &str, v: &T) -> Result<Vec<u8>, MetaError> {
        serde_json::to_vec(v).map_err(|err| MetaError::Encode {
            path: self.path.clone(),
            key: key.to_string(),
            why: err.to_string(),
        })
    }
}

impl StreamMeta {
    /// An ACTIVE provisioned stream with these shards and every other field at its default, for
    /// unit tests (struct-update syntax changes the fields a test cares about).
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, shards: Vec<ShardMeta>) -> StreamMeta {
        StreamMeta {
            name: name.into(),
            incarnation: 1,
            created_ms: 0,
            status: StreamStatus::Active,
            status_until_ms: 0,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            shards,
            tags: Default::default(),
            shard_level_metrics: Default::default(),
            encryption_key_id: None,
            max_record_size_kib: 1024,
            policy: None,
            scalings_ms: Vec::new(),
            mode_switches_ms: Vec::new(),
            warm_throughput_mibps: None,
            consumers: Vec::new(),
            consumer_created_ms_last: 0,
            pending_reshard: Vec::new(),
            metrics: Default::default(),
            encryption: Default::default(),
        }
    }
}

fn decode<T: for<'de> Deserialize<'de>>(path: &str, key: &str, bytes: &[u8]) -> Result<T, MetaError> {
    serde_json::from_slice(bytes).map_err(|err| MetaError::Corrupt {
        path: path.to_string(),
        key: key.to_string(),
        why: err.to_string(),
    })
}

/// What the document's types cannot say: every shard's hash keys parse, as a range. Fills the
/// shards' parsed ranges on the way.
fn check_stream(stream: &StreamMeta) -> Result<(), String> {
    for shard in &stream.shards {
        let range = shard.parse_range()?;
        let _ = shard.range_cache.set(range);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(ranges: &[(String, String)]) -> StreamMeta {
        let shards = ranges
            .iter()
            .enumerate()
            .map(|(i, (start, end))| ShardMeta {
                index: i as u32,
                parent: None,
                adjacent_parent: None,
                start_hash: start.clone(),
                end_hash: end.clone(),
                created_ms: 0,
                log_id: i as u64 + 1,
                closed: None,
                range_cache: Default::default(),
                metrics: Default::default(),
                gate: Default::default(),
            })
            .collect();
        StreamMeta::for_test("orders", shards)
    }

    fn halves() -> Vec<(String, String)> {
        let [a, b] = [0, 1].map(|i| HashKeyRange::even_split(2)[i]);
        vec![(a.start.to_string(), a.end.to_string()), (b.start.to_string(), b.end.to_string())]
    }

    /// Stores `s` as written by a build that does not check it, as damage on disk would.
    fn store_raw(path: &Path, s: &StreamMeta) {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(STREAMS)
            .unwrap()
            .insert(s.name.as_str(), serde_json::to_vec(s).unwrap().as_slice())
            .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn undamaged_hash_keys_load_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        drop(MetaStore::open(&path).unwrap());
        store_raw(&path, &stream(&halves()));
        let (_, loaded) = MetaStore::open(&path).unwrap();
        let ranges: Vec<_> = loaded.streams[0].shards.iter().map(ShardMeta::range).collect();
        assert_eq!(ranges, HashKeyRange::even_split(2));
    }

    #[test]
    fn a_damaged_hash_key_fails_the_load_naming_the_store_document_and_shard() {
        let max_plus_one = "340282366920938463463374607431768211456".to_string();
        for (field, damage) in [
            ("end_hash", "12x".to_string()),
            ("end_hash", String::new()),
            ("end_hash", max_plus_one),
            ("start_hash", "-1".to_string()),
            ("start_hash", "007".to_string()),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("meta.redb");
            drop(MetaStore::open(&path).unwrap());
            let mut ranges = halves();
            if field == "end_hash" {
                ranges[1].1 = damage.clone();
            } else {
                ranges[1].0 = damage.clone();
            }
            store_raw(&path, &stream(&ranges));
            let e = MetaStore::open(&path).err().expect("a damaged document must not load").to_string();
            for part in [&path.display().to_string(), "document orders", "shardId-000000000001", field] {
                assert!(e.contains(part), "{damage:?}: {e:?} does not name {part}");
            }
        }
        // A range upside down is damage too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        drop(MetaStore::open(&path).unwrap());
        let mut ranges = halves();
        ranges[0] = (ranges[0].1.clone(), ranges[0].0.clone());
        store_raw(&path, &stream(&ranges));
        let e = MetaStore::open(&path).err().expect("an upside-down range must not load").to_string();
        assert!(e.contains("shardId-000000000000") && e.contains("is above end_hash"), "{e}");
    }

    #[test]
    fn a_document_that_cannot_be_encoded_is_an_error_not_an_empty_document() {
        struct Unencodable;
        impl Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = MetaStore::open(&dir.path().join("meta.redb")).unwrap();
        let e = store.encode("orders", &Unencodable).unwrap_err().to_string();
        assert!(e.contains("meta.redb") && e.contains("document orders cannot be encoded"), "{e}");
    }
}
