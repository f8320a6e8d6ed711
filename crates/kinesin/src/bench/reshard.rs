//! The `reshard-latency` workload: what a reshard costs the puts around it.
//!
//! Two streams of `--shards` shards each: A (`--stream`, the one resharded) and B (A's name with
//! `-other`). Half of `--connections` (at least one each) send PutRecords to A, the other half to
//! B, back to back, for the whole run. The run is cut in thirds: nothing else happens in the
//! first and the last; in the middle one a controller repeats a reshard cycle on A — SplitShard
//! of the open shard with the widest hash range at its middle, wait until the stream is ACTIVE,
//! then MergeShards of the two children, wait until ACTIVE — while the middle third lasts (at
//! least one cycle, at most `RESHARD_CYCLES_MAX`). A reshard window runs from sending the call to
//! the first DescribeStreamSummary that says ACTIVE. If the cycles outlast the run, the load goes
//! on until they end.
//!
//! Every PutRecords call is timed with its start and end. A call that overlaps a reshard window
//! counts as "during", any other as "outside". Reported, per stream (A: the same stream, B:
//! another stream): p50, p99 and max latency during and outside, and how many calls each figure
//! is over; plus the reshard calls' own time to ACTIVE.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use hyper::StatusCode;

use super::{account_put, push_sample, put_bodies, Conn, Counters, FirstError, Target, LATENCY_SAMPLES_MAX};

/// Most split+merge cycles one run makes (each leaves three closed shards behind).
pub(super) const RESHARD_CYCLES_MAX: u32 = 200;
/// Pause between DescribeStreamSummary calls while waiting for ACTIVE.
const STATUS_POLL: Duration = Duration::from_millis(2);
/// How long one reshard may take to reach ACTIVE before the run gives up.
const RESHARD_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Reshard calls refused as "in use" or "limit exceeded" before the run gives up.
const RESHARD_RETRIES_MAX: u32 = 250;
/// Pause before retrying a refused reshard call.
const RESHARD_RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// The suffix of the second stream's name.
pub(super) const OTHER_STREAM_SUFFIX: &str = "-other";

pub(super) struct ReshardJob {
    pub target: Arc<Target>,
    /// The stream that is resharded (A).
    pub stream: String,
    /// The stream that is not (B).
    pub other: String,
    pub batch: usize,
    pub record_bytes: usize,
    pub connections: usize,
    pub duration: Duration,
    pub seed: u64,
}

/// Latencies (µs, sorted) of the calls that overlapped a reshard window and of the others.
#[derive(Default)]
pub(super) struct Split {
    pub during_us: Vec<u32>,
    pub outside_us: Vec<u32>,
}

pub(super) struct ReshardResult {
    /// Stream A, the one resharded.
    pub same: Split,
    /// Stream B.
    pub other: Split,
    /// Every call's latency (µs), both streams.
    pub all_us: Vec<u32>,
    /// SplitShard and MergeShards calls made.
    pub reshards: u64,
    /// Each reshard's time from its call to ACTIVE, µs (sorted).
    pub reshard_us: Vec<u32>,
    /// The windows' total length.
    pub window: Duration,
    /// From the first call to the last answer.
    pub elapsed: Duration,
}

/// One timed call, µs since the run's epoch.
#[derive(Clone, Copy)]
struct Timed {
    start_us: u64,
    end_us: u64,
}

fn us_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

