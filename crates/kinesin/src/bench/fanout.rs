//! The `fanout` workload: enhanced fan-out push latency.
//!
//! A consumer is registered on the stream and subscribed to shard 0 (SubscribeToShard from
//! LATEST, on its own HTTP/1.1 connection; the response body is decoded frame by frame with
//! `kinesin_wire::eventstream::decode_message`, CRCs checked). Writers then send PutRecord, one
//! record per call, each with its index and send time in the data — one at a time (`--rate 0`,
//! one writer) or on a steady schedule (`--rate N`: record i is sent at start + i/N, by up to
//! `--connections` writers so that a slow call does not hold the schedule back). Per record:
//! the time PutRecord's 200 arrived and the time the record arrived in the subscription.
//! Reported: ack-to-event (from the 200 to the event; negative values, a push that beat the
//! response to the client, count as 0) and send-to-event. A subscription that ends (AWS and
//! kinesin end them after 5 minutes) is renewed from its last ContinuationSequenceNumber.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::StatusCode;
use kinesin_wire::eventstream::decode_message;
use serde::Deserialize;

use super::{push_sample, Budget, Conn, Counters, FirstError, Target, B64, LATENCY_HEADER_BYTES};

/// Records a fan-out run sends when `--records` is not given.
pub(super) const FANOUT_RECORDS_DEFAULT: u64 = 5_000;
/// Most records one fan-out run tracks (two u64 timestamps each).
pub(super) const FANOUT_RECORDS_MAX: u64 = 10_000_000;
/// The consumer the workload registers (re-used when it exists).
const CONSUMER_NAME: &str = "kinesin-bench-fanout";
/// How long to wait for the consumer to become ACTIVE.
const CONSUMER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the subscriber waits for the last records after the writers stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Renewals refused (e.g. the previous subscription is still winding down) before giving up.
const RESUBSCRIBE_ATTEMPTS_MAX: u32 = 50;
/// Pause between refused renewals.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(200);
/// Bytes buffered from the event stream before a message must have completed.
const EVENT_BUFFER_BYTES_MAX: usize = 32 * 1024 * 1024;

/// What a fan-out run measured.
pub(super) struct FanoutResult {
    /// PutRecord latencies, µs.
    pub put_us: Vec<u32>,
    /// From PutRecord's 200 to the record's event, µs (clamped at 0).
    pub ack_to_event_us: Vec<u32>,
    /// From PutRecord's send to the record's event, µs.
    pub send_to_event_us: Vec<u32>,
    /// Records whose event arrived before their PutRecord's 200 was read.
    pub events_before_ack: u64,
    /// Acknowledged records never seen in the subscription.
    pub missing: u64,
    /// SubscribeToShard calls that returned 200.
    pub subscriptions: u64,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Records")]
    records: Vec<EventRecord>,
    #[serde(rename = "ContinuationSequenceNumber")]
    continuation_sequence_number: String,
}

#[derive(Deserialize)]
struct EventRecord {
    #[serde(rename = "Data")]
    data: String,
}

