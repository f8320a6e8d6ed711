//! Group commit: concurrent appends share sync rounds. Pins that a round syncs each touched file
//! once when it touched few, and all of them with one `syncfs` when it touched many, so that the
//! syncs per round do not grow with the number of shards written (syncs are counted by the
//! storage); and that sequential appends, which cannot share, do pay one round each (so the
//! counting is real).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::sync::Arc;

use common::{records, sim_config};
use kinesin_log::{Log, LogId, SimStorage};

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Runs `appends` concurrent appends spread over `logs` logs; returns (sync rounds, syncs of
/// any kind: fdatasync, directory fsync, syncfs).
fn concurrent_appends(logs: u64, appends: u64) -> (u64, u64) {
    let rt = multi_thread_runtime();
    let sim = SimStorage::new();
    let log = Arc::new(Log::open(sim_config(1 << 20), Arc::new(sim.clone())).expect("open"));
    for id in 0..logs {
        log.create(LogId(id), 0).expect("create");
    }
    let total_syncs = |c: kinesin_log::SimCounts| c.file_syncs + c.dir_syncs + c.fs_syncs;
    let syncs_before = total_syncs(sim.counts());
    let rounds_before = log.stats().sync_rounds;
    // Hold the writer in its first round's sync, as a slow disk would, until every other
    // append is queued behind it; then they must share the following round (or two, if they
    // pass the round limits). No timing is involved: the sync waits at the storage's gate.
    sim.hold_syncs();
    let first = {
        let log = Arc::clone(&log);
        rt.spawn(async move { log.append(LogId(0), 1, records(LogId(0), 0, 2, 100)).await.expect("append") })
    };
    sim.wait_for_held_syncs(1);
    let tasks: Vec<_> = (1..appends)
        .map(|k| {
            let log = Arc::clone(&log);
            rt.spawn(async move {
                let id = LogId(k % logs);
                log.append(id, 1, records(id, k, 2, 100)).await.expect("append")
            })
        })
        .collect();
    // Every append is in flight (the first one in its round, the rest queued).
    while log.stats().appends_in_flight < appends {
        std::thread::yield_now();
    }
    sim.release_syncs();
    rt.block_on(async {
        first.await.expect("task");
        for task in tasks {
            task.await.expect("task");
        }
    });
    let syncs = total_syncs(sim.counts()) - syncs_before;
    let rounds = log.stats().sync_rounds - rounds_before;
    // Every append is there, with consecutive indexes per log.
    for id in 0..logs {
        let got = log.read(LogId(id), 0, 10_000, 1 << 30).expect("read");
        assert_eq!(got.records.len() as u64, 2 * appends / logs);
        assert!(got.records.iter().enumerate().all(|(i, r)| r.seq_index == i as u64));
    }
    (rounds, syncs)
}

#[test]
fn concurrent_appends_across_many_logs_share_sync_rounds() {
    let (rounds, syncs) = concurrent_appends(100, 200);
    eprintln!("200 appends over 100 logs: {rounds} sync rounds, {syncs} file syncs");
    // The first append's round, then one for the 199 queued behind it.
    assert_eq!(rounds, 2, "sync rounds for 200 appends");
    // The first round synced one file; the rest touched 100 logs and shared one syncfs each.
    assert!(syncs <= 3, "{syncs} syncs for 200 appends");
}

#[test]
fn a_thousand_logs_written_at_once_share_a_few_syncs() {
    let (rounds, syncs) = concurrent_appends(1000, 2000);
    eprintln!("2000 appends over 1000 logs: {rounds} sync rounds, {syncs} syncs");
    assert_eq!(rounds, 2, "sync rounds for 2000 appends");
    // At most SYNC_FILES_SEPARATELY_MAX syncs per round, whatever the number of logs.
    assert!(
        syncs <= rounds * kinesin_log::SYNC_FILES_SEPARATELY_MAX as u64,
        "{syncs} syncs in {rounds} rounds"
    );
}

#[test]
fn concurrent_appends_to_one_log_share_one_sync() {
    let (rounds, syncs) = concurrent_appends(1, 200);
    eprintln!("200 appends to one log: {rounds} sync rounds, {syncs} file syncs");
    assert_eq!(rounds, 2, "sync rounds for 200 appends");
    assert!(syncs <= 3, "{syncs} file syncs for 200 appends");
}

#[test]
fn sequential_appends_pay_one_sync_each() {
    let rt = common::runtime();
    let sim = SimStorage::new();
    let log = Log::open(sim_config(1 << 20), Arc::new(sim.clone())).expect("open");
    log.create(LogId(1), 0).expect("create");
    let before = sim.counts().file_syncs;
    for k in 0..20 {
        rt.block_on(log.append(LogId(1), 1, records(LogId(1), k, 1, 10))).expect("append");
    }
    assert_eq!(sim.counts().file_syncs - before, 20);
    assert_eq!(log.stats().sync_rounds, 20);
}
