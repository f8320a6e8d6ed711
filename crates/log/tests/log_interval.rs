//! `Durability::Interval`: appends are acknowledged once written, and the writer syncs every
//! dirty file each interval. The contract pinned here: a power cut loses at most what was
//! acknowledged in the last interval (anything older is on disk), what survives is whole appends
//! with consecutive indexes, and the sync rate follows the clock, not the append rate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{open_sim, read_all, records, runtime, sim_config, tag};
use kinesin_log::{Durability, LogId, SimStorage};

const INTERVAL: Duration = Duration::from_millis(20);

/// Waits (yielding, at most 30 s) until `done`.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::yield_now();
    }
}

#[test]
fn a_power_cut_loses_at_most_the_last_interval() {
    for seed in 0..8u64 {
        let sim = SimStorage::new();
        let mut config = sim_config(4096);
        config.durability = Durability::Interval(INTERVAL);
        let id = LogId(1);
        let rt = runtime();
        let (old_acked, young_acked) = {
            let log = open_sim(&sim, &config);
            log.create(id, 0).unwrap();
            let mut old = Vec::new();
            for append in 0..40u64 {
                let out = rt.block_on(log.append(id, append as i64, records(id, append, 3, 50))).unwrap();
                old.push((append, out.first_seq_index));
            }
            // An interval passes: the writer's next periodic sync makes everything above
            // durable. Awaited, not slept.
            wait_until(|| sim.all_files_synced());
            let mut young = Vec::new();
            for append in 40..(40 + seed * 3) {
                let out = rt.block_on(log.append(id, append as i64, records(id, append, 3, 50))).unwrap();
                young.push((append, out.first_seq_index));
            }
            // Power cut right now, before the next interval's sync; unsynced bytes torn.
            sim.restart(Some(seed));
            (old, young)
        };
        let log = open_sim(&sim, &config);
        let stored = read_all(&log, id);
        for (i, r) in stored.iter().enumerate() {
            assert_eq!(r.seq_index, i as u64, "seed {seed}: indexes not consecutive");
        }
        // Everything acknowledged before the quiet intervals survived, where it was acknowledged.
        for (append, first) in &old_acked {
            for k in 0..3 {
                let r = stored.get((first + k) as usize).unwrap_or_else(|| {
                    panic!("seed {seed}: append {append} acknowledged {INTERVAL:?}+ before the cut is lost")
                });
                assert_eq!(tag(r), (1, *append, k as usize), "seed {seed}: record moved");
            }
        }
        // Younger appends survive whole or not at all, in order, never twice.
        assert_eq!(stored.len() % 3, 0, "seed {seed}: an append survived in part");
        let survivors = stored.len() / 3;
        assert!(survivors >= old_acked.len(), "seed {seed}");
        for (j, (append, first)) in young_acked.iter().enumerate().take(survivors - old_acked.len()) {
            assert_eq!(tag(&stored[*first as usize]), (1, *append, 0), "seed {seed}: young append {j}");
        }
        // And the log takes appends again after the cut, right after what survived.
        let out = rt.block_on(log.append(id, 999, records(id, 999, 1, 10))).unwrap();
        assert_eq!(out.first_seq_index, stored.len() as u64);
    }
}

#[test]
fn syncs_follow_the_clock_not_the_appends() {
    let sim = SimStorage::new();
    let mut config = sim_config(1 << 20);
    config.durability = Durability::Interval(INTERVAL);
    let log = open_sim(&sim, &config);
    let ids: Vec<LogId> = (1..=4).map(LogId).collect();
    for id in &ids {
        log.create(*id, 0).unwrap();
    }
    let before = sim.counts();
    let rt = runtime();
    let start = Instant::now();
    let mut appends = 0u64;
    while start.elapsed() < INTERVAL * 10 {
        for id in &ids {
            rt.block_on(log.append(*id, appends as i64, records(*id, appends, 1, 20))).unwrap();
            appends += 1;
        }
    }
    let elapsed = start.elapsed();
    let after = sim.counts();
    let syncs = (after.file_syncs - before.file_syncs) + (after.fs_syncs - before.fs_syncs);
    let rounds_max = (elapsed.as_millis() / INTERVAL.as_millis()) as u64 + 2;
    assert!(appends > 4 * rounds_max, "too few appends ({appends}) to tell syncs from appends");
    // At most one sync per dirty file (4 here) per interval, however many appends.
    assert!(syncs <= 4 * rounds_max, "{syncs} syncs for {appends} appends in {elapsed:?}");
    assert!(syncs >= 1, "interval durability never synced");
}
