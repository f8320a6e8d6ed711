//! The contract of the two traits, one generic suite run against every implementation.

use std::time::Duration;

use bytes::Bytes;
use kinesin_log::{BatchKey, LogConfig, LogId, RecordIn};

use crate::local::{LocalShardLog, RedbCatalog};
use crate::memory::{MemoryCatalog, MemoryShardLog};
use crate::{
    AnyCatalog, AnyShardLog, Catalog, CatalogError, Expect, KeySet, ReadRequest, ShardLog, ShardLogError,
    Write,
};

const WAIT: Duration = Duration::from_secs(10);

fn records(n: usize, size: usize) -> Vec<RecordIn> {
    (0..n)
        .map(|i| RecordIn {
            partition_key: Bytes::from(format!("pk{i}")),
            data: Bytes::from(vec![i as u8; size]),
        })
        .collect()
}

fn all(from: u64) -> ReadRequest {
    ReadRequest { from, not_before_ms: i64::MIN, max_records: 10_000, max_bytes: 10 << 20 }
}

async fn append_and_read<L: ShardLog>(log: &L) {
    let id = LogId(1);
    let epoch = log.create(&[(id, 1)]).await.unwrap()[0];
    assert!(matches!(log.create(&[(id, 1)]).await, Err(ShardLogError::AlreadyExists(_))));
    assert_eq!(log.tip(id).await.unwrap(), 1);
    let out = log.append(id, epoch, 1_000, records(3, 10), None).await.unwrap();
    assert_eq!((out.first_seq_index, out.arrival_ms), (1, 1_000));
    let out = log.append(id, epoch, 2_000, records(2, 10), None).await.unwrap();
    assert_eq!(out.first_seq_index, 4);
    assert_eq!(log.tip(id).await.unwrap(), 6);
    assert!(matches!(log.append(id, epoch, 2_000, Vec::new(), None).await, Err(ShardLogError::Invalid(_))));

    let read = log.read(id, all(0), KeySet::default()).await.unwrap();
    let seqs: Vec<u64> = read.records.iter().map(|r| r.seq_index).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!((read.next_seq_index, read.tip, read.newest_arrival_ms), (6, 6, Some(2_000)));
    assert_eq!(read.records[3].partition_key, Bytes::from("pk0"));
    assert_eq!(read.records[4].data, Bytes::from(vec![1u8; 10]));
    assert!(read.records.iter().all(|r| !r.encrypted));

    // From a position, with a record limit, with a byte limit (at least one record).
    let read = log.read(id, ReadRequest { max_records: 2, ..all(2) }, KeySet::default()).await.unwrap();
    assert_eq!(read.records.iter().map(|r| r.seq_index).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(read.next_seq_index, 4);
    let read = log.read(id, ReadRequest { max_bytes: 1, ..all(0) }, KeySet::default()).await.unwrap();
    assert_eq!(read.records.len(), 1);
    let read = log.read(id, ReadRequest { max_bytes: 38, ..all(0) }, KeySet::default()).await.unwrap();
    assert_eq!(read.records.len(), 2, "13 bytes each: the third would pass 38");

    // From a time: by seek, or by the time floor of a read.
    assert_eq!(log.seek_time(id, 1_500).await.unwrap(), 4);
    assert_eq!(log.seek_time(id, 9_000).await.unwrap(), 6);
    let read = log.read(id, ReadRequest { not_before_ms: 1_500, ..all(0) }, KeySet::default()).await.unwrap();
    assert_eq!((read.start, read.records.len()), (4, 2));

    assert_eq!(log.ids().await.unwrap(), [id]);
    log.delete(id).await.unwrap();
    assert!(matches!(log.tip(id).await, Err(ShardLogError::NotFound(_))));
    assert!(matches!(
        log.append(id, epoch, 3_000, records(1, 1), None).await,
        Err(ShardLogError::NotFound(_))
    ));
    assert!(log.ids().await.unwrap().is_empty());
}

async fn epochs_fence_and_seal_ends<L: ShardLog>(log: &L) {
    let id = LogId(7);
    let first = log.create(&[(id, 1)]).await.unwrap()[0];
    log.append(id, first, 1_000, records(1, 1), None).await.unwrap();
    let second = log.acquire(id).await.unwrap();
    assert!(second > first);
    let fenced = log.append(id, first, 1_000, records(1, 1), None).await.unwrap_err();
    assert!(
        matches!(fenced, ShardLogError::Fenced { held, current, .. } if held == first && current == second),
        "{fenced:?}"
    );
    assert!(matches!(log.seal(id, first).await, Err(ShardLogError::Fenced { .. })));
    log.append(id, second, 1_000, records(2, 1), None).await.unwrap();
    assert_eq!(log.tip(id).await.unwrap(), 4);

    assert_eq!(log.seal(id, second).await.unwrap(), 4);
    assert_eq!(log.seal(id, second).await.unwrap(), 4, "sealing again answers the same end");
    let sealed = log.append(id, second, 1_000, records(1, 1), None).await.unwrap_err();
    assert!(matches!(sealed, ShardLogError::Sealed { end: 4, .. }), "{sealed:?}");
    // A new owner finds it sealed too; reads go on.
    let third = log.acquire(id).await.unwrap();
    assert!(matches!(
        log.append(id, third, 1_000, records(1, 1), None).await,
        Err(ShardLogError::Sealed { .. })
    ));
    assert_eq!(log.read(id, all(0), KeySet::default()).await.unwrap().records.len(), 3);
}

async fn trims_by_time<L: ShardLog>(log: &L) {
    let id = LogId(3);
    let epoch = log.create(&[(id, 1)]).await.unwrap()[0];
    log.append(id, epoch, 1_000, records(2, 100), None).await.unwrap();
    log.append(id, epoch, 2_000, records(2, 100), None).await.unwrap();
    assert_eq!(log.trim_before(id, 500).await.unwrap(), 0, "nothing is older");
    let freed = log.trim_before(id, 10_000).await.unwrap();
    assert!(freed >= 400, "freed {freed}");
    let read = log.read(id, all(0), KeySet::default()).await.unwrap();
    assert!(read.records.is_empty());
    assert_eq!((read.next_seq_index, read.tip), (5, 5));
    // The log goes on at the tip.
    assert_eq!(log.append(id, epoch, 20_000, records(1, 1), None).await.unwrap().first_seq_index, 5);
    assert_eq!(log.read(id, all(0), KeySet::default()).await.unwrap().records[0].seq_index, 5);
}

async fn watch_follows_the_tip<L: ShardLog>(log: &L) {
    let id = LogId(9);
    let epoch = log.create(&[(id, 1)]).await.unwrap()[0];
    let mut watch = log.watch(id).unwrap();
    assert_eq!(watch.seen(), 1);
    let waiter = tokio::time::timeout(WAIT, watch.changed());
    let (changed, appended) = tokio::join!(waiter, log.append(id, epoch, 1_000, records(2, 1), None));
    appended.unwrap();
    assert!(changed.unwrap());
    assert_eq!(watch.seen(), 3);
    // A seal wakes it; a delete ends it.
    let (changed, sealed) = tokio::join!(tokio::time::timeout(WAIT, watch.changed()), log.seal(id, epoch));
    assert_eq!(sealed.unwrap(), 3);
    assert!(changed.unwrap());
    watch.seen();
    let (changed, deleted) = tokio::join!(tokio::time::timeout(WAIT, watch.changed()), log.delete(id));
    deleted.unwrap();
    assert!(!changed.unwrap(), "the log is gone");
    assert!(matches!(log.watch(id), Err(ShardLogError::NotFound(_))));
}

async fn encrypted_batches_need_their_key<L: ShardLog>(log: &L) {
    let id = LogId(11);
    let epoch = log.create(&[(id, 1)]).await.unwrap()[0];
    let key = BatchKey::new(3, &[7u8; 32]);
    log.append(id, epoch, 1_000, records(2, 5), Some(&key)).await.unwrap();
    let missing = log.read(id, all(0), KeySet::default()).await.unwrap_err();
    assert!(matches!(missing, ShardLogError::KeyUnavailable { generation: 3, .. }), "{missing:?}");
    let read = log.read(id, all(0), KeySet::new(vec![key])).await.unwrap();
    assert_eq!(read.records.len(), 2);
    assert!(read.records.iter().all(|r| r.encrypted));
    assert_eq!(read.records[1].data, Bytes::from(vec![1u8; 5]));
}

async fn shard_log_contract(make: impl Fn() -> (AnyShardLog, Option<tempfile::TempDir>)) {
    let (log, _dir) = make();
    append_and_read(&log).await;
    epochs_fence_and_seal_ends(&log).await;
    trims_by_time(&log).await;
    watch_follows_the_tip(&log).await;
    encrypted_batches_need_their_key(&log).await;
    log.shutdown();
}

fn local_log() -> (AnyShardLog, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    let log = LocalShardLog::open(LogConfig::new(dir.path().join("log"))).unwrap();
    (AnyShardLog::Local(log), Some(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_shard_log_keeps_the_contract() {
    shard_log_contract(local_log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_shard_log_keeps_the_contract() {
    shard_log_contract(|| (AnyShardLog::Memory(MemoryShardLog::new()), None)).await;
}

async fn catalog_contract(catalog: &AnyCatalog) {
    let start = catalog.snapshot().await.unwrap();
    assert!(start.docs.is_empty(), "{:?}", start.docs);
    let mut feed = catalog.changes();
    let seen = feed.seq();

    // Compare-and-set.
    let v1 = catalog.commit(&[Write::put("streams", "a", Expect::Absent, b"one")]).await.unwrap();
    assert!(v1 > seen);
    let doc = catalog.get("streams", "a").await.unwrap().unwrap();
    assert_eq!((doc.version, doc.value.as_slice()), (v1, &b"one"[..]));
    let taken = catalog.commit(&[Write::put("streams", "a", Expect::Absent, b"two")]).await.unwrap_err();
    assert!(
        matches!(&taken, CatalogError::Conflict { key, found: Some(v), .. } if key == "a" && *v == v1),
        "{taken:?}"
    );
    let v2 = catalog.commit(&[Write::put("streams", "a", Expect::Version(v1), b"two")]).await.unwrap();
    assert!(v2 > v1);
    // All or nothing: one stale write fails the whole set.
    let stale = catalog
        .commit(&[
            Write::put("streams", "b", Expect::Absent, b"b"),
            Write::put("streams", "a", Expect::Version(v1), b"three"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(stale, CatalogError::Conflict { .. }));
    assert!(catalog.get("streams", "b").await.unwrap().is_none());
    assert_eq!(catalog.get("streams", "a").await.unwrap().unwrap().value, b"two");
    let v3 = catalog
        .commit(&[
            Write::put("streams", "b", Expect::Absent, b"b"),
            Write::put("account", "settings", Expect::Any, b"{}"),
        ])
        .await
        .unwrap();
    let snap = catalog.snapshot().await.unwrap();
    assert_eq!(snap.seq, v3);
    let listed: Vec<(&str, &str, u64)> =
        snap.docs.iter().map(|d| (d.table.as_str(), d.key.as_str(), d.version)).collect();
    assert_eq!(listed, [("account", "settings", v3), ("streams", "a", v2), ("streams", "b", v3)]);
    assert!(matches!(
        catalog.commit(&[Write::remove("streams", "a", Expect::Version(v1))]).await,
        Err(CatalogError::Conflict { .. })
    ));
    catalog.commit(&[Write::remove("streams", "a", Expect::Version(v2))]).await.unwrap();
    assert!(catalog.get("streams", "a").await.unwrap().is_none());
    assert_eq!(catalog.snapshot().await.unwrap().table("streams").count(), 1);

    // Counters never repeat.
    assert_eq!(catalog.next_ids("log_id", 3).await.unwrap(), 1);
    assert_eq!(catalog.next_ids("log_id", 1).await.unwrap(), 4);
    assert_eq!(catalog.next_ids("incarnation", 1).await.unwrap(), 1);
    assert_eq!(catalog.next_ids("log_id", 2).await.unwrap(), 5);

    // The change feed moves with every commit; a waiter wakes.
    let now = feed.seq();
    assert!(now > seen);
    let writes = [Write::put("streams", "c", Expect::Absent, b"c")];
    let (woke, committed) =
        tokio::join!(tokio::time::timeout(WAIT, feed.wait_past(now)), catalog.commit(&writes));
    assert_eq!(woke.unwrap(), Some(committed.unwrap()));
}

#[tokio::test]
async fn the_redb_catalog_keeps_the_contract_and_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.redb");
    {
        let catalog = AnyCatalog::Local(RedbCatalog::open(&path, &["streams", "account"]).unwrap());
        catalog_contract(&catalog).await;
    }
    let reopened = RedbCatalog::open(&path, &["streams", "account"]).unwrap();
    let snap = reopened.snapshot().await.unwrap();
    let keys: Vec<&str> = snap.docs.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["counters", "settings", "b", "c"]);
    let counters: serde_json::Value =
        serde_json::from_slice(&snap.get("account", "counters").unwrap().value).unwrap();
    assert_eq!(counters, serde_json::json!({"next_log_id": 7, "next_incarnation": 2}));
    // Versions restart with the process, and compare-and-set goes on against them.
    let v = snap.get("streams", "b").unwrap().version;
    reopened.commit(&[Write::put("streams", "b", Expect::Version(v), b"b2")]).await.unwrap();
}

#[tokio::test]
async fn the_memory_catalog_keeps_the_contract() {
    catalog_contract(&AnyCatalog::Memory(MemoryCatalog::new())).await;
}