/// Registers (or finds) the bench consumer on `stream` and waits until it is ACTIVE.
async fn consumer_arn(conn: &mut Conn, stream: &str) -> Result<String> {
    let d = conn.ok("DescribeStreamSummary", serde_json::json!({"StreamName": stream})).await?;
    let stream_arn = d["StreamDescriptionSummary"]["StreamARN"]
        .as_str()
        .ok_or_else(|| anyhow!("DescribeStreamSummary: no StreamARN"))?
        .to_string();
    let body = serde_json::json!({"StreamARN": stream_arn, "ConsumerName": CONSUMER_NAME});
    let (status, resp) = conn.call("RegisterStreamConsumer", Bytes::from(body.to_string())).await?;
    if status != StatusCode::OK && !String::from_utf8_lossy(&resp).contains("ResourceInUseException") {
        bail!("RegisterStreamConsumer: HTTP {status}: {}", String::from_utf8_lossy(&resp));
    }
    let deadline = Instant::now() + CONSUMER_ACTIVE_TIMEOUT;
    loop {
        let d = conn.ok("DescribeStreamConsumer", body.clone()).await?;
        let c = &d["ConsumerDescription"];
        if c["ConsumerStatus"] == "ACTIVE" {
            return c["ConsumerARN"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no ConsumerARN"));
        }
        if Instant::now() > deadline {
            bail!(
                "consumer {CONSUMER_NAME} is still {} after {CONSUMER_ACTIVE_TIMEOUT:?}",
                c["ConsumerStatus"]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Shared between writers and the subscriber: per record index, when its 200 and its event
/// arrived (ns since `epoch` + 1; 0 = not yet).
struct Marks {
    epoch: Instant,
    acked_ns: Vec<AtomicU64>,
    arrived_ns: Vec<AtomicU64>,
    sent_ns: Vec<AtomicU64>,
}

impl Marks {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }
}

pub(super) struct FanoutJob {
    pub target: Arc<Target>,
    pub stream: String,
    pub shard: String,
    pub record_bytes: usize,
    pub records: u64,
    /// Records per second; 0: one at a time, as fast as they are acknowledged.
    pub rate: u64,
    pub writers: usize,
}

pub(super) async fn run_fanout(
    job: FanoutJob,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
    first_error: FirstError,
) -> Result<FanoutResult> {
    let FanoutJob { target, stream, shard, record_bytes, records, rate, writers } = job;
    let mut setup = Conn::new(target.clone());
    let consumer = consumer_arn(&mut setup, &stream).await?;
    eprintln!("consumer {consumer}: ACTIVE; subscribing to {shard}");
    let n = records as usize;
    let marks = Arc::new(Marks {
        epoch: Instant::now(),
        acked_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
        arrived_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
        sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
    });
    let acked = Arc::new(AtomicU64::new(0));
    let writers_done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let subscriber = tokio::spawn(subscribe_loop(
        target.clone(),
        consumer,
        shard,
        marks.clone(),
        acked.clone(),
        writers_done.clone(),
        counters.clone(),
        ready_tx,
    ));
    // Writers start once the subscription delivered its first event: LATEST is fixed by then.
    if ready_rx.await.is_err() {
        return Err(match subscriber.await? {
            Err(e) => e,
            Ok(_) => anyhow::anyhow!("the subscription ended before its first event"),
        });
    }

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers = if rate == 0 { 1 } else { writers.max(1) };
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (target, stream, marks, acked, next, counters, budget, first_error) = (
            target.clone(),
            stream.clone(),
            marks.clone(),
            acked.clone(),
            next.clone(),
            counters.clone(),
            budget.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut put_us = Vec::new();
            let mut data = vec![0u8; record_bytes.max(LATENCY_HEADER_BYTES)];
            loop {
                if budget.claim(1) == 0 {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= records {
                    break;
                }
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t0 = Instant::now();
                let sent = marks.now_ns();
                data[0..8].copy_from_slice(&i.to_le_bytes());
                data[8..16].copy_from_slice(&sent.to_le_bytes());
                let body = serde_json::json!({
                    "StreamName": stream,
                    "PartitionKey": format!("k{i}"),
                    "Data": B64.encode(&data),
                });
                let result = conn.call("PutRecord", Bytes::from(body.to_string())).await;
                let now = marks.now_ns();
                push_sample(&mut put_us, t0.elapsed());
                counters.requests.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok((StatusCode::OK, _)) => {
                        marks.sent_ns[i as usize].store(sent, Ordering::Relaxed);
                        marks.acked_ns[i as usize].store(now, Ordering::Relaxed);
                        acked.fetch_add(1, Ordering::Relaxed);
                        counters.record_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Ok((status, body)) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().get_or_insert(format!(
                            "PutRecord: HTTP {status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        ));
                    }
                    Err(e) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().get_or_insert(format!("PutRecord: {e:#}"));
                    }
                }
            }
            put_us
        }));
    }
    let mut put_us = Vec::new();
    for t in tasks {
        put_us.extend(t.await?);
    }
    writers_done.store(true, Ordering::Relaxed);
    let subscriptions = subscriber.await??;

    let mut result = FanoutResult {
        put_us,
        ack_to_event_us: Vec::new(),
        send_to_event_us: Vec::new(),
        events_before_ack: 0,
        missing: 0,
        subscriptions,
    };
    for i in 0..n {
        let acked = marks.acked_ns[i].load(Ordering::Relaxed);
        if acked == 0 {
            continue;
        }
        let arrived = marks.arrived_ns[i].load(Ordering::Relaxed);
        if arrived == 0 {
            result.missing += 1;
            continue;
        }
        if arrived < acked {
            result.events_before_ack += 1;
        }
        let sent = marks.sent_ns[i].load(Ordering::Relaxed);
        push_sample(&mut result.ack_to_event_us, Duration::from_nanos(arrived.saturating_sub(acked)));
        push_sample(&mut result.send_to_event_us, Duration::from_nanos(arrived.saturating_sub(sent)));
    }
    Ok(result)
}

/// Subscribes, and renews each subscription that ends, until the writers are done and every
/// acknowledged record arrived (or `DRAIN_TIMEOUT` passed). Returns the number of subscriptions.
#[allow(clippy::too_many_arguments)]
async fn subscribe_loop(
    target: Arc<Target>,
    consumer: String,
    shard: String,
    marks: Arc<Marks>,
    acked: Arc<AtomicU64>,
    writers_done: Arc<AtomicBool>,
    counters: Arc<Counters>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<u64> {
    let mut ready = Some(ready);
    let mut position = serde_json::json!({"Type": "LATEST"});
    let mut subscriptions = 0u64;
    let mut refused = 0u32;
    let mut received = 0u64;
    let mut done_at: Option<Instant> = None;
    let finished = |received: u64, done_at: &mut Option<Instant>| {
        if !writers_done.load(Ordering::Relaxed) {
            return false;
        }
        let at = *done_at.get_or_insert_with(Instant::now);
        received >= acked.load(Ordering::Relaxed) || at.elapsed() > DRAIN_TIMEOUT
    };
    loop {
        let mut conn = Conn::new(target.clone());
        let body =
            serde_json::json!({"ConsumerARN": consumer, "ShardId": shard, "StartingPosition": position});
        let resp = conn.stream_call("SubscribeToShard", Bytes::from(body.to_string())).await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let text = resp.into_body().collect().await?.to_bytes();
            let text = String::from_utf8_lossy(&text);
            refused += 1;
            if text.contains("ResourceInUseException") && refused < RESUBSCRIBE_ATTEMPTS_MAX {
                tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                continue;
            }
            bail!("SubscribeToShard: HTTP {status}: {text}");
        }
        refused = 0;
        subscriptions += 1;
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        let mut last_continuation: Option<String> = None;
        'frames: loop {
            // A drain check every 100 ms even when no frame comes.
            let frame = match tokio::time::timeout(Duration::from_millis(100), body.frame()).await {
                Err(_) => {
                    if finished(received, &mut done_at) {
                        return Ok(subscriptions);
                    }
                    continue;
                }
                Ok(None) => break 'frames, // the subscription ended: renew it
                Ok(Some(frame)) => frame.context("SubscribeToShard: event stream")?,
            };
            let Ok(data) = frame.into_data() else { continue };
            let now = marks.now_ns();
            buf.extend_from_slice(&data);
            if buf.len() > EVENT_BUFFER_BYTES_MAX {
                bail!("SubscribeToShard: {} bytes buffered without a whole message", buf.len());
            }
            while let Some((msg, used)) = decode_message(&buf)? {
                let _ = buf.split_to(used);
                match msg.header_str(":message-type") {
                    Some("event") => {}
                    Some("exception") => bail!(
                        "SubscribeToShard: {}: {}",
                        msg.header_str(":exception-type").unwrap_or("exception"),
                        String::from_utf8_lossy(&msg.payload)
                    ),
                    other => bail!("SubscribeToShard: unexpected message type {other:?}"),
                }
                if msg.header_str(":event-type") != Some("SubscribeToShardEvent") {
                    continue; // initial-response
                }
                let ev: Event =
                    serde_json::from_slice(&msg.payload).context("SubscribeToShardEvent payload")?;
                for r in &ev.records {
                    let data = B64.decode(&r.data).context("record data is not base64")?;
                    if data.len() < LATENCY_HEADER_BYTES {
                        continue;
                    }
                    let i = super::le_u64(&data[0..8]) as usize;
                    if let Some(slot) = marks.arrived_ns.get(i) {
                        if slot.swap(now, Ordering::Relaxed) == 0 {
                            received += 1;
                            counters.records.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                last_continuation = Some(ev.continuation_sequence_number);
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            if finished(received, &mut done_at) {
                return Ok(subscriptions);
            }
        }
        if finished(received, &mut done_at) {
            return Ok(subscriptions);
        }
        // Renew after the last record seen (or from the same position if none came).
        if let Some(seq) = last_continuation {
            position = serde_json::json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq});
        }
    }
}
