//! A seeded simulation of the whole service on a manual clock: random PutRecord and PutRecords
//! (random partition and explicit hash keys), reads of random shards, SplitShard and
//! MergeShards of random open shards, clock steps, and restarts of the service on the same data
//! directory. After every restart and at the end, every shard is read from TRIM_HORIZON and
//! checked against what was acknowledged:
//! - no acknowledged record lost: each is in the shard, at the sequence number, its put said;
//! - none served twice: each record is in one shard, once;
//! - order per shard kept: a shard serves its records in increasing sequence numbers, in the
//!   order they were acknowledged;
//! - lineage intact: every parent a shard names exists and is closed, a split's children cover
//!   exactly their parent's hash keys, a merge's child exactly its two parents', the open shards
//!   cover the hash key space once, and every record's hash key is in its shard's range.
//!
//! The operations come from the seed alone and the clock is manual, so a seed replays: the
//! digest of every answer (sequence numbers, shard ids, records read; not the iterators, which
//! are sealed with a per-data-dir random key) is the same on every run, which
//! `a_seed_replays_the_same_answers` checks.
//!
//! Restarts here are clean (`shutdown`, then open again), on a real temporary directory: every
//! acknowledgement follows an fsync, so a killed process loses nothing a clean stop keeps. Power
//! cuts in the middle of a metadata commit or a log append are simulated below the service, in
//! `meta_crash.rs` and `kinesin-log`'s `log_simulation.rs` / `log_crash.rs`; the service itself
//! runs on simulated storage once its storage is behind the catalog and shard-log traits.
//!
//! Replay one seed with `KINESIN_SERVICE_SIM_SEED=<seed>`; more seeds with
//! `KINESIN_SERVICE_SIM_SEEDS=<count>` (default 6), longer runs with
//! `KINESIN_SERVICE_SIM_STEPS=<steps>` (default 150).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::error::ApiError;
use kinesin_wire::model::model;

const T0: i64 = 1_790_000_000_000;
const STREAM: &str = "sim";
const HASH_MAX: u128 = u128::MAX;

/// The one way into the service: an operation by name with its JSON input, as a client sends
/// it, and the JSON output. (When the service's entry point changes, only this changes.)
async fn call(svc: &std::sync::Arc<Service>, op: &str, mut body: Value) -> Result<Value, ApiError> {
    model().check_input(op, &mut body)?;
    let op = kinesin_wire::operation::Op::from_name(op).expect("an operation of the model");
    let request = kinesin_wire::request::Request::from_value(op, body)?;
    let kinesin_service::Response::Output(out) = svc.handle(request).await? else {
        panic!("{op} answered an event stream")
    };
    let bytes = out.to_json().unwrap_or_else(|e| panic!("{op}: output does not encode: {e:?}"));
    Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("output JSON") })
}

fn open(dir: &std::path::Path, clock: &Clock) -> std::sync::Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.create_stream_ms = 0;
    cfg.delete_stream_ms = 0;
    cfg.update_stream_ms = 0;
    cfg.limits.enabled = false;
    std::sync::Arc::new(Service::open(cfg, clock.clone()).expect("open the service"))
}

fn b64(data: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(data: &Value) -> String {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("Data")).expect("base64");
    String::from_utf8(bytes).expect("utf8")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_string()
}

fn number(value: &Value) -> u128 {
    text(value).parse().unwrap_or_else(|_| panic!("not a decimal number: {value}"))
}

/// A sequence number (a decimal of up to 56 digits, beyond u128), ordered as a number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Seq(usize, String);

fn sequence(value: &Value) -> Seq {
    let digits = text(value);
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        "not a sequence number: {value}"
    );
    Seq(digits.len(), digits)
}

/// An acknowledged record.
#[derive(Debug, Clone)]
struct Acked {
    shard: String,
    sequence: Seq,
    hash_key: u128,
}

/// A shard as ListShards shows it.
#[derive(Debug, Clone)]
struct ShardView {
    id: String,
    parent: Option<String>,
    adjacent: Option<String>,
    start: u128,
    end: u128,
    open: bool,
}

