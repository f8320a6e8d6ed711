//! Seeded randomized simulation of the log against a model: appends to several logs (alone and
//! concurrently), reads with random limits, trims, injected I/O errors, crashes with torn writes,
//! clean restarts, creates and deletes. After every step that can change what is stored, the
//! log is checked: no acknowledged record lost, none served twice, order and consecutive
//! indexes kept, a failed append never visible in the same run, trimming only below the
//! requested time.
//!
//! Two modes. Threaded: the log's writer thread groups appends as scheduling has it (what
//! production runs). Stepped ([`Log::open_stepped`]): the simulation runs the writer's rounds
//! itself and chooses from the seed how many queued appends each takes, and crashes keep
//! unsynced bytes as the seed says (torn tails, or any sectors of any unsynced write); nothing
//! depends on timing, so a seed replays bit for bit: the storage's trace (every operation with
//! its arguments and outcome, hashed) is the same on every run of the seed, which
//! `a_seed_replays_the_same_trace` checks.
//!
//! A failure prints its seed. Replay one seed with `KINESIN_LOG_SIM_SEED=<seed>` (add
//! `KINESIN_LOG_SIM_TRACE=1` to see each step); run more seeds with `KINESIN_LOG_SIM_SEEDS=<count>`
//! (default 40 threaded, 200 stepped) and longer runs with `KINESIN_LOG_SIM_STEPS=<steps>`
//! (default 300).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use common::{join_all, read_all, runtime, tag};
use kinesin_log::StoredRecord;
use kinesin_log::{
    AppendOutcome, Log, LogConfig, LogError, LogId, RecordIn, SimCrash, SimFault, SimOp, SimStorage, SimTrace,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Default)]
struct ModelLog {
    /// Records known stored: acknowledged, or seen after a recovery.
    records: BTreeMap<u64, (Bytes, i64)>,
    /// Appends not acknowledged (failed), by append number: record count. They may turn up
    /// after the next open, whole or not at all, and never otherwise.
    unresolved: HashMap<u64, usize>,
    /// Records older than this may have been trimmed.
    trim_floor_ms: i64,
    /// Records trimmed away. A crash before the trim's directory sync brings them back.
    trimmed: BTreeMap<u64, (Bytes, i64)>,
    first_created: u64,
}

struct Sim {
    rng: StdRng,
    storage: SimStorage,
    config: LogConfig,
    log: Option<Log>,
    rt: tokio::runtime::Runtime,
    model: BTreeMap<LogId, ModelLog>,
    /// Logs whose create or delete failed: they may or may not exist after the next open.
    limbo: BTreeMap<LogId, ModelLog>,
    now_ms: i64,
    next_append: u64,
    /// The writer's rounds are run by the simulation ([`Log::open_stepped`]).
    stepped: bool,
    /// A scrambled crash happened: unsynced batches may have reached the disk out of order,
    /// and recovery skips the indexes of those after a hole (they were never acknowledged), so
    /// the indexes may have gaps from here on.
    gaps_allowed: bool,
}

/// Every record served from `first` on, in small reads. A read that finds nothing before the
/// tip ends it only where gaps are allowed (indexes recovery skipped, at the end of the log).
fn read_all_with_gaps(log: &Log, id: LogId, gaps_allowed: bool) -> Vec<StoredRecord> {
    if !gaps_allowed {
        return read_all(log, id);
    }
    let mut out = Vec::new();
    let mut from = log.first(id).expect("first");
    loop {
        let got = log.read(id, from, 7, 4096).expect("read");
        match got.records.last() {
            None => break,
            Some(last) => from = last.seq_index + 1,
        }
        out.extend(got.records);
    }
    out
}

type AppendFuture<'a> = Pin<Box<dyn Future<Output = Result<AppendOutcome, LogError>> + 'a>>;

/// Polls once, without a runtime: the stepped log's appends need none.
fn poll_now<T>(future: Pin<&mut dyn Future<Output = T>>) -> Poll<T> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

fn open_log(config: &LogConfig, storage: &SimStorage, stepped: bool) -> Result<Log, LogError> {
    if stepped {
        Log::open_stepped(config.clone(), Arc::new(storage.clone()))
    } else {
        Log::open(config.clone(), Arc::new(storage.clone()))
    }
}

