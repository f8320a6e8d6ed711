//! The metadata store (redb) on simulated storage, crash-tested like the record log: redb runs
//! on a `StorageBackend` over a file of the log crate's `SimStorage`, a seeded workload commits
//! catalog changes (stream documents together with the id counters, in one transaction each),
//! and the machine crashes after the Nth write, sync or change, or an operation fails, and
//! restarts keeping none, a torn tail, or any sectors of any unsynced write (the store writes in
//! place). After every restart the store must open, and hold exactly the committed changes plus,
//! at most, the one change in flight at the crash, whole or not at all.
//!
//! Replay one seed with `KINESIN_META_SIM_SEED=<seed>`; more seeds with
//! `KINESIN_META_SIM_SEEDS=<count>` (default 10).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use kinesin_log::{SimCrash, SimFault, SimOp, SimStorage, Storage, StorageFile};
use kinesin_service::meta::{Change, Counters, MetaStore, StreamMeta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DB: &str = "/meta.redb";

/// redb's storage on one simulated file.
#[derive(Debug)]
struct SimBackend(Arc<dyn StorageFile>);

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.0.len_bytes()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        let mut buf = vec![0; len];
        self.0.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }

    /// An eventual sync is made a full one: stricter than redb asks, never weaker.
    fn sync_data(&self, _eventual: bool) -> Result<(), io::Error> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write_all_at(data, offset)
    }
}

fn open(sim: &SimStorage) -> Result<(MetaStore, Vec<StreamMeta>, Counters), String> {
    let file = sim.open_file(Path::new(DB)).map_err(|e| format!("open {DB}: {e}"))?;
    let (store, loaded) = MetaStore::open_on_backend(SimBackend(file), DB).map_err(|e| e.to_string())?;
    Ok((store, loaded.streams, loaded.counters))
}

/// A stream document whose every version-dependent field says `version`.
fn stream(name: &str, version: u64) -> StreamMeta {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "incarnation": version,
        "created_ms": version as i64,
        "status": "Active",
        "status_until_ms": 0,
        "mode": "Provisioned",
        "retention_hours": 24,
        "shards": [{
            "index": 0, "parent": null, "adjacent_parent": null,
            "start_hash": "0", "end_hash": "340282366920938463463374607431768211455",
            "created_ms": version as i64, "log_id": version, "closed": null
        }],
        // Bulk, so that commits span several pages and sectors.
        "tags": (0..(version % 40)).map(|i| (format!("t{i}"), format!("{version}-{i}"))).collect::<BTreeMap<_, _>>(),
        "shard_level_metrics": [],
        "encryption_key_id": null,
        "max_record_size_kib": 1024,
        "policy": null
    }))
    .expect("stream document")
}

/// One catalog change: a stream put (or removed) and the counters, in one transaction.
#[derive(Debug, Clone)]
struct Attempt {
    version: u64,
    name: String,
    remove: bool,
}

#[derive(Default)]
struct Model {
    /// Committed: stream name → version.
    streams: BTreeMap<String, u64>,
    /// The version of the last committed change (the counters say it).
    version: u64,
}

impl Model {
    fn apply(&mut self, attempt: &Attempt) {
        if attempt.remove {
            self.streams.remove(&attempt.name);
        } else {
            self.streams.insert(attempt.name.clone(), attempt.version);
        }
        self.version = attempt.version;
    }
}

/// Checks what the store loaded against the model, settling the change in flight (if any):
/// present whole (adopted) or absent whole.
fn check(
    model: &mut Model,
    streams: &[StreamMeta],
    counters: &Counters,
    in_flight: Option<&Attempt>,
    context: &str,
) {
    let found: BTreeMap<String, u64> = streams.iter().map(|s| (s.name.clone(), s.incarnation)).collect();
    for stream in streams {
        // Every field written with the version agrees: no document is half old, half new.
        let tags_ok = stream.tags.iter().all(|(k, v)| v == &format!("{}-{}", stream.incarnation, &k[1..]));
        assert!(
            stream.created_ms == stream.incarnation as i64
                && stream.shards[0].log_id == stream.incarnation
                && stream.tags.len() as u64 == stream.incarnation % 40
                && tags_ok,
            "{context}: document {} is inconsistent",
            stream.name
        );
    }
    let applied = match in_flight {
        Some(attempt) if counters.next_incarnation == attempt.version + 1 => {
            let mut after = Model { streams: model.streams.clone(), version: model.version };
            after.apply(attempt);
            assert_eq!(found, after.streams, "{context}: the change in flight is there only in part");
            true
        }
        _ => false,
    };
    if applied {
        if let Some(attempt) = in_flight {
            model.apply(attempt);
        }
    } else {
        assert_eq!(counters.next_incarnation, model.version + 1, "{context}: counters");
        assert_eq!(counters.next_log_id, model.version + 1, "{context}: counters");
        assert_eq!(found, model.streams, "{context}: committed streams");
    }
}

