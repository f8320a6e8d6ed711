//! Resharding: SplitShard, MergeShards, UpdateShardCount and on-demand scaling all go through
//! one path. A plan of splits and merges is applied to a copy of the stream's metadata
//! (`apply`), then `Service::commit_reshard` closes the parents for writes, records where each
//! parent's data ends, creates the children's logs and commits the new stream document.
//!
//! Closing is atomic with routing: a put enters a shard's `Gate` (counting itself in flight)
//! before it appends and leaves it after the append completes. Closing marks the gate closed and
//! waits (on a condition variable, not a spin) until no append is in flight; only then is the
//! log's tip taken as the parent's end. A put that finds the gate closed waits for the switch —
//! the commit that publishes the children, or the reopening when the reshard fails — then loads
//! the stream again and routes again, so it lands in a child. No record can land in a parent
//! after its end was recorded.
//!
//! The gate lives in the shard's entry of the stream snapshot (`ShardMeta::gate`, shared by
//! every version of the stream), so a put reaches it without a lock. A reshard holds the writer
//! lock (other control-plane writers wait), but never anything a put takes: puts to other
//! streams, and to the stream's other shards, go on while it waits for the parents' appends;
//! puts to the parents wait only for the switch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::error::ServiceError;
use kinesin_log::LogId;
use kinesin_wire::ids::{HashKey, HashKeyRange};

use crate::meta::{
    Change, ClosedShard, Counters, PendingStep, ShardMeta, StreamMeta, StreamStatus, FIRST_RECORD_SEQ_INDEX,
};
use crate::storage::wait;
use crate::{meta_failure, Service, StateGuard};

/// How long closing a shard waits for appends in flight before giving up.
pub const CLOSE_DRAIN_MS_MAX: u64 = 30_000;
/// Shards one stream may have open (AWS: 10,000 per stream through UpdateShardCount).
pub const STREAM_SHARDS_MAX: u64 = 10_000;

/// One resharding step, by shard index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Children `[start, at − 1]` and `[at, end]`.
    Split { shard: u32, at: HashKey },
    /// One child over the union of two hash-adjacent open shards.
    Merge { shard: u32, adjacent: u32 },
}

/// Why a step cannot apply (the caller turns it into AWS's error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    NoSuchShard(u32),
    Closed(u32),
    KeyOutside,
    NotAdjacent,
}

fn open_position(s: &StreamMeta, index: u32) -> Result<usize, OpError> {
    let i = s.shards.binary_search_by_key(&index, |sh| sh.index).map_err(|_| OpError::NoSuchShard(index))?;
    if s.shards[i].closed.is_some() {
        return Err(OpError::Closed(index));
    }
    Ok(i)
}

fn child(
    s: &StreamMeta,
    range: HashKeyRange,
    parents: (u32, Option<u32>),
    now: i64,
    c: &mut Counters,
) -> ShardMeta {
    let log_id = c.next_log_id;
    c.next_log_id += 1;
    ShardMeta {
        index: s.next_shard_index(),
        parent: Some(parents.0),
        adjacent_parent: parents.1,
        start_hash: range.start.to_string(),
        end_hash: range.end.to_string(),
        created_ms: now,
        log_id,
        closed: None,
        range_cache: Default::default(),
        metrics: Default::default(),
        gate: Default::default(),
    }
}

/// Applies one step to `s`. Closed parents get `end_seq_index` 0 for now: `commit_reshard`
/// fills in the real end once the parent's appends have drained.
pub fn apply(s: &mut StreamMeta, op: Op, now: i64, counters: &mut Counters) -> Result<(), OpError> {
    match op {
        Op::Split { shard, at } => {
            let i = open_position(s, shard)?;
            let r = s.shards[i].range();
            if at <= r.start || at > r.end {
                return Err(OpError::KeyOutside);
            }
            s.shards[i].closed = Some(ClosedShard { end_seq_index: 0, closed_ms: now });
            let low = child(
                s,
                HashKeyRange { start: r.start, end: HashKey(at.0 - 1) },
                (shard, None),
                now,
                counters,
            );
            s.shards.push(low);
            let high = child(s, HashKeyRange { start: at, end: r.end }, (shard, None), now, counters);
            s.shards.push(high);
        }
        Op::Merge { shard, adjacent } => {
            let a = open_position(s, shard)?;
            let b = open_position(s, adjacent)?;
            let (ra, rb) = (s.shards[a].range(), s.shards[b].range());
            let union = if ra.end.0.checked_add(1) == Some(rb.start.0) {
                HashKeyRange { start: ra.start, end: rb.end }
            } else if rb.end.0.checked_add(1) == Some(ra.start.0) {
                HashKeyRange { start: rb.start, end: ra.end }
            } else {
                return Err(OpError::NotAdjacent);
            };
            s.shards[a].closed = Some(ClosedShard { end_seq_index: 0, closed_ms: now });
            s.shards[b].closed = Some(ClosedShard { end_seq_index: 0, closed_ms: now });
            let c = child(s, union, (shard, Some(adjacent)), now, counters);
            s.shards.push(c);
        }
    }
    Ok(())
}