fn make_records(rng: &mut StdRng, id: LogId, append: u64) -> Vec<RecordIn> {
    let n = rng.gen_range(1..=6);
    (0..n)
        .map(|i| {
            let mut data = format!("{}:{append}:{i}:", id.0).into_bytes();
            let pad = rng.gen_range(0..300);
            data.resize(data.len() + pad, b'a' + (append % 26) as u8);
            RecordIn { partition_key: Bytes::from(vec![b'k'; rng.gen_range(0..20)]), data: Bytes::from(data) }
        })
        .collect()
}

impl Sim {
    fn new(seed: u64, stepped: bool) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = LogConfig {
            dir: "/logs".into(),
            durability: kinesin_log::Durability::Fsync,
            segment_bytes_max: rng.gen_range(600..6000),
            tail_bytes_per_log_max: rng.gen_range(0..4000),
            tail_bytes_total_max: rng.gen_range(0..8000),
            open_files_max: rng.gen_range(1..6),
        };
        let storage = SimStorage::new();
        let log = open_log(&config, &storage, stepped).expect("open");
        Sim {
            rng,
            storage,
            config,
            log: Some(log),
            rt: runtime(),
            model: BTreeMap::new(),
            limbo: BTreeMap::new(),
            now_ms: 1_000,
            next_append: 0,
            stepped,
            gaps_allowed: false,
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("log open")
    }

    fn pick_log(&mut self) -> Option<LogId> {
        if self.model.is_empty() {
            return None;
        }
        let index = self.rng.gen_range(0..self.model.len());
        self.model.keys().nth(index).copied()
    }

    fn tick(&mut self) -> i64 {
        // Mostly forward, sometimes backwards (the log clamps).
        self.now_ms += self.rng.gen_range(-20..100);
        self.now_ms
    }

    fn create(&mut self) {
        let id = LogId(self.rng.gen_range(0..8));
        if self.model.contains_key(&id) || self.limbo.contains_key(&id) {
            return;
        }
        let first = if self.rng.gen_bool(0.5) { 0 } else { self.rng.gen_range(0..1u64 << 40) };
        let model = ModelLog { first_created: first, ..ModelLog::default() };
        match self.log().create(id, first) {
            Ok(()) => {
                self.model.insert(id, model);
            }
            Err(LogError::Io { .. }) => {
                self.limbo.insert(id, model);
            }
            Err(other) => panic!("create: {other}"),
        }
    }

