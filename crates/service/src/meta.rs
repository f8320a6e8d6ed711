//! Stream metadata and its durable store.
//!
//! Everything but record data lives in one redb database, `meta.redb` in the data dir: streams
//! (with their shards, tags, policies, settings) as versioned JSON documents, and a few account
//! values. Every control-plane change is one redb write transaction, committed (fsynced) before
//! the call answers. Layout: docs/format.md, "Metadata".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use kinesin_storage::local::RedbCatalog;
use kinesin_storage::{AnyCatalog, Catalog, CatalogError, Expect, Version, Write};
use kinesin_wire::ids::{HashKey, HashKeyRange, SequenceNumber, ShardId};

use crate::storage::wait;

/// Stream documents, keyed by stream name.
pub const STREAMS_TABLE: &str = "streams";
/// Account-wide values, keyed by name (see the `KEY_*` constants).
pub const ACCOUNT_TABLE: &str = "account";

const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_TOKEN_KEY: &str = "token_key";
const KEY_COUNTERS: &str = "counters";
const KEY_SETTINGS: &str = "settings";

/// Version of the metadata store (the `account` table's `format_version`). Bump on any
/// incompatible change and add an upgrade path.
pub const META_FORMAT_VERSION: u32 = 1;
/// Version of each JSON document (stream documents, `counters`, `settings`), written into the
/// document as [`DOC_VERSION_FIELD`]. A document without it was written before documents carried
/// their own version and is version 1. Bump on any change an older kinesin would misread, and
/// read the older versions on.
pub const DOC_FORMAT_VERSION: u64 = 1;
/// The member of a JSON document that holds its version.
pub const DOC_VERSION_FIELD: &str = "format_version";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("metadata store {path}: document {key} is damaged: {why}")]
    Corrupt { path: String, key: String, why: String },
    #[error("metadata store {path}: document {key} cannot be encoded: {why}")]
    Encode { path: String, key: String, why: String },
    #[error("metadata store {path}: format version {found} is newer than this kinesin understands ({supported}); upgrade kinesin")]
    TooNew { path: String, found: u32, supported: u32 },
    #[error("metadata store {path}: document {key} has format version {found}, newer than this kinesin understands ({supported}); upgrade kinesin")]
    DocumentTooNew { path: String, key: String, found: u64, supported: u64 },
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
#[serde(deny_unknown_fields)]
pub struct ClosedShard {
    /// The last sequence index the shard holds (exclusive end: the log's tip at closing).
    pub end_seq_index: u64,
    pub closed_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
    pub fn arn(&self, stream_arn: &kinesin_wire::ids::StreamArn) -> kinesin_wire::ids::ConsumerArn {
        kinesin_wire::ids::ConsumerArn::new(stream_arn, &self.name, self.created_ms.div_euclid(1000) * 1000)
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
#[serde(deny_unknown_fields)]
pub struct Counters {
    pub next_incarnation: u64,
    pub next_log_id: u64,
}

/// Account settings (UpdateAccountSettings).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub billing_commitment_enabled_ms: Option<i64>,
    pub billing_commitment_ended_ms: Option<i64>,
}

/// The durable metadata store: the typed documents (streams, counters, settings) over a
/// [`Catalog`]. It remembers the version of every document it read or wrote and commits
/// against it, so a change made by another writer meanwhile fails (`Conflict`) instead of being
/// overwritten.
pub struct MetaStore {
    catalog: AnyCatalog,
    path: String,
    /// Held across each commit, so that expectations and versions move together.
    versions: Mutex<HashMap<(&'static str, String), Version>>,
}

/// What `MetaStore::open` found.
pub struct Loaded {
    pub streams: Vec<StreamMeta>,
    pub counters: Counters,
    pub settings: AccountSettings,
    pub token_key: [u8; 32],
}

impl MetaStore {
    /// The local store, `meta.redb` at `path`.
    pub fn open(path: &Path) -> Result<(MetaStore, Loaded), MetaError> {
        let catalog = RedbCatalog::open(path, &[STREAMS_TABLE, ACCOUNT_TABLE])?;
        MetaStore::open_catalog(AnyCatalog::Local(catalog))
    }