/// Open shards sorted by the start of their range.
pub fn open_by_range(s: &StreamMeta) -> Vec<&ShardMeta> {
    let mut open: Vec<&ShardMeta> = s.shards.iter().filter(|sh| sh.is_open()).collect();
    open.sort_by_key(|sh| sh.range().start);
    open
}

/// UNIFORM_SCALING to `target` open shards as AWS does it, by splits and merges: split every open
/// shard at each boundary of the even target ranges that falls inside it, then merge the pieces
/// of each target range. Returns the number of steps and the most shards open at any moment
/// (short-lived intermediate shards count against the account limit, as on AWS).
pub fn scale_uniformly(
    s: &mut StreamMeta,
    target: u32,
    now: i64,
    counters: &mut Counters,
) -> Result<(usize, u64), OpError> {
    let ranges = HashKeyRange::even_split(target);
    let mut steps = 0usize;
    let mut peak = s.open_shard_count();
    for r in ranges.iter().skip(1) {
        let inside = open_by_range(s)
            .iter()
            .find(|sh| sh.range().start < r.start && r.start <= sh.range().end)
            .map(|sh| sh.index);
        if let Some(shard) = inside {
            apply(s, Op::Split { shard, at: r.start }, now, counters)?;
            steps += 1;
            peak = peak.max(s.open_shard_count());
        }
    }
    for r in &ranges {
        loop {
            let pieces: Vec<u32> = open_by_range(s)
                .iter()
                .filter(|sh| r.start <= sh.range().start && sh.range().end <= r.end)
                .map(|sh| sh.index)
                .collect();
            if pieces.len() < 2 {
                break;
            }
            apply(s, Op::Merge { shard: pieces[0], adjacent: pieces[1] }, now, counters)?;
            steps += 1;
        }
    }
    Ok((steps, peak))
}

/// A shard's write gate (see the module comment); one per shard, shared by every version of the
/// stream's snapshot.
#[derive(Debug, Default)]
pub struct Gate {
    /// No put may enter: the shard is closing, or closed.
    closed: AtomicBool,
    /// Closed and the switch is not published yet: puts that found the gate closed wait for it.
    switching: AtomicBool,
    /// Puts inside the gate (appending).
    inflight: AtomicU64,
    /// Signalled when the last put leaves a closed gate (`drained` is its mutex).
    drained: Mutex<()>,
    drained_cv: Condvar,
    /// Signalled when the switch is published or the gate reopens.
    switched: Notify,
}

impl Gate {
    /// Publishes the end of a switch: waiting puts route again (the closed gate stays closed,
    /// or was reopened).
    fn end_switch(&self) {
        self.switching.store(false, Ordering::SeqCst);
        self.switched.notify_waiters();
    }

    /// A test's stand-in for an append in flight: holds the gate like a put until dropped.
    #[cfg(test)]
    pub(crate) fn hold_for_test(self: &Arc<Self>) -> Option<GateGuard> {
        enter(self).ok()
    }