    fn appends(&mut self, count: usize) {
        let mut batch = Vec::new();
        for _ in 0..count {
            let Some(id) = self.pick_log() else { return };
            let append = self.next_append;
            self.next_append += 1;
            let now = self.tick();
            let records = make_records(&mut self.rng, id, append);
            batch.push((id, append, now, records));
        }
        let log = self.log.as_ref().expect("log open");
        if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
            let summary: Vec<_> =
                batch.iter().map(|(id, append, _, records)| (id.0, *append, records.len())).collect();
            eprintln!("appends {summary:?}");
        }
        let results = if self.stepped {
            // Every append reaches the queue on its first poll, in order; then the rounds,
            // each taking as many queued appends as the seed says.
            let mut futures: Vec<AppendFuture<'_>> = batch
                .iter()
                .map(|(id, _, now, records)| {
                    Box::pin(log.append(*id, *now, records.clone())) as AppendFuture<'_>
                })
                .collect();
            let mut results: Vec<Option<Result<AppendOutcome, LogError>>> = futures
                .iter_mut()
                .map(|future| match poll_now(future.as_mut()) {
                    Poll::Ready(result) => Some(result),
                    Poll::Pending => None,
                })
                .collect();
            loop {
                let queued = log.queued_appends();
                if queued == 0 {
                    break;
                }
                let take = self.rng.gen_range(1..=queued);
                assert_eq!(log.step_writer(take), take);
            }
            for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
                if result.is_none() {
                    match poll_now(future.as_mut()) {
                        Poll::Ready(answer) => *result = Some(answer),
                        Poll::Pending => panic!("an append is unanswered after its round"),
                    }
                }
            }
            results.into_iter().flatten().collect()
        } else {
            self.rt.block_on(join_all(
                batch.iter().map(|(id, _, now, records)| log.append(*id, *now, records.clone())),
            ))
        };
        for ((id, append, _, records), result) in batch.into_iter().zip(results) {
            let model = self.model.get_mut(&id).expect("model");
            if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
                eprintln!(
                    "  append {append} to {id}: {:?}",
                    result.as_ref().map(|o| o.first_seq_index).map_err(|e| e.to_string())
                );
            }
            match result {
                Ok(outcome) => {
                    for (i, record) in records.iter().enumerate() {
                        let seq = outcome.first_seq_index + i as u64;
                        let previous = model.records.insert(seq, (record.data.clone(), outcome.arrival_ms));
                        assert!(previous.is_none(), "index {seq} of {id} handed out twice");
                    }
                }
                Err(LogError::Io { .. } | LogError::ShuttingDown) => {
                    model.unresolved.insert(append, records.len());
                }
                Err(other) => panic!("append: {other}"),
            }
        }
    }

    /// A random read, checked exactly against the model (in a running log, readers see exactly
    /// the acknowledged records).
    fn read(&mut self) {
        let Some(id) = self.pick_log() else { return };
        let log = self.log.as_ref().expect("log open");
        let first = log.first(id).expect("first");
        let tip = log.tip(id).expect("tip");
        let from = self.rng.gen_range(first.saturating_sub(3)..=tip + 2);
        let max_records = self.rng.gen_range(0..40);
        let max_bytes = self.rng.gen_range(1..3000);
        let got = log.read(id, from, max_records, max_bytes).expect("read");
        let model = &self.model[&id];
        let start = from.max(first);
        let mut expected = Vec::new();
        let mut bytes = 0usize;
        for (seq, (data, _)) in model.records.range(start..tip.max(start)) {
            // A record's size is its partition key plus data; the key is not in the model, so
            // compare by the data and take the size from what was returned.
            let size =
                got.records.get(expected.len()).map_or(usize::MAX, |r| r.partition_key.len() + r.data.len());
            if expected.len() >= max_records
                || (!expected.is_empty() && bytes.saturating_add(size) > max_bytes)
            {
                break;
            }
            bytes = bytes.saturating_add(size);
            expected.push((*seq, data.clone()));
        }
        let actual: Vec<(u64, Bytes)> = got.records.iter().map(|r| (r.seq_index, r.data.clone())).collect();
        assert_eq!(actual, expected, "read {id} from {from} max {max_records} records {max_bytes} bytes");
        let next = actual.last().map_or(start.max(from), |(seq, _)| seq + 1);
        assert_eq!(got.next_seq_index, next);
    }

    fn trim(&mut self) {
        let Some(id) = self.pick_log() else { return };
        let t = self.now_ms - self.rng.gen_range(0..1500);
        let result = self.log().trim_before(id, t);
        if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
            eprintln!("trim {id} before {t}: {result:?} first now {:?}", self.log().first(id));
        }
        match result {
            Ok(_) => {}
            Err(LogError::Io { .. }) => {}
            Err(other) => panic!("trim: {other}"),
        }
        let model = self.model.get_mut(&id).expect("model");
        model.trim_floor_ms = model.trim_floor_ms.max(t);
        self.check(false);
    }

    fn delete(&mut self) {
        let Some(id) = self.pick_log() else { return };
        let model = self.model.remove(&id).expect("model");
        match self.log().delete(id) {
            Ok(()) => {}
            Err(LogError::Io { .. }) => {
                self.limbo.insert(id, model);
            }
            Err(other) => panic!("delete: {other}"),
        }
    }

    fn inject_fault(&mut self) {
        let op = [SimOp::Write, SimOp::Sync, SimOp::Any][self.rng.gen_range(0..3)];
        let fault = if self.rng.gen_bool(0.5) { SimFault::NoSpace } else { SimFault::Io };
        self.storage.fail_nth(op, self.rng.gen_range(1..5), fault);
    }

    fn open(&mut self) {
        // An armed fault may hit the open itself; it fires once, so try again.
        for attempt in 0..3 {
            match open_log(&self.config, &self.storage, self.stepped) {
                Ok(log) => {
                    self.log = Some(log);
                    return;
                }
                Err(error) if attempt < 2 => {
                    eprintln!("open failed ({error}); retrying");
                    if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
                        use kinesin_log::Storage;
                        for dir in self.storage.list_dir(std::path::Path::new("/logs")).unwrap_or_default() {
                            let dir = std::path::Path::new("/logs").join(dir);
                            for name in self.storage.list_dir(&dir).unwrap_or_default() {
                                let bytes = self.storage.read_file(&dir.join(&name)).unwrap_or_default();
                                eprintln!("  {}/{name}: {} bytes", dir.display(), bytes.len());
                            }
                        }
                    }
                }
                Err(error) => panic!("open: {error}"),
            }
        }
    }

    fn crash(&mut self) {
        let op = [SimOp::Write, SimOp::Sync, SimOp::Any][self.rng.gen_range(0..3)];
        self.storage.crash_after(op, self.rng.gen_range(1..12));
        for _ in 0..self.rng.gen_range(0..6) {
            let count = self.rng.gen_range(1..5);
            self.appends(count);
        }
        if let Some(log) = self.log.take() {
            log.shutdown();
        }
        let crash = match self.rng.gen_range(0..10) {
            0..=2 => SimCrash::Clean,
            // Scrambled crashes only where a run replays: what they keep is arbitrary enough
            // that a failure needs its exact replay to be understood.
            3..=5 if self.stepped => SimCrash::Scrambled(self.rng.gen()),
            _ => SimCrash::TornTail(self.rng.gen()),
        };
        self.gaps_allowed |= matches!(crash, SimCrash::Scrambled(_));
        self.storage.restart_with(crash);
        self.open();
        self.check(true);
    }

    fn clean_restart(&mut self) {
        if let Some(log) = self.log.take() {
            log.shutdown();
        }
        self.open();
        self.check(true);
    }

    /// Checks every log against the model. `reopened`: the log was just opened, so unresolved
    /// appends are settled now (adopted if present, gone for good otherwise).
    fn check(&mut self, reopened: bool) {
        let log = self.log.as_ref().expect("log open");
        let ids = log.ids();
        if reopened {
            for (id, model) in std::mem::take(&mut self.limbo) {
                if ids.contains(&id) {
                    self.model.insert(id, model);
                }
            }
        }
        let known: Vec<LogId> = self.model.keys().copied().collect();
        assert_eq!(ids, known, "set of logs");
        for (id, model) in self.model.iter_mut() {
            let id = *id;
            let stored = read_all_with_gaps(log, id, self.gaps_allowed);
            let first = log.first(id).expect("first");
            let tip = log.tip(id).expect("tip");
            assert!(
                first >= model.first_created,
                "{id}: first {first} below the created {}",
                model.first_created
            );
            if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() && tip - first != stored.len() as u64 {
                use kinesin_log::Storage;
                let dir = std::path::PathBuf::from(format!("/logs/{id}"));
                for name in self.storage.list_dir(&dir).unwrap_or_default() {
                    let bytes = self.storage.read_file(&dir.join(&name)).unwrap_or_default();
                    eprintln!("  {}/{name}: {} bytes", dir.display(), bytes.len());
                }
                eprintln!(
                    "first {first} tip {tip} seqs {:?}",
                    stored.iter().map(|r| r.seq_index).collect::<Vec<_>>()
                );
            }
            if !self.gaps_allowed {
                assert_eq!(tip - first, stored.len() as u64, "{id}: records between first and tip");
            }
            let mut seen = HashMap::new();
            for (i, record) in stored.iter().enumerate() {
                if self.gaps_allowed {
                    assert!(record.seq_index >= first && record.seq_index < tip, "{id}: index out of range");
                    assert!(
                        i == 0 || record.seq_index > stored[i - 1].seq_index,
                        "{id}: indexes out of order"
                    );
                } else {
                    assert_eq!(record.seq_index, first + i as u64, "{id}: indexes not consecutive");
                }
                if i > 0 {
                    assert!(record.arrival_ms >= stored[i - 1].arrival_ms, "{id}: arrival went backwards");
                }
                let t = tag(record);
                assert_eq!(t.0, id.0, "{id}: record of another log");
                assert!(
                    seen.insert((t.1, t.2), record.seq_index).is_none(),
                    "{id}: record {t:?} served twice"
                );
                match model.records.get(&record.seq_index).or_else(|| model.trimmed.get(&record.seq_index)) {
                    Some((data, arrival)) => {
                        assert_eq!(&record.data, data, "{id}: wrong data at {}", record.seq_index);
                        assert_eq!(
                            record.arrival_ms, *arrival,
                            "{id}: wrong arrival at {}",
                            record.seq_index
                        );
                    }
                    None => {
                        assert!(
                            reopened,
                            "{id}: unknown record {t:?} at {} without a restart",
                            record.seq_index
                        );
                        let count = model.unresolved.get(&t.1).unwrap_or_else(|| {
                            panic!("{id}: record {t:?} at {} of no unresolved append", record.seq_index)
                        });
                        assert!(t.2 < *count);
                    }
                }
            }
            // Unresolved appends that turned up must be whole and in order.
            for (&(append, index), &seq) in &seen {
                if let Some(&count) = model.unresolved.get(&append) {
                    for j in 0..count {
                        assert_eq!(
                            seen.get(&(append, j)),
                            Some(&(seq - index as u64 + j as u64)),
                            "{id}: append {append} only in part"
                        );
                    }
                }
            }
            // Nothing known is missing unless trimmed, and trimming only takes a prefix of
            // records older than the floor.
            for (seq, (_, arrival)) in &model.records {
                if *seq >= first {
                    assert!(*seq < tip, "{id}: acknowledged record {seq} lost (tip {tip})");
                    assert!(
                        stored.binary_search_by_key(seq, |record| record.seq_index).is_ok(),
                        "{id}: acknowledged record {seq} not served"
                    );
                } else {
                    assert!(
                        *arrival < model.trim_floor_ms,
                        "{id}: record {seq} at {arrival} trimmed (floor {})",
                        model.trim_floor_ms
                    );
                }
            }
            // Adopt what turned up, forget what was trimmed.
            if reopened {
                for record in &stored {
                    model.records.entry(record.seq_index).or_insert((record.data.clone(), record.arrival_ms));
                }
                model.unresolved.clear();
            }
            let kept = model.records.split_off(&first);
            let trimmed = std::mem::replace(&mut model.records, kept);
            model.trimmed.extend(trimmed);
            if reopened {
                // Trimmed records that came back are stored again.
                let back = model.trimmed.split_off(&first);
                model.records.extend(back);
            }
        }
    }

    fn step(&mut self) {
        let choice = self.rng.gen_range(0..100);
        if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
            eprintln!("step {choice}: logs {:?}", self.model.keys().collect::<Vec<_>>());
        }
        match choice {
            0..=2 => self.create(),
            3..=37 => self.appends(1),
            38..=52 => {
                let n = self.rng.gen_range(2..8);
                self.appends(n);
            }
            53..=72 => self.read(),
            73..=77 => self.trim(),
            78 => self.delete(),
            79..=84 => self.inject_fault(),
            85..=90 => self.crash(),
            91..=93 => self.clean_restart(),
            _ => self.check(false),
        }
    }
}