fn run_seed(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = SimStorage::new();
    // The data directory and the empty database file exist durably, as after installation.
    sim.create_file(Path::new(DB)).expect("create");
    sim.sync_dir(Path::new("/")).expect("sync");
    let (mut store, streams, counters) = open(&sim).expect("first open");
    let mut model = Model::default();
    check(&mut model, &streams, &counters, None, "first open");
    let mut version = 1u64;
    let mut crashes = 0;
    for step in 0..steps {
        // Arm a fault for the next commit now and then.
        match rng.gen_range(0..10) {
            0 => sim.crash_after(
                [SimOp::Write, SimOp::Sync, SimOp::Any][rng.gen_range(0..3)],
                rng.gen_range(1..8),
            ),
            1 => sim.fail_nth(
                [SimOp::Write, SimOp::Sync, SimOp::Any][rng.gen_range(0..3)],
                rng.gen_range(1..6),
                if rng.gen_bool(0.5) { SimFault::Io } else { SimFault::NoSpace },
            ),
            _ => {}
        }
        version += 1;
        let name = format!("s{}", rng.gen_range(0..6));
        let attempt = Attempt { version, name: name.clone(), remove: rng.gen_bool(0.2) };
        let doc = stream(&name, version);
        // Counters stay above every id in use (the store checks it when it opens).
        let counters = Counters { next_incarnation: version + 1, next_log_id: version + 1 };
        let put = [&doc];
        let remove = [name.as_str()];
        let change = if attempt.remove {
            Change { remove_streams: &remove, counters: Some(&counters), ..Change::default() }
        } else {
            Change { put_streams: &put, counters: Some(&counters), ..Change::default() }
        };
        let result = store.commit(&change);
        let power_cut = sim.is_stopped() || rng.gen_range(0..20) == 0;
        match result {
            Ok(()) if !power_cut => {
                model.apply(&attempt);
                continue;
            }
            Ok(()) => model.apply(&attempt),
            Err(_) => {}
        }
        // The commit failed (the store may be unusable now) or the power went: restart.
        let in_flight = result.is_err().then_some(&attempt);
        drop(store);
        crashes += 1;
        let crash = match rng.gen_range(0..3) {
            0 => SimCrash::Clean,
            1 => SimCrash::TornTail(rng.gen()),
            _ => SimCrash::Scrambled(rng.gen()),
        };
        sim.restart_with(crash);
        let context = format!("seed {seed} step {step} after {crash:?}");
        let (reopened, streams, counters) =
            open(&sim).unwrap_or_else(|e| panic!("{context}: the store does not open: {e}"));
        check(&mut model, &streams, &counters, in_flight, &context);
        store = reopened;
    }
    assert!(crashes > 0, "seed {seed}: no crash in {steps} steps");
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| value.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

#[test]
fn committed_catalog_changes_survive_crashes_whole() {
    let seeds: Vec<u64> = match env_number("KINESIN_META_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            (0..env_number("KINESIN_META_SIM_SEEDS").unwrap_or(10)).map(|i| 0x6d65_7461_0000 + i).collect()
        }
    };
    for seed in seeds {
        if let Err(panic) = std::panic::catch_unwind(|| run_seed(seed, 80)) {
            eprintln!(
                "catalog crash simulation failed with seed {seed}; replay with KINESIN_META_SIM_SEED={seed}"
            );
            std::panic::resume_unwind(panic);
        }
    }
}