pub(super) async fn run_reshard(
    job: ReshardJob,
    counters: Arc<Counters>,
    first_error: FirstError,
) -> Result<ReshardResult> {
    let ReshardJob { target, stream, other, batch, record_bytes, connections, duration, seed } = job;
    let same_bodies = Arc::new(put_bodies(&stream, batch, record_bytes, seed));
    let other_bodies = Arc::new(put_bodies(&other, batch, record_bytes, seed.wrapping_add(1)));
    let per_stream = (connections / 2).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let spawn_loaders = |bodies: &Arc<Vec<Bytes>>| {
        (0..per_stream)
            .map(|worker| {
                tokio::spawn(put_loop(
                    target.clone(),
                    bodies.clone(),
                    batch,
                    record_bytes,
                    epoch,
                    stop.clone(),
                    counters.clone(),
                    first_error.clone(),
                    worker,
                ))
            })
            .collect::<Vec<_>>()
    };
    let same_tasks = spawn_loaders(&same_bodies);
    let other_tasks = spawn_loaders(&other_bodies);

    tokio::time::sleep(duration / 3).await;
    let cycles = reshard_cycles(target.clone(), &stream, epoch, epoch + duration * 2 / 3).await;
    tokio::time::sleep_until((epoch + duration).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut same_calls = Vec::new();
    for t in same_tasks {
        same_calls.extend(t.await?);
    }
    let mut other_calls = Vec::new();
    for t in other_tasks {
        other_calls.extend(t.await?);
    }
    let elapsed = epoch.elapsed();
    let (windows, reshards) = cycles?;

    let mut all_us = Vec::with_capacity(same_calls.len() + other_calls.len());
    for c in same_calls.iter().chain(&other_calls) {
        push_sample(&mut all_us, Duration::from_micros(c.end_us - c.start_us));
    }
    let mut reshard_us: Vec<u32> =
        windows.iter().map(|w| (w.end_us - w.start_us).min(u64::from(u32::MAX)) as u32).collect();
    reshard_us.sort_unstable();
    let window = Duration::from_micros(windows.iter().map(|w| w.end_us - w.start_us).sum());
    Ok(ReshardResult {
        same: split_by_windows(&same_calls, &windows),
        other: split_by_windows(&other_calls, &windows),
        all_us,
        reshards,
        reshard_us,
        window,
        elapsed,
    })
}

/// Sorts calls into those that overlapped a window and the others; both lists sorted.
fn split_by_windows(calls: &[Timed], windows: &[Timed]) -> Split {
    let mut out = Split::default();
    for c in calls {
        let overlaps = windows.iter().any(|w| c.start_us < w.end_us && c.end_us > w.start_us);
        let d = Duration::from_micros(c.end_us - c.start_us);
        push_sample(if overlaps { &mut out.during_us } else { &mut out.outside_us }, d);
    }
    out.during_us.sort_unstable();
    out.outside_us.sort_unstable();
    out
}

/// One connection sending PutRecords back to back until `stop`.
#[allow(clippy::too_many_arguments)]
async fn put_loop(
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    batch: usize,
    record_bytes: usize,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    first_error: FirstError,
    worker: usize,
) -> Vec<Timed> {
    let mut conn = Conn::new(target);
    let mut calls = Vec::new();
    let mut i = worker;
    while !stop.load(Ordering::Relaxed) {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        let start_us = us_since(epoch);
        let result = conn.call("PutRecords", body).await;
        let end_us = us_since(epoch);
        if calls.len() < LATENCY_SAMPLES_MAX {
            calls.push(Timed { start_us, end_us });
        }
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = account_put(result, batch, record_bytes, &counters) {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            first_error.lock().get_or_insert(e);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    calls
}

/// An open shard and its hash range.
struct OpenShard {
    id: String,
    start: u128,
    end: u128,
}

/// The stream's open shards (ListShards, every page).
async fn open_shards(conn: &mut Conn, stream: &str) -> Result<Vec<OpenShard>> {
    let mut open = Vec::new();
    let mut req = serde_json::json!({"StreamName": stream});
    loop {
        let page = conn.ok("ListShards", req).await?;
        for s in page["Shards"].as_array().into_iter().flatten() {
            if s["SequenceNumberRange"].get("EndingSequenceNumber").is_some() {
                continue;
            }
            let key = |k: &str| -> Result<u128> {
                s["HashKeyRange"][k]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow!("ListShards: shard without a readable HashKeyRange.{k}: {s}"))
            };
            let id = s["ShardId"].as_str().ok_or_else(|| anyhow!("ListShards: shard without ShardId"))?;
            open.push(OpenShard {
                id: id.to_string(),
                start: key("StartingHashKey")?,
                end: key("EndingHashKey")?,
            });
        }
        match page["NextToken"].as_str() {
            Some(t) => req = serde_json::json!({"NextToken": t}),
            None => break,
        }
    }
    Ok(open)
}

/// Split+merge cycles on `stream` until `until` (at least one). Returns the reshard windows and
/// the number of reshard calls.
async fn reshard_cycles(
    target: Arc<Target>,
    stream: &str,
    epoch: Instant,
    until: Instant,
) -> Result<(Vec<Timed>, u64)> {
    let mut conn = Conn::new(target);
    let mut windows = Vec::new();
    for _ in 0..RESHARD_CYCLES_MAX {
        let open = open_shards(&mut conn, stream).await?;
        let widest = open
            .iter()
            .filter(|s| s.end > s.start)
            .max_by_key(|s| s.end - s.start)
            .ok_or_else(|| anyhow!("stream {stream}: no open shard wide enough to split"))?;
        let at = widest.start + (widest.end - widest.start) / 2 + 1;
        let body = serde_json::json!({
            "StreamName": stream,
            "ShardToSplit": widest.id,
            "NewStartingHashKey": at.to_string(),
        });
        windows.push(timed_reshard(&mut conn, stream, "SplitShard", body, epoch).await?);

        let open = open_shards(&mut conn, stream).await?;
        let child = |start: u128, end: u128| {
            open.iter().find(|s| s.start == start && s.end == end).map(|s| s.id.clone()).ok_or_else(|| {
                anyhow!(
                    "stream {stream}: after SplitShard of {}, no open shard covers {start}..={end}",
                    widest.id
                )
            })
        };
        let (low, high) = (child(widest.start, at - 1)?, child(at, widest.end)?);
        let body = serde_json::json!({
            "StreamName": stream,
            "ShardToMerge": low,
            "AdjacentShardToMerge": high,
        });
        windows.push(timed_reshard(&mut conn, stream, "MergeShards", body, epoch).await?);
        if Instant::now() >= until {
            break;
        }
    }
    let calls = windows.len() as u64;
    Ok((windows, calls))
}

/// Sends one reshard call (retrying while the stream is busy) and waits until the stream is
/// ACTIVE again; returns the window from the first send to ACTIVE.
async fn timed_reshard(
    conn: &mut Conn,
    stream: &str,
    op: &str,
    body: serde_json::Value,
    epoch: Instant,
) -> Result<Timed> {
    let body = Bytes::from(body.to_string());
    let start_us = us_since(epoch);
    let mut refused = 0;
    loop {
        let (status, resp) = conn.call(op, body.clone()).await?;
        if status == StatusCode::OK {
            break;
        }
        let text = String::from_utf8_lossy(&resp);
        let busy = text.contains("ResourceInUseException") || text.contains("LimitExceededException");
        if busy && refused < RESHARD_RETRIES_MAX {
            refused += 1;
            tokio::time::sleep(RESHARD_RETRY_BACKOFF).await;
            continue;
        }
        bail!("{op} on {stream}: HTTP {status}: {text}");
    }
    let deadline = Instant::now() + RESHARD_ACTIVE_TIMEOUT;
    loop {
        let d = conn.ok("DescribeStreamSummary", serde_json::json!({"StreamName": stream})).await?;
        let status = d["StreamDescriptionSummary"]["StreamStatus"].as_str().unwrap_or("").to_string();
        if status == "ACTIVE" {
            break;
        }
        if Instant::now() > deadline {
            bail!("{op} on {stream}: the stream is still {status} after {RESHARD_ACTIVE_TIMEOUT:?}");
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
    Ok(Timed { start_us, end_us: us_since(epoch) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_overlapping_a_window_count_as_during() {
        let t = |start_us, end_us| Timed { start_us, end_us };
        let windows = [t(100, 200), t(300, 310)];
        let calls = [
            t(0, 50),    // before
            t(90, 110),  // straddles the start
            t(150, 160), // inside
            t(199, 250), // straddles the end
            t(200, 300), // touches both edges only: outside
            t(305, 900), // overlaps the second
            t(400, 500), // after
        ];
        let s = split_by_windows(&calls, &windows);
        assert_eq!(s.during_us, vec![10, 20, 51, 595]);
        assert_eq!(s.outside_us, vec![50, 100, 100]);
    }
}