    #[cfg(test)]
    pub(crate) fn is_closed_for_test(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// Proof that a put is inside an open shard's gate; leaving is dropping it.
pub(crate) struct GateGuard(Arc<Gate>);

impl Drop for GateGuard {
    fn drop(&mut self) {
        let g = &self.0;
        if g.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && g.closed.load(Ordering::SeqCst) {
            // The closer checks `inflight` holding `drained`: taking it here means the wake-up
            // cannot fall between its check and its wait.
            let _held = g.drained.lock();
            g.drained_cv.notify_all();
        }
    }
}

/// A gate found closed: `wait` returns when the switch is published (or the gate reopened).
pub(crate) struct GateClosed(Arc<Gate>);

impl GateClosed {
    pub(crate) async fn wait(self) {
        let switched = self.0.switched.notified();
        tokio::pin!(switched);
        // Registered before the check: an `end_switch` after it wakes this waiter.
        switched.as_mut().enable();
        if self.0.switching.load(Ordering::SeqCst) {
            switched.await;
        }
    }
}

fn enter(g: &Arc<Gate>) -> Result<GateGuard, GateClosed> {
    g.inflight.fetch_add(1, Ordering::SeqCst);
    let guard = GateGuard(g.clone());
    if g.closed.load(Ordering::SeqCst) {
        drop(guard);
        return Err(GateClosed(g.clone()));
    }
    Ok(guard)
}

/// Reopens gates after a failed reshard (nothing was changed); waiting puts route again.
fn reopen_gates(gates: &[Arc<Gate>]) {
    for g in gates {
        g.closed.store(false, Ordering::SeqCst);
        g.end_switch();
    }
}

impl Service {
    /// Enters the gate of shard `sh` (of a stream snapshot), or says that it is closing or
    /// closed; no lock is taken.
    pub(crate) fn enter_gate(&self, sh: &ShardMeta) -> Result<GateGuard, GateClosed> {
        enter(&sh.gate)
    }

    /// Closes gates and waits until no append is in flight in any of them (at most
    /// `CLOSE_DRAIN_MS_MAX`; then they reopen and the reshard fails). Blocks the thread: only
    /// the blocking pool and the background thread call it.
    fn close_gates(&self, gates: &[Arc<Gate>]) -> Result<(), ServiceError> {
        for g in gates {
            g.switching.store(true, Ordering::SeqCst);
            g.closed.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + Duration::from_millis(CLOSE_DRAIN_MS_MAX);
        for g in gates {
            let mut held = g.drained.lock();
            while g.inflight.load(Ordering::SeqCst) > 0 {
                if g.drained_cv.wait_until(&mut held, deadline).timed_out()
                    && g.inflight.load(Ordering::SeqCst) > 0
                {
                    drop(held);
                    reopen_gates(gates);
                    return Err(ServiceError::internal(
                        "Appends to the shards being closed did not finish in time; nothing was changed. Retry.",
                    ));
                }
            }
        }
        Ok(())
    }

    /// A resharding call's outcome: with `--update-stream-ms 0` the reshard commits now;
    /// otherwise the stream goes UPDATING with its old shards and `step` waits in
    /// `pending_reshard` until `finish_pending_reshard` applies it when UPDATING ends. `next` is
    /// `old` after the steps (which checked them), with any other change of the call (e.g.
    /// `scalings_ms`); its shards are only kept when committing now.
    pub(crate) fn reshard_or_defer(
        &self,
        st: &mut StateGuard<'_>,
        old: &StreamMeta,
        next: StreamMeta,
        counters: Counters,
        step: PendingStep,
    ) -> Result<(), ServiceError> {
        if self.cfg.update_stream_ms == 0 {
            self.commit_reshard(st, old, next, counters, false)?;
            return Ok(());
        }
        let mut deferred = next;
        deferred.shards = old.shards.clone();
        deferred.pending_reshard.push(step);
        deferred.status = StreamStatus::Updating;
        deferred.status_until_ms = self.clock.now_ms() + self.cfg.update_stream_ms as i64;
        self.save(st, deferred)?;
        Ok(())
    }

    /// Applies the steps waiting in `s.pending_reshard` and makes the stream ACTIVE. Closing the
    /// parents waits for their appends in flight, so only callers that may block a thread (the
    /// tick thread, control-plane calls) call this.
    pub(crate) fn finish_pending_reshard(
        &self,
        st: &mut StateGuard<'_>,
        s: &StreamMeta,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_ms();
        let mut next = s.clone();
        let mut counters = st.counters.clone();
        next.pending_reshard.clear();
        next.status = StreamStatus::Active;
        for step in &s.pending_reshard {
            let applied = match step {
                PendingStep::Split { shard, at } => match HashKey::parse(at) {
                    Ok(at) => apply(&mut next, Op::Split { shard: *shard, at }, now, &mut counters),
                    Err(_) => Err(OpError::KeyOutside),
                },
                PendingStep::Merge { shard, adjacent } => {
                    apply(&mut next, Op::Merge { shard: *shard, adjacent: *adjacent }, now, &mut counters)
                }
                PendingStep::Scale { target } => {
                    scale_uniformly(&mut next, *target, now, &mut counters).map(|_| ())
                }
            };
            if let Err(e) = applied {
                // Cannot happen (the call checked the step and the shards did not change while
                // UPDATING); end UPDATING without the reshard rather than retry forever.
                tracing::error!(stream = %s.name, ?step, error = ?e, "a pending reshard no longer applies; dropped");
                let mut unchanged = s.clone();
                unchanged.pending_reshard.clear();
                unchanged.status = StreamStatus::Active;
                self.save(st, unchanged)?;
                return Ok(());
            }
        }
        self.commit_reshard(st, s, next, counters, false)?;
        tracing::info!(stream = %s.name, steps = s.pending_reshard.len(), "reshard applied at the end of UPDATING");
        Ok(())
    }

    /// Commits `next` (`old` after `apply` steps, with `counters` advanced by them): closes the
    /// parents, records their ends, creates the new shards' logs, commits and publishes.
    /// `updating` puts the stream in UPDATING for `update_stream_ms`.
    pub(crate) fn commit_reshard(
        &self,
        st: &mut StateGuard<'_>,
        old: &StreamMeta,
        mut next: StreamMeta,
        counters: Counters,
        updating: bool,
    ) -> Result<Arc<StreamMeta>, ServiceError> {
        let now = self.clock.now_ms();
        let first_new = old.next_shard_index();
        let was_open: HashMap<u32, u64> =
            old.shards.iter().filter(|sh| sh.is_open()).map(|sh| (sh.index, sh.log_id)).collect();
        let closing: Vec<u64> = next
            .shards
            .iter()
            .filter(|sh| sh.closed.is_some() && was_open.contains_key(&sh.index))
            .map(|sh| sh.log_id)
            .collect();
        let created: Vec<u64> =
            next.shards.iter().filter(|sh| sh.index >= first_new).map(|sh| sh.log_id).collect();
        let gates: Vec<Arc<Gate>> =
            old.shards.iter().filter(|sh| closing.contains(&sh.log_id)).map(|sh| sh.gate.clone()).collect();
        self.close_gates(&gates)?;
        let undo = |svc: &Service| {
            reopen_gates(&gates);
            for id in &created {
                let _ = wait(svc.log.delete(LogId(*id)));
            }
        };
        for sh in next.shards.iter_mut() {
            let Some(c) = sh.closed.as_mut() else { continue };
            if was_open.contains_key(&sh.index) {
                match wait(self.log.tip(LogId(sh.log_id))) {
                    Ok(tip) => c.end_seq_index = tip,
                    Err(e) => {
                        undo(self);
                        tracing::error!(shard = %sh.id(), error = %e, "cannot read the end of a shard");
                        return Err(ServiceError::internal(format!(
                            "Cannot read the end of shard {} ({}); nothing was changed. Retry.",
                            sh.id(),
                            e.client_message()
                        )));
                    }
                }
            } else if sh.index >= first_new {
                // An intermediate shard of UpdateShardCount: closed before any write reached it.
                c.end_seq_index = 0;
            }
        }
        let logs: Vec<(LogId, u64)> = created.iter().map(|id| (LogId(*id), FIRST_RECORD_SEQ_INDEX)).collect();
        if let Err(e) = wait(self.log.create(&logs)) {
            undo(self);
            tracing::error!(error = %e, "cannot create the new shards' logs");
            return Err(ServiceError::internal(format!(
                "The server could not create the new shards' logs ({}). Nothing was changed; retry.",
                e.client_message()
            )));
        }
        if updating && self.cfg.update_stream_ms > 0 {
            next.status = StreamStatus::Updating;
            next.status_until_ms = now + self.cfg.update_stream_ms as i64;
        }
        if let Err(e) = self.store.commit(&Change {
            put_streams: &[&next],
            counters: Some(&counters),
            ..Default::default()
        }) {
            undo(self);
            return Err(meta_failure(&e));
        }
        st.counters = counters;
        let next = Arc::new(next);
        st.streams.insert(next.name.clone(), next.clone());
        // Readers see the children from here on; then the puts waiting at the parents' gates
        // route again.
        st.publish();
        for g in &gates {
            g.end_switch();
        }
        // The parents take no more records. Sealing wakes their subscriptions, which deliver
        // the shard end now, not at their next idle event: KCL finishes the parent and starts
        // the children on that event. (Their gates are closed and drained: nothing is in flight.)
        for id in &closing {
            if let Err(e) = wait(self.log.seal(LogId(*id))) {
                tracing::error!(stream = %next.name, log_id = *id, error = %e, "cannot seal a closed shard's log");
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(n: u32) -> (StreamMeta, Counters) {
        let mut c = Counters { next_incarnation: 2, next_log_id: 1 };
        let shards = HashKeyRange::even_split(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                c.next_log_id += 1;
                ShardMeta {
                    index: i as u32,
                    parent: None,
                    adjacent_parent: None,
                    start_hash: r.start.to_string(),
                    end_hash: r.end.to_string(),
                    created_ms: 0,
                    log_id: c.next_log_id - 1,
                    closed: None,
                    range_cache: Default::default(),
                    metrics: Default::default(),
                    gate: Default::default(),
                }
            })
            .collect();
        let s = StreamMeta::for_test("s", shards);
        (s, c)
    }

    /// Open shards tile [0, 2^128) exactly once; indexes and log ids are unique; lineage points
    /// at closed shards with smaller indexes.
    fn check_tiling(s: &StreamMeta) {
        let open = open_by_range(s);
        assert!(!open.is_empty());
        assert_eq!(open[0].range().start, HashKey::MIN);
        assert_eq!(open.last().unwrap().range().end, HashKey::MAX);
        for w in open.windows(2) {
            assert_eq!(w[0].range().end.0.checked_add(1), Some(w[1].range().start.0));
        }
        let mut idx: Vec<u32> = s.shards.iter().map(|sh| sh.index).collect();
        let sorted = idx.windows(2).all(|w| w[0] < w[1]);
        assert!(sorted, "shards stay in index order");
        idx.dedup();
        assert_eq!(idx.len(), s.shards.len());
        let mut logs: Vec<u64> = s.shards.iter().map(|sh| sh.log_id).collect();
        logs.sort_unstable();
        logs.dedup();
        assert_eq!(logs.len(), s.shards.len());
        for sh in &s.shards {
            for p in [sh.parent, sh.adjacent_parent].into_iter().flatten() {
                assert!(p < sh.index);
                assert!(s.shard(p).unwrap().closed.is_some());
            }
        }
    }

    fn routes_once(s: &StreamMeta, key: HashKey) {
        let n = s.shards.iter().filter(|sh| sh.is_open() && sh.range().contains(key)).count();
        assert_eq!(n, 1, "key {key} routed to {n} open shards");
        assert!(s.route(key).is_some());
    }

    #[derive(Clone, Debug)]
    enum Step {
        Split(usize, u128),
        Merge(usize),
        Scale(u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<usize>(), any::<u128>()).prop_map(|(i, k)| Step::Split(i, k)),
            any::<usize>().prop_map(Step::Merge),
            (1u32..40).prop_map(Step::Scale),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_reshards_keep_an_exact_tiling(
            initial in 1u32..8,
            steps in proptest::collection::vec(step(), 1..25),
            keys in proptest::collection::vec(any::<u128>(), 16),
        ) {
            let (mut s, mut c) = stream(initial);
            for (t, st) in steps.into_iter().enumerate() {
                let now = t as i64;
                let open = open_by_range(&s).iter().map(|sh| (sh.index, sh.range())).collect::<Vec<_>>();
                match st {
                    Step::Split(i, k) => {
                        let (index, r) = open[i % open.len()];
                        let width = r.end.0 - r.start.0;
                        if width == 0 { continue; }
                        let at = HashKey(r.start.0 + 1 + k % width);
                        apply(&mut s, Op::Split { shard: index, at }, now, &mut c).unwrap();
                    }
                    Step::Merge(i) => {
                        if open.len() < 2 { continue; }
                        let j = i % (open.len() - 1);
                        // Either order of the pair is a valid merge.
                        let (a, b) = if i % 2 == 0 { (open[j].0, open[j + 1].0) } else { (open[j + 1].0, open[j].0) };
                        apply(&mut s, Op::Merge { shard: a, adjacent: b }, now, &mut c).unwrap();
                    }
                    Step::Scale(target) => {
                        scale_uniformly(&mut s, target, now, &mut c).unwrap();
                        prop_assert_eq!(s.open_shard_count(), target as u64);
                        let want = HashKeyRange::even_split(target);
                        let got: Vec<HashKeyRange> = open_by_range(&s).iter().map(|sh| sh.range()).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                check_tiling(&s);
                for k in &keys {
                    routes_once(&s, HashKey(*k));
                }
                for k in [0, u128::MAX] {
                    routes_once(&s, HashKey(k));
                }
            }
        }
    }

    #[test]
    fn non_adjacent_shards_do_not_merge() {
        let (mut s, mut c) = stream(3);
        assert_eq!(apply(&mut s, Op::Merge { shard: 0, adjacent: 2 }, 1, &mut c), Err(OpError::NotAdjacent));
        assert_eq!(
            apply(&mut s, Op::Split { shard: 0, at: HashKey(0) }, 1, &mut c),
            Err(OpError::KeyOutside)
        );
        apply(&mut s, Op::Merge { shard: 1, adjacent: 0 }, 1, &mut c).unwrap();
        assert_eq!(apply(&mut s, Op::Split { shard: 0, at: HashKey(5) }, 1, &mut c), Err(OpError::Closed(0)));
        let child = s.shard(3).unwrap();
        assert_eq!((child.parent, child.adjacent_parent), (Some(1), Some(0)));
        assert_eq!(child.range().start, HashKey::MIN);
    }
}