struct Sim {
    rng: StdRng,
    clock: Clock,
    dir: tempfile::TempDir,
    svc: Option<std::sync::Arc<Service>>,
    /// Data → where its put said it is.
    acked: BTreeMap<String, Acked>,
    /// Puts made so far (names the data).
    puts: u64,
    /// A digest of every answer that must replay (not iterators).
    digest: std::collections::hash_map::DefaultHasher,
    restarts: u32,
    splits: u32,
    merges: u32,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let clock = Clock::manual(T0);
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = open(dir.path(), &clock);
        Sim {
            rng: StdRng::seed_from_u64(seed),
            clock,
            dir,
            svc: Some(svc),
            acked: BTreeMap::new(),
            puts: 0,
            digest: std::collections::hash_map::DefaultHasher::new(),
            restarts: 0,
            splits: 0,
            merges: 0,
        }
    }

    fn svc(&self) -> &std::sync::Arc<Service> {
        self.svc.as_ref().expect("service open")
    }

    async fn shards(&mut self) -> Vec<ShardView> {
        let out = call(self.svc(), "ListShards", json!({"StreamName": STREAM})).await.expect("ListShards");
        let shards: Vec<ShardView> = out["Shards"]
            .as_array()
            .expect("Shards")
            .iter()
            .map(|s| ShardView {
                id: text(&s["ShardId"]),
                parent: s["ParentShardId"].as_str().map(str::to_string),
                adjacent: s["AdjacentParentShardId"].as_str().map(str::to_string),
                start: number(&s["HashKeyRange"]["StartingHashKey"]),
                end: number(&s["HashKeyRange"]["EndingHashKey"]),
                open: s["SequenceNumberRange"]["EndingSequenceNumber"].is_null(),
            })
            .collect();
        format!("{shards:?}").hash(&mut self.digest);
        shards
    }

    fn hash_key(&mut self) -> u128 {
        // Often at the edges of the space, where off-by-one errors live.
        match self.rng.gen_range(0..8) {
            0 => 0,
            1 => HASH_MAX,
            _ => self.rng.gen(),
        }
    }

    async fn put_record(&mut self) {
        let data = format!("r{}", self.puts);
        self.puts += 1;
        let hash_key = self.hash_key();
        let partition_key = format!("pk{}", self.rng.gen_range(0..50));
        let out = call(
            self.svc(),
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": partition_key,
                   "ExplicitHashKey": hash_key.to_string(), "Data": b64(&data)}),
        )
        .await
        .expect("PutRecord");
        let acked =
            Acked { shard: text(&out["ShardId"]), sequence: sequence(&out["SequenceNumber"]), hash_key };
        (&acked.shard, &acked.sequence).hash(&mut self.digest);
        self.acked.insert(data, acked);
    }

    async fn put_records(&mut self) {
        let count = self.rng.gen_range(1..20);
        let mut entries = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..count {
            let data = format!("r{}", self.puts);
            self.puts += 1;
            let hash_key = self.hash_key();
            entries.push(json!({"PartitionKey": format!("pk{}", self.rng.gen_range(0..50)),
                                "ExplicitHashKey": hash_key.to_string(), "Data": b64(&data)}));
            sent.push((data, hash_key));
        }
        let out = call(self.svc(), "PutRecords", json!({"StreamName": STREAM, "Records": entries}))
            .await
            .expect("PutRecords");
        let results = out["Records"].as_array().expect("Records");
        assert_eq!(results.len(), sent.len());
        for ((data, hash_key), result) in sent.into_iter().zip(results) {
            // Limits are off: every record is accepted.
            assert!(result["ErrorCode"].is_null(), "record {data} failed: {result}");
            let acked = Acked {
                shard: text(&result["ShardId"]),
                sequence: sequence(&result["SequenceNumber"]),
                hash_key,
            };
            (&acked.shard, &acked.sequence).hash(&mut self.digest);
            self.acked.insert(data, acked);
        }
    }

    /// A few records of a random shard from a random acknowledged position: they are the
    /// acknowledged records after it, in order.
    async fn read_some(&mut self) {
        let shards = self.shards().await;
        let shard = shards[self.rng.gen_range(0..shards.len())].id.clone();
        let mut mine: Vec<(&Seq, &String)> =
            self.acked.iter().filter(|(_, a)| a.shard == shard).map(|(d, a)| (&a.sequence, d)).collect();
        mine.sort();
        let expected: Vec<String>;
        let iterator_input = if mine.is_empty() || self.rng.gen_bool(0.3) {
            expected = mine.iter().map(|(_, d)| (*d).clone()).collect();
            json!({"StreamName": STREAM, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
        } else {
            let at = self.rng.gen_range(0..mine.len());
            expected = mine[at + 1..].iter().map(|(_, d)| (*d).clone()).collect();
            json!({"StreamName": STREAM, "ShardId": shard, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                   "StartingSequenceNumber": mine[at].0 .1})
        };
        let it = call(self.svc(), "GetShardIterator", iterator_input).await.expect("GetShardIterator");
        let limit = self.rng.gen_range(1..30);
        let out =
            call(self.svc(), "GetRecords", json!({"ShardIterator": it["ShardIterator"], "Limit": limit}))
                .await
                .expect("GetRecords");
        let got: Vec<String> =
            out["Records"].as_array().expect("Records").iter().map(|r| unb64(&r["Data"])).collect();
        got.hash(&mut self.digest);
        let want: Vec<String> = expected.into_iter().take(limit).collect();
        assert_eq!(got, want, "GetRecords of {shard}, limit {limit}");
    }

    async fn split(&mut self) {
        let shards = self.shards().await;
        let open: Vec<&ShardView> = shards.iter().filter(|s| s.open && s.end > s.start).collect();
        if open.is_empty() || shards.iter().filter(|s| s.open).count() >= 12 {
            return;
        }
        let shard = open[self.rng.gen_range(0..open.len())].clone();
        let at = self.rng.gen_range(shard.start + 1..=shard.end);
        call(
            self.svc(),
            "SplitShard",
            json!({"StreamName": STREAM, "ShardToSplit": shard.id, "NewStartingHashKey": at.to_string()}),
        )
        .await
        .unwrap_or_else(|e| panic!("SplitShard {} at {at}: {e:?}", shard.id));
        self.splits += 1;
    }

    async fn merge(&mut self) {
        let shards = self.shards().await;
        let mut open: Vec<&ShardView> = shards.iter().filter(|s| s.open).collect();
        open.sort_by_key(|s| s.start);
        let pairs: Vec<(String, String)> = open
            .windows(2)
            .filter(|w| w[0].end.checked_add(1) == Some(w[1].start))
            .map(|w| (w[0].id.clone(), w[1].id.clone()))
            .collect();
        if pairs.is_empty() {
            return;
        }
        // AWS takes the pair in order: the lower range first.
        let (a, b) = pairs[self.rng.gen_range(0..pairs.len())].clone();
        call(
            self.svc(),
            "MergeShards",
            json!({"StreamName": STREAM, "ShardToMerge": a, "AdjacentShardToMerge": b}),
        )
        .await
        .unwrap_or_else(|e| panic!("MergeShards {a} {b}: {e:?}"));
        self.merges += 1;
    }

    async fn restart(&mut self) {
        if let Some(svc) = self.svc.take() {
            svc.shutdown();
        }
        self.svc = Some(open(self.dir.path(), &self.clock));
        self.restarts += 1;
        self.check().await;
    }

    /// Every shard read whole, checked against the acknowledged records and the lineage.
    async fn check(&mut self) {
        let shards = self.shards().await;
        let by_id: HashMap<&str, &ShardView> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
        // Lineage.
        for shard in &shards {
            assert!(shard.start <= shard.end, "{}: empty hash key range", shard.id);
            let parents: Vec<&ShardView> = [&shard.parent, &shard.adjacent]
                .into_iter()
                .flatten()
                .map(|id| {
                    *by_id.get(id.as_str()).unwrap_or_else(|| panic!("{}: parent {id} missing", shard.id))
                })
                .collect();
            for parent in &parents {
                assert!(!parent.open, "{}: parent {} still open", shard.id, parent.id);
            }
            match parents.as_slice() {
                [] => {}
                [parent] => {
                    assert!(
                        parent.start <= shard.start && shard.end <= parent.end,
                        "{}: outside its parent {}",
                        shard.id,
                        parent.id
                    );
                    // The split's two children, together, are the parent.
                    let mut children: Vec<&ShardView> = shards
                        .iter()
                        .filter(|s| s.parent.as_deref() == Some(&parent.id) && s.adjacent.is_none())
                        .collect();
                    children.sort_by_key(|s| s.start);
                    assert_eq!(children.len(), 2, "{}: a split makes two children", parent.id);
                    assert!(
                        children[0].start == parent.start
                            && children[0].end.checked_add(1) == Some(children[1].start)
                            && children[1].end == parent.end,
                        "{}: children do not cover it exactly",
                        parent.id
                    );
                }
                [a, b] => {
                    let (low, high) = if a.start < b.start { (a, b) } else { (b, a) };
                    assert!(
                        low.end.checked_add(1) == Some(high.start)
                            && shard.start == low.start
                            && shard.end == high.end,
                        "{}: not the union of its parents {} and {}",
                        shard.id,
                        a.id,
                        b.id
                    );
                }
                _ => unreachable!(),
            }
        }
        let mut open: Vec<&ShardView> = shards.iter().filter(|s| s.open).collect();
        open.sort_by_key(|s| s.start);
        assert_eq!(open.first().map(|s| s.start), Some(0), "open shards start at 0");
        assert_eq!(open.last().map(|s| s.end), Some(HASH_MAX), "open shards end at the top");
        for pair in open.windows(2) {
            assert_eq!(pair[0].end.checked_add(1), Some(pair[1].start), "open shards overlap or leave a gap");
        }
        // Records.
        let mut served: HashMap<String, (String, Seq)> = HashMap::new();
        for shard in &shards {
            let records = self.read_shard(&shard.id).await;
            let mut last: Option<(Seq, u64)> = None;
            for (data, sequence) in records {
                let number: u64 = data[1..].parse().expect("record name");
                if let Some((last_sequence, last_number)) = &last {
                    assert!(&sequence > last_sequence, "{}: sequence numbers not increasing", shard.id);
                    assert!(number > *last_number, "{}: {data} served after r{last_number}", shard.id);
                }
                last = Some((sequence.clone(), number));
                let acked = self
                    .acked
                    .get(&data)
                    .unwrap_or_else(|| panic!("{}: {data} was never acknowledged", shard.id));
                assert!(
                    shard.start <= acked.hash_key && acked.hash_key <= shard.end,
                    "{}: {data}'s hash key is outside the shard",
                    shard.id
                );
                if let Some(before) = served.insert(data.clone(), (shard.id.clone(), sequence)) {
                    panic!("{data} served twice: by {} and by {}", before.0, shard.id);
                }
            }
        }
        for (data, acked) in &self.acked {
            assert_eq!(
                served.get(data),
                Some(&(acked.shard.clone(), acked.sequence.clone())),
                "acknowledged record {data} lost or moved"
            );
        }
    }

    /// All of one shard's records, from TRIM_HORIZON to its end (closed) or tip (open).
    async fn read_shard(&mut self, shard: &str) -> Vec<(String, Seq)> {
        let it = call(
            self.svc(),
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .expect("GetShardIterator");
        let mut it = it["ShardIterator"].clone();
        let mut records = Vec::new();
        loop {
            let out = call(self.svc(), "GetRecords", json!({"ShardIterator": it, "Limit": 1000}))
                .await
                .expect("GetRecords");
            let batch = out["Records"].as_array().expect("Records");
            for record in batch {
                records.push((unb64(&record["Data"]), sequence(&record["SequenceNumber"])));
            }
            if batch.is_empty() || out["NextShardIterator"].is_null() {
                break;
            }
            it = out["NextShardIterator"].clone();
        }
        records.hash(&mut self.digest);
        records
    }

    async fn step(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=34 => self.put_record().await,
            35..=54 => self.put_records().await,
            55..=69 => self.read_some().await,
            70..=77 => self.split().await,
            78..=85 => self.merge().await,
            86..=92 => {
                self.clock.advance(self.rng.gen_range(1..5_000));
                self.svc().tick();
            }
            93..=96 => self.restart().await,
            _ => self.check().await,
        }
    }
}

/// Runs one seed; returns the digest of its answers.
async fn run_seed(seed: u64, steps: usize) -> u64 {
    let mut sim = Sim::new(seed);
    let shard_count = sim.rng.gen_range(1..5);
    call(sim.svc(), "CreateStream", json!({"StreamName": STREAM, "ShardCount": shard_count}))
        .await
        .expect("CreateStream");
    for _ in 0..steps {
        sim.step().await;
    }
    sim.restart().await;
    assert!(sim.restarts > 0 && sim.puts > 0, "seed {seed} exercised nothing");
    if std::env::var("KINESIN_SERVICE_SIM_TRACE").is_ok() {
        eprintln!(
            "seed {seed}: {} puts, {} splits, {} merges, {} restarts",
            sim.puts, sim.splits, sim.merges, sim.restarts
        );
    }
    if let Some(svc) = sim.svc.take() {
        svc.shutdown();
    }
    sim.digest.finish()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| value.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

fn steps() -> usize {
    env_number("KINESIN_SERVICE_SIM_STEPS").unwrap_or(150) as usize
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

#[test]
fn random_puts_reads_splits_merges_and_restarts_keep_every_record() {
    let seeds: Vec<u64> = match env_number("KINESIN_SERVICE_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            (0..env_number("KINESIN_SERVICE_SIM_SEEDS").unwrap_or(6)).map(|i| 0x7365_7276_0000 + i).collect()
        }
    };
    let rt = runtime();
    for seed in seeds {
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run_seed(seed, steps()))));
        if let Err(panic) = result {
            eprintln!(
                "service simulation failed with seed {seed}; replay with KINESIN_SERVICE_SIM_SEED={seed}"
            );
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn a_seed_replays_the_same_answers() {
    let rt = runtime();
    let seed = 0x7265_706c_6179;
    let first = rt.block_on(run_seed(seed, 60));
    let second = rt.block_on(run_seed(seed, 60));
    assert_eq!(first, second, "seed {seed} did not replay");
    let other = rt.block_on(run_seed(seed + 1, 60));
    assert_ne!(first, other, "two seeds gave the same answers");
}