fn run_seed(seed: u64, steps: usize, stepped: bool) -> SimTrace {
    if std::env::var("KINESIN_LOG_SIM_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt().with_test_writer().with_max_level(tracing::Level::DEBUG).try_init();
    }
    let mut sim = Sim::new(seed, stepped);
    for _ in 0..3 {
        sim.create();
    }
    for _ in 0..steps {
        sim.step();
    }
    sim.clean_restart();
    sim.storage.trace()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| value.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

fn run_seeds(stepped: bool, default_seeds: u64) {
    let steps = env_number("KINESIN_LOG_SIM_STEPS").unwrap_or(300) as usize;
    let seeds: Vec<u64> = match env_number("KINESIN_LOG_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env_number("KINESIN_LOG_SIM_SEEDS").unwrap_or(default_seeds);
            let base = 0x6b69_6e65_7369_6e00u64;
            (0..count).map(|i| base + i).collect()
        }
    };
    let mode = if stepped { "stepped" } else { "threaded" };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed, steps, stepped));
        if let Err(panic) = result {
            eprintln!(
                "{mode} log simulation failed with seed {seed}; replay with KINESIN_LOG_SIM_SEED={seed}"
            );
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn randomized_simulation() {
    run_seeds(false, 40);
}

#[test]
fn randomized_simulation_stepped() {
    run_seeds(true, 200);
}

/// The same seed, run twice, does the same storage operations with the same arguments and
/// outcomes, in the same order; different seeds do not.
#[test]
fn a_seed_replays_the_same_trace() {
    let steps = env_number("KINESIN_LOG_SIM_STEPS").unwrap_or(300) as usize;
    let mut traces = std::collections::HashSet::new();
    for seed in 0..8u64 {
        let first = run_seed(seed, steps, true);
        let second = run_seed(seed, steps, true);
        assert!(first.ops > 1000, "seed {seed}: only {} operations", first.ops);
        assert_eq!(first, second, "seed {seed} did not replay");
        assert!(traces.insert(first.hash), "seed {seed}: the same trace as another seed");
    }
}
