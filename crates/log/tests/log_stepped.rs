//! The stepped writer ([`Log::open_stepped`]), which deterministic simulations drive: appends
//! wait in the queue, unseen by readers, until the caller runs a round; a round takes the
//! oldest queued appends, at most as many as asked, and acknowledges them after one sync; under
//! interval durability the periodic sync is the caller's step, so what a power cut loses is
//! exact; shutdown runs whatever is still queued.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use common::{read_all, records, sim_config};
use kinesin_log::{AppendOutcome, Durability, Log, LogConfig, LogError, LogId, SimStorage};

type Append<'a> = Pin<Box<dyn Future<Output = Result<AppendOutcome, LogError>> + 'a>>;

fn poll(future: &mut Append<'_>) -> Poll<Result<AppendOutcome, LogError>> {
    future.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn open(sim: &SimStorage, config: &LogConfig) -> Log {
    Log::open_stepped(config.clone(), Arc::new(sim.clone())).expect("open")
}

#[test]
fn a_round_takes_the_oldest_queued_appends_and_acknowledges_them_after_one_sync() {
    let sim = SimStorage::new();
    let log = open(&sim, &sim_config(1 << 20));
    let id = LogId(1);
    log.create(id, 0).unwrap();
    let mut appends: Vec<Append<'_>> =
        (0..5u64).map(|k| Box::pin(log.append(id, k as i64, records(id, k, 2, 10))) as Append<'_>).collect();
    for append in &mut appends {
        assert!(poll(append).is_pending(), "nothing is written before a round");
    }
    assert_eq!(log.queued_appends(), 5);
    assert_eq!(log.tip(id).unwrap(), 0, "queued appends are not visible");
    let syncs = sim.counts().file_syncs;

    assert_eq!(log.step_writer(2), 2);
    assert_eq!(sim.counts().file_syncs - syncs, 1, "one sync for the round");
    assert_eq!(log.stats().sync_rounds, 1);
    for (k, append) in appends.iter_mut().enumerate() {
        match (k, poll(append)) {
            (0 | 1, Poll::Ready(Ok(out))) => assert_eq!(out.first_seq_index, 2 * k as u64),
            (2..=4, Poll::Pending) => {}
            (k, other) => panic!("append {k}: {other:?}"),
        }
    }
    assert_eq!(log.queued_appends(), 3);
    assert_eq!(read_all(&log, id).len(), 4, "readers see exactly the acknowledged appends");

    assert_eq!(log.step_writer(usize::MAX), 3, "the rest in one round");
    assert_eq!(log.step_writer(1), 0, "nothing left: no round");
    assert_eq!(log.stats().sync_rounds, 2);
    for append in &mut appends[2..] {
        assert!(matches!(poll(append), Poll::Ready(Ok(_))));
    }
    assert_eq!(read_all(&log, id).len(), 10);
}

#[test]
fn shutdown_runs_what_is_still_queued() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    let id = LogId(3);
    {
        let log = open(&sim, &config);
        log.create(id, 0).unwrap();
        let mut append: Append<'_> = Box::pin(log.append(id, 1, records(id, 0, 3, 10)));
        assert!(poll(&mut append).is_pending());
        log.shutdown();
        assert!(matches!(poll(&mut append), Poll::Ready(Ok(_))), "answered by the shutdown's round");
    }
    sim.restart(None);
    let log = open(&sim, &config);
    assert_eq!(read_all(&log, id).len(), 3, "durable");
}

/// The interval contract without a timer: acknowledged at the round, durable at the next
/// periodic sync, lost to a power cut before it.
#[test]
fn interval_durability_is_durable_from_the_periodic_sync_on() {
    let sim = SimStorage::new();
    let mut config = sim_config(1 << 20);
    config.durability = Durability::Interval(std::time::Duration::from_secs(3600));
    let id = LogId(2);
    let appended = |log: &Log, k: u64| {
        let mut append: Append<'_> = Box::pin(log.append(id, k as i64, records(id, k, 1, 10)));
        assert!(poll(&mut append).is_pending());
        assert_eq!(log.step_writer(1), 1);
        assert!(matches!(poll(&mut append), Poll::Ready(Ok(_))), "acknowledged once written");
    };
    {
        let log = open(&sim, &config);
        log.create(id, 0).unwrap();
        appended(&log, 0);
        appended(&log, 1);
        let syncs = sim.counts().file_syncs;
        log.step_interval_sync();
        assert_eq!(sim.counts().file_syncs - syncs, 1, "the periodic sync");
        appended(&log, 2);
        assert_eq!(read_all(&log, id).len(), 3, "visible once written");
        // Power cut before the next periodic sync. The process dies with it: nothing of this
        // log runs again (no shutdown, which would sync).
        sim.restart(None);
        std::mem::forget(log);
    }
    let log = open(&sim, &config);
    let stored = read_all(&log, id);
    assert_eq!(stored.len(), 2, "the synced appends survive, the later one is lost");
    assert_eq!(common::tag(&stored[1]), (2, 1, 0));
}