    /// Loads the metadata from `catalog`, initializing a new one.
    pub fn open_catalog(catalog: AnyCatalog) -> Result<(MetaStore, Loaded), MetaError> {
        let path = catalog.describe().to_string();
        let store = MetaStore { catalog, path, versions: Mutex::new(HashMap::new()) };
        let loaded = store.load_or_init()?;
        Ok((store, loaded))
    }

    /// [`MetaStore::open`] on another redb storage backend than a file (the crash simulation's
    /// `SimStorage`, in `tests/meta_crash.rs`); `label` names the store in errors.
    pub fn open_on_backend(
        backend: impl redb::StorageBackend,
        label: &str,
    ) -> Result<(MetaStore, Loaded), MetaError> {
        let catalog = RedbCatalog::open_on_backend(backend, label, &[STREAMS_TABLE, ACCOUNT_TABLE])?;
        MetaStore::open_catalog(AnyCatalog::Local(catalog))
    }

    fn load_or_init(&self) -> Result<Loaded, MetaError> {
        let snapshot = wait(self.catalog.snapshot())?;
        let account = |key: &str| snapshot.get(ACCOUNT_TABLE, key).map(|d| d.value.as_slice());
        let mut init: Vec<(&'static str, Vec<u8>)> = Vec::new();
        match account(KEY_FORMAT_VERSION) {
            Some(v) => {
                let found: u32 = decode(&self.path, KEY_FORMAT_VERSION, v)?;
                if found > META_FORMAT_VERSION {
                    return Err(MetaError::TooNew {
                        path: self.path.clone(),
                        found,
                        supported: META_FORMAT_VERSION,
                    });
                }
            }
            None => init.push((KEY_FORMAT_VERSION, self.encode(KEY_FORMAT_VERSION, &META_FORMAT_VERSION)?)),
        }
        let token_key = match account(KEY_TOKEN_KEY) {
            Some(bytes) => <[u8; 32]>::try_from(bytes).map_err(|_| MetaError::Corrupt {
                path: self.path.clone(),
                key: KEY_TOKEN_KEY.into(),
                why: format!("expected 32 bytes, found {}", bytes.len()),
            })?,
            None => {
                let key: [u8; 32] = rand::random();
                init.push((KEY_TOKEN_KEY, key.to_vec()));
                key
            }
        };
        let stored_counters: Option<Counters> = match account(KEY_COUNTERS) {
            Some(v) => Some(decode(&self.path, KEY_COUNTERS, v)?),
            None => None,
        };
        let counters = stored_counters.clone().unwrap_or(Counters { next_incarnation: 1, next_log_id: 1 });
        let settings = match account(KEY_SETTINGS) {
            Some(v) => decode(&self.path, KEY_SETTINGS, v)?,
            None => AccountSettings::default(),
        };
        let mut streams = Vec::new();
        for doc in snapshot.table(STREAMS_TABLE) {
            let stream = decode::<StreamMeta>(&self.path, &doc.key, &doc.value)?;
            check_stream(&doc.key, &stream).map_err(|why| MetaError::Corrupt {
                path: self.path.clone(),
                key: doc.key.clone(),
                why,
            })?;
            streams.push(stream);
        }
        check_ids(&streams, stored_counters.as_ref()).map_err(|(key, why)| MetaError::Corrupt {
            path: self.path.clone(),
            key,
            why,
        })?;
        let mut versions = self.versions.lock();
        for doc in &snapshot.docs {
            let table = match doc.table.as_str() {
                STREAMS_TABLE => STREAMS_TABLE,
                ACCOUNT_TABLE => ACCOUNT_TABLE,
                _ => continue,
            };
            versions.insert((table, doc.key.clone()), doc.version);
        }
        if !init.is_empty() {
            let writes: Vec<Write<'_>> = init
                .iter()
                .map(|(key, value)| Write::put(ACCOUNT_TABLE, key, Expect::Absent, value))
                .collect();
            let version = wait(self.catalog.commit(&writes))?;
            for (key, _) in &init {
                versions.insert((ACCOUNT_TABLE, key.to_string()), version);
            }
        }
        Ok(Loaded { streams, counters, settings, token_key })
    }

    /// Applies one change atomically and durably.
    pub fn commit(&self, change: &Change<'_>) -> Result<(), MetaError> {
        let mut encoded: Vec<(&'static str, &str, Option<Vec<u8>>)> = Vec::new();
        for s in change.put_streams {
            encoded.push((STREAMS_TABLE, &s.name, Some(self.encode(&s.name, s)?)));
        }
        for name in change.remove_streams {
            encoded.push((STREAMS_TABLE, name, None));
        }
        if let Some(c) = change.counters {
            encoded.push((ACCOUNT_TABLE, KEY_COUNTERS, Some(self.encode(KEY_COUNTERS, c)?)));
        }
        if let Some(s) = change.settings {
            encoded.push((ACCOUNT_TABLE, KEY_SETTINGS, Some(self.encode(KEY_SETTINGS, s)?)));
        }
        let mut versions = self.versions.lock();
        let writes: Vec<Write<'_>> = encoded
            .iter()
            .map(|(table, key, value)| Write {
                table,
                key,
                expect: versions
                    .get(&(*table, key.to_string()))
                    .map_or(Expect::Absent, |v| Expect::Version(*v)),
                value: value.as_deref(),
            })
            .collect();
        let version = wait(self.catalog.commit(&writes))?;
        for (table, key, value) in &encoded {
            if value.is_some() {
                versions.insert((table, key.to_string()), version);
            } else {
                versions.remove(&(*table, key.to_string()));
            }
        }
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
    /// A JSON object (a stream document, `counters`, `settings`) gets its version
    /// ([`DOC_VERSION_FIELD`]).
    fn encode<T: Serialize>(&self, key: &str, v: &T) -> Result<Vec<u8>, MetaError> {
        let fail = |err: serde_json::Error| MetaError::Encode {
            path: self.path.clone(),
            key: key.to_string(),
            why: err.to_string(),
        };
        let mut value = serde_json::to_value(v).map_err(fail)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(DOC_VERSION_FIELD.to_string(), DOC_FORMAT_VERSION.into());
        }
        serde_json::to_vec(&value).map_err(fail)
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

/// A document parsed strictly: valid JSON of its type, no unknown member, and a version this
/// kinesin reads (absent: version 1, written before documents carried their version).
fn decode<T: for<'de> Deserialize<'de>>(path: &str, key: &str, bytes: &[u8]) -> Result<T, MetaError> {
    let corrupt = |why: String| MetaError::Corrupt { path: path.to_string(), key: key.to_string(), why };
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| corrupt(err.to_string()))?;
    if let serde_json::Value::Object(map) = &mut value {
        if let Some(version) = map.remove(DOC_VERSION_FIELD) {
            match version.as_u64() {
                Some(found) if found > DOC_FORMAT_VERSION => {
                    return Err(MetaError::DocumentTooNew {
                        path: path.to_string(),
                        key: key.to_string(),
                        found,
                        supported: DOC_FORMAT_VERSION,
                    })
                }
                Some(found) if found >= 1 => {}
                _ => return Err(corrupt(format!("{DOC_VERSION_FIELD} {version} is not a format version"))),
            }
        }
    }
    serde_json::from_value(value).map_err(|err| corrupt(err.to_string()))
}

/// What the document's types cannot say: every shard's hash keys parse, as a range. Fills the
/// shards' parsed ranges on the way.
fn check_stream(key: &str, stream: &StreamMeta) -> Result<(), String> {
    if stream.name != key {
        return Err(format!("the document names stream {:?} but is stored under {key:?}", stream.name));
    }
    // Lookups binary-search the shards by index.
    for pair in stream.shards.windows(2) {
        if pair[0].index >= pair[1].index {
            return Err(format!(
                "shard {} is listed after shard {}: shards must be in index order",
                pair[1].id(),
                pair[0].id()
            ));
        }
    }
    let mut log_ids = BTreeSet::new();
    for shard in &stream.shards {
        for (what, parent) in [("parent", shard.parent), ("adjacent_parent", shard.adjacent_parent)] {
            if let Some(p) = parent {
                if p >= shard.index || stream.shard(p).is_none() {
                    return Err(format!(
                        "shard {}: {what} {} is not an older shard of the stream",
                        shard.id(),
                        ShardId(p)
                    ));
                }
            }
        }
        if !log_ids.insert(shard.log_id) {
            return Err(format!(
                "shard {}: log_id {} is used by another shard too",
                shard.id(),
                shard.log_id
            ));
        }
        let range = shard.parse_range()?;
        let _ = shard.range_cache.set(range);
    }
    for step in &stream.pending_reshard {
        if let PendingStep::Split { shard, at } = step {
            HashKey::parse(at)
                .map_err(|e| format!("pending split of {}: hash key {at:?}: {e}", ShardId(*shard)))?;
        }
    }
    let mut generation = 0;
    for key in &stream.encryption.data_keys {
        if key.generation <= generation {
            return Err(format!(
                "data key generation {} follows generation {generation}: generations must go up from 1",
                key.generation
            ));
        }
        generation = key.generation;
        crate::kms::decode_wrapped(&key.wrapped)
            .map_err(|why| format!("the wrapped data key of generation {generation} is damaged: {why}"))?;
    }
    if stream.encryption_key_id.is_some() && stream.encryption.data_keys.is_empty() {
        return Err("encryption is on (encryption_key_id) but the stream has no data key".into());
    }
    let mut consumers = BTreeSet::new();
    for c in &stream.consumers {
        if !consumers.insert(c.name.as_str()) {
            return Err(format!("consumer {:?} is listed twice", c.name));
        }
    }
    Ok(())
}

/// What no single document can check: incarnations and log ids are unique across streams and
/// below the counters that hand out the next ones (else a new stream or shard would reuse them).
/// On error: the document (key) and what is wrong.
fn check_ids(streams: &[StreamMeta], counters: Option<&Counters>) -> Result<(), (String, String)> {
    let mut incarnations = BTreeMap::new();
    let mut log_ids = BTreeMap::new();
    for s in streams {
        if let Some(other) = incarnations.insert(s.incarnation, s.name.as_str()) {
            return Err((
                s.name.clone(),
                format!("incarnation {} is also stream {other:?}'s", s.incarnation),
            ));
        }
        for sh in &s.shards {
            if let Some(other) = log_ids.insert(sh.log_id, s.name.as_str()) {
                if other != s.name {
                    return Err((
                        s.name.clone(),
                        format!("shard {}: log_id {} is also used by stream {other:?}", sh.id(), sh.log_id),
                    ));
                }
            }
        }
    }
    let Some(counters) = counters else {
        return match streams.first() {
            Some(_) => Err((KEY_COUNTERS.into(), "missing, but streams exist".into())),
            None => Ok(()),
        };
    };
    if let Some((&incarnation, name)) = incarnations.last_key_value() {
        if incarnation >= counters.next_incarnation {
            return Err((
                KEY_COUNTERS.into(),
                format!(
                    "next_incarnation {} is not above stream {name:?}'s incarnation {incarnation}",
                    counters.next_incarnation
                ),
            ));
        }
    }
    if let Some((&log_id, name)) = log_ids.last_key_value() {
        if log_id >= counters.next_log_id {
            return Err((
                KEY_COUNTERS.into(),
                format!(
                    "next_log_id {} is not above log_id {log_id} of stream {name:?}",
                    counters.next_log_id
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableTable, TableDefinition};

    const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
    const ACCOUNT: TableDefinition<&str, &[u8]> = TableDefinition::new("account");

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
        let counters = Counters { next_incarnation: 100, next_log_id: 100 };
        tx.open_table(ACCOUNT)
            .unwrap()
            .insert(KEY_COUNTERS, serde_json::to_vec(&counters).unwrap().as_slice())
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

    /// A `meta.redb` as the code before the storage traits wrote it (format version 1: redb
    /// tables `streams` and `account`, JSON documents; written here with redb the way that code
    /// did) opens with everything in it, and what the store writes now reads back the old way.
    #[test]
    fn a_meta_redb_of_the_previous_code_opens_and_keeps_its_layout() {
        use redb::TableHandle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let orders = stream(&halves());
        let token = [9u8; 32];
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut account = tx.open_table(ACCOUNT).unwrap();
                let mut streams = tx.open_table(STREAMS).unwrap();
                account.insert("format_version", b"1".as_slice()).unwrap();
                account.insert("token_key", token.as_slice()).unwrap();
                account.insert("counters", br#"{"next_incarnation":5,"next_log_id":9}"#.as_slice()).unwrap();
                account
                    .insert(
                        "settings",
                        br#"{"billing_commitment_enabled_ms":123,"billing_commitment_ended_ms":null}"#
                            .as_slice(),
                    )
                    .unwrap();
                streams.insert("orders", serde_json::to_vec(&orders).unwrap().as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let (store, loaded) = MetaStore::open(&path).unwrap();
        assert_eq!(loaded.token_key, token);
        assert_eq!((loaded.counters.next_incarnation, loaded.counters.next_log_id), (5, 9));
        assert_eq!(loaded.settings.billing_commitment_enabled_ms, Some(123));
        assert_eq!(loaded.streams.len(), 1);
        assert_eq!(serde_json::to_vec(&loaded.streams[0]).unwrap(), serde_json::to_vec(&orders).unwrap());

        let mut next = loaded.streams[0].clone();
        next.retention_hours = 48;
        let other = StreamMeta::for_test("other", Vec::new());
        let counters = Counters { next_incarnation: 6, next_log_id: 10 };
        store
            .commit(&Change {
                put_streams: &[&next, &other],
                counters: Some(&counters),
                ..Default::default()
            })
            .unwrap();
        store.commit(&Change { remove_streams: &["other"], ..Default::default() }).unwrap();
        drop(store);

        let db = Database::create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let mut tables: Vec<String> = tx.list_tables().unwrap().map(|t| t.name().to_string()).collect();
        tables.sort();
        assert_eq!(tables, ["account", "streams"]);
        let streams = tx.open_table(STREAMS).unwrap();
        let keys: Vec<String> = streams.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect();
        assert_eq!(keys, ["orders"]);
        // The same document, now carrying its format version (docs/format.md).
        let mut stored: serde_json::Value =
            serde_json::from_slice(streams.get("orders").unwrap().unwrap().value()).unwrap();
        assert_eq!(stored.as_object_mut().unwrap().remove("format_version"), Some(serde_json::json!(1)));
        assert_eq!(stored, serde_json::to_value(&next).unwrap());
        let account = tx.open_table(ACCOUNT).unwrap();
        let value = |key: &str| account.get(key).unwrap().unwrap().value().to_vec();
        assert_eq!(value("format_version"), b"1");
        assert_eq!(value("token_key"), token);
        let mut stored: serde_json::Value = serde_json::from_slice(&value("counters")).unwrap();
        stored.as_object_mut().unwrap().remove("format_version");
        assert_eq!(stored, serde_json::to_value(&counters).unwrap());
        assert_eq!(
            value("settings"),
            br#"{"billing_commitment_enabled_ms":123,"billing_commitment_ended_ms":null}"#
        );
    }

    /// A new store has the two tables, its format version and a token key, as before.
    #[test]
    fn a_new_meta_redb_has_the_previous_layout() {
        use redb::TableHandle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let (_, loaded) = MetaStore::open(&path).unwrap();
        drop(MetaStore::open(&path).unwrap());
        let db = Database::create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let mut tables: Vec<String> = tx.list_tables().unwrap().map(|t| t.name().to_string()).collect();
        tables.sort();
        assert_eq!(tables, ["account", "streams"]);
        let account = tx.open_table(ACCOUNT).unwrap();
        let keys: Vec<String> = account.iter().unwrap().map(|e| e.unwrap().0.value().to_string()).collect();
        assert_eq!(keys, ["format_version", "token_key"]);
        assert_eq!(account.get("token_key").unwrap().unwrap().value(), loaded.token_key);
        assert_eq!(account.get("format_version").unwrap().unwrap().value(), b"1");
    }
}
