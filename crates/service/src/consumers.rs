//! Enhanced fan-out: stream consumers (Register / Deregister / Describe / ListStreamConsumers)
//! and SubscribeToShard, which pushes a shard's records to a consumer as soon as they are
//! appended (reference §2.5, §3.11).
//!
//! Consumers live in their stream's document (`StreamMeta::consumers`), so they are committed
//! with it and vanish with it. A subscription is a task that reads the shard's log and sends
//! events into a bounded channel; the server frames them. It wakes on the shard's append
//! notification (`Service::notify_appended`, signalled by PutRecord(s) after each durable
//! append), on a takeover by a newer subscription, or when an idle event is due.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use crate::error::ServiceError;
use kinesin_log::LogId;
use kinesin_storage::{ReadRequest, TipWatch};
use kinesin_wire::error::echo;
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::{ConsumerArn, SequenceNumber, ShardId, StreamArn};
use kinesin_wire::ops::*;
use kinesin_wire::token::{PageToken, ShardIteratorToken};

use crate::meta::{ConsumerMeta, ConsumerStatus, ShardMeta, StreamMeta, StreamStatus};
use crate::{Service, State, StreamTable};

/// Consumers per stream (AWS: 20).
pub const CONSUMERS_PER_STREAM_MAX: usize = 20;
/// Consumers of one stream in CREATING at once (AWS: 5).
pub const CONSUMERS_CREATING_MAX: usize = 5;
/// ListStreamConsumers page size when MaxResults is absent (AWS: 100).
pub const LIST_CONSUMERS_DEFAULT: usize = 100;
/// A subscription ends normally after this long (AWS: 5 minutes).
pub const SUBSCRIPTION_LIFETIME_MS: i64 = 300_000;
/// A subscription sends an event at least this often, records or not (AWS: 5 s).
pub const IDLE_EVENT_INTERVAL_MS: i64 = 5_000;
/// A second subscription for the same consumer and shard within this long is refused.
pub const RESUBSCRIBE_MIN_MS: i64 = 5_000;
/// Bytes (data + partition keys) one subscription delivers per second (AWS: 2 MiB/s).
pub const SUBSCRIPTION_BYTES_PER_SEC: usize = 2 * 1024 * 1024;
/// Records in one event (kinesis-mock: 10,000, as GetRecords).
pub const EVENT_RECORDS_MAX: usize = 10_000;
/// Events queued between a subscription's task and its connection.
const EVENT_QUEUE_MAX: usize = 2;

/// What a subscription sends after `initial-response`.
#[derive(Debug)]
pub enum SubscribeEvent {
    Event(SubscribeToShardEventOut),
    /// The stream ends after this (e.g. ResourceInUseException when a newer subscription took over).
    Exception(ServiceError),
}

/// The live subscription of one consumer to one shard.
pub(crate) struct SubscriptionSlot {
    id: u64,
    started_ms: i64,
    cancel: Arc<Notify>,
    /// Makes the subscription look at its stream again (`wake_subscriptions`).
    wake: Arc<Notify>,
    /// For `/metrics`: the stream and consumer names, and the MillisBehindLatest of the latest
    /// event sent (-1 until the first one).
    stream: String,
    consumer: String,
    millis_behind: Arc<AtomicI64>,
}

impl Service {
    fn consumer_not_found(&self, what: &str, stream: &str) -> ServiceError {
        ServiceError::new(
            ErrorKind::ResourceNotFound,
            format!(
                "Consumer {} under stream {} under account {} not found.",
                echo(what),
                echo(stream),
                self.cfg.account_id
            ),
        )
    }

    fn consumer_out(s: &StreamMeta, stream_arn: &StreamArn, c: &ConsumerMeta) -> ConsumerOut {
        let _ = s;
        ConsumerOut {
            consumer_name: c.name.clone(),
            consumer_arn: c.arn(stream_arn).to_string(),
            consumer_status: c.status.as_str(),
            consumer_creation_timestamp: Timestamp(c.created_ms),
        }
    }

    /// The stream and consumer a ConsumerARN (or StreamARN + ConsumerName) names.
    pub(crate) fn find_consumer(
        &self,
        st: &StreamTable,
        stream_arn: Option<&StreamArn>,
        name: Option<&str>,
        consumer_arn: Option<&ConsumerArn>,
    ) -> Result<(Arc<StreamMeta>, ConsumerMeta), ServiceError> {
        let (stream_arn, name, secs) = match (consumer_arn, stream_arn, name) {
            (Some(arn), given_stream, given_name) => {
                let (sa, n, secs) = (arn.stream(), arn.name(), arn.created_secs());
                if given_stream.is_some_and(|g| g != sa) || given_name.is_some_and(|g| g != n) {
                    return Err(ServiceError::invalid_argument(format!(
                        "ConsumerARN {} does not agree with the StreamARN or ConsumerName given; give the ConsumerARN alone.",
                        echo(arn.as_str())
                    )));
                }
                (sa, n, Some(secs))
            }
            (None, Some(sa), Some(n)) => (sa, n, None),
            _ => {
                return Err(ServiceError::invalid_argument(
                    "Either ConsumerARN or both StreamARN and ConsumerName must be provided to identify the consumer.",
                ))
            }
        };
        let stream = self.resolve_name(None, Some(stream_arn))?;
        let s = st.streams.get(&stream).cloned().ok_or_else(|| self.not_found(&stream))?;
        let c = s
            .consumers
            .iter()
            .find(|c| c.name == name && secs.is_none_or(|secs| c.created_ms.div_euclid(1000) == secs))
            .cloned()
            .ok_or_else(|| {
                self.consumer_not_found(consumer_arn.map_or(name, ConsumerArn::as_str), &stream)
            })?;
        Ok((s, c))
    }

    pub(crate) fn register_stream_consumer(
        &self,
        req: RegisterStreamConsumerInput,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(None, Some(&req.stream_arn))?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = st.streams.get(&name).cloned().ok_or_else(|| self.not_found(&name))?;
        if !matches!(s.status, StreamStatus::Active | StreamStatus::Updating) {
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Stream {name} under account {} is not ACTIVE (it is {}); register consumers once it is.",
                    self.cfg.account_id,
                    s.status.as_str()
                ),
            ));
        }
        if s.consumers.iter().any(|c| c.name == *req.consumer_name) {
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Consumer {} under stream {name} under account {} already exists.",
                    req.consumer_name, self.cfg.account_id
                ),
            ));
        }
        if s.consumers.len() >= CONSUMERS_PER_STREAM_MAX {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Stream {name} under account {} has reached the limit of {CONSUMERS_PER_STREAM_MAX} consumers. Deregister a consumer first.",
                    self.cfg.account_id
                ),
            ));
        }
        if s.consumers.iter().filter(|c| c.status == ConsumerStatus::Creating).count()
            >= CONSUMERS_CREATING_MAX
        {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Stream {name} under account {} already has {CONSUMERS_CREATING_MAX} consumers in CREATING. Retry when one is ACTIVE.",
                    self.cfg.account_id
                ),
            ));
        }
        // A re-registered name must get a new ARN: its seconds must differ from any earlier one,
        // also from consumers already deregistered and gone (else an old ConsumerARN would name
        // the new consumer).
        let mut created_ms = now;
        let last = s.consumers.iter().map(|c| c.created_ms).chain([s.consumer_created_ms_last]).max();
        if let Some(last) = last.filter(|&l| l > 0) {
            if last.div_euclid(1000) >= created_ms.div_euclid(1000) {
                created_ms = (last.div_euclid(1000) + 1) * 1000;
            }
        }
        let creating_ms = self.cfg.create_stream_ms as i64;
        let c = ConsumerMeta {
            name: req.consumer_name.to_string(),
            created_ms,
            status: if creating_ms == 0 { ConsumerStatus::Active } else { ConsumerStatus::Creating },
            status_until_ms: now + creating_ms,
            tags: req.tags.unwrap_or_default(),
        };
        let mut next = (*s).clone();
        next.consumers.push(c.clone());
        next.consumer_created_ms_last = next.consumer_created_ms_last.max(created_ms);
        let s = self.save(&mut st, next)?;
        tracing::info!(stream = %name, consumer = %c.name, "consumer registered");
        Ok(Output::RegisterStreamConsumer { consumer: Self::consumer_out(&s, &req.stream_arn, &c) })
    }

    pub(crate) fn deregister_stream_consumer(&self, req: ConsumerRef) -> Result<Output, ServiceError> {
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let (s, c) = self.find_consumer(
            &st,
            req.stream_arn.as_ref(),
            req.consumer_name.as_deref(),
            req.consumer_arn.as_ref(),
        )?;
        if c.status == ConsumerStatus::Deleting {
            return Ok(Output::Empty);
        }
        let mut next = (*s).clone();
        let deleting_ms = self.cfg.delete_stream_ms as i64;
        if deleting_ms == 0 {
            next.consumers.retain(|x| x.created_ms != c.created_ms || x.name != c.name);
        } else if let Some(x) = next.consumers.iter_mut().find(|x| x.name == c.name) {
            x.status = ConsumerStatus::Deleting;
            x.status_until_ms = now + deleting_ms;
        }
        self.save(&mut st, next)?;
        drop(st);
        tracing::info!(stream = %s.name, consumer = %c.name, "consumer deregistered");
        // Its open subscriptions end now, not at their next idle event.
        self.wake_subscriptions(&s);
        Ok(Output::Empty)
    }

    pub(crate) fn describe_stream_consumer(&self, req: ConsumerRef) -> Result<Output, ServiceError> {
        let st = self.table();
        let (s, c) = self.find_consumer(
            &st,
            req.stream_arn.as_ref(),
            req.consumer_name.as_deref(),
            req.consumer_arn.as_ref(),
        )?;
        let stream_arn = self.stream_arn(&s.name);
        Ok(Output::DescribeStreamConsumer {
            consumer_description: ConsumerDescriptionOut {
                consumer_name: c.name.clone(),
                consumer_arn: c.arn(&stream_arn).to_string(),
                consumer_status: c.status.as_str(),
                consumer_creation_timestamp: Timestamp(c.created_ms),
                stream_arn: stream_arn.to_string(),
            },
        })
    }

    pub(crate) fn list_stream_consumers(
        &self,
        req: ListStreamConsumersInput,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(None, Some(&req.stream_arn))?;
        let now = self.clock.now_ms();
        let s = self.table().streams.get(&name).cloned().ok_or_else(|| self.not_found(&name))?;
        if let Some(ts) = req.stream_creation_timestamp {
            if ts.0.div_euclid(1000) != s.created_ms.div_euclid(1000) {
                return Err(self.not_found(&name));
            }
        }
        // Consumers are listed in registration order; a page resumes after (created_ms, name).
        let after: Option<(i64, String)> = match &req.next_token {
            None => None,
            Some(t) => {
                let t = self.open_page_token(t, now)?;
                if t.stream_incarnation != s.incarnation {
                    return Err(ServiceError::invalid_argument(
                        "NextToken belongs to another stream: pass back the NextToken of the previous response unchanged.",
                    ));
                }
                let (ms, n) = t.after.split_once(':').unwrap_or(("0", ""));
                Some((ms.parse().unwrap_or(0), n.to_string()))
            }
        };
        let limit = req.max_results.map_or(LIST_CONSUMERS_DEFAULT, |m| m.max(1) as usize);
        let mut all: Vec<&ConsumerMeta> = s.consumers.iter().collect();
        all.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
        let rest: Vec<&ConsumerMeta> = all
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|(ms, n)| (c.created_ms, &c.name) > (*ms, n)))
            .collect();
        let stream_arn = self.stream_arn(&s.name);
        let page: Vec<ConsumerOut> =
            rest.iter().take(limit).map(|c| Self::consumer_out(&s, &stream_arn, c)).collect();
        let next_token = if rest.len() > limit {
            let last = rest[limit - 1];
            Some(self.seal_page_token(PageToken {
                stream_incarnation: s.incarnation,
                after: format!("{}:{}", last.created_ms, last.name),
                issued_ms: now,
                extra: Vec::new(),
            })?)
        } else {
            None
        };
        Ok(Output::ListStreamConsumers { consumers: page, next_token })
    }

    /// CREATING consumers whose time is up become ACTIVE; DELETING ones disappear.
    pub(crate) fn tick_consumers(&self, st: &mut State, now: i64) {
        let due: Vec<Arc<StreamMeta>> = st
            .streams
            .values()
            .filter(|s| {
                s.consumers.iter().any(|c| c.status != ConsumerStatus::Active && c.status_until_ms <= now)
            })
            .cloned()
            .collect();
        for s in due {
            let mut next = (*s).clone();
            next.consumers.retain(|c| !(c.status == ConsumerStatus::Deleting && c.status_until_ms <= now));
            for c in &mut next.consumers {
                if c.status == ConsumerStatus::Creating && c.status_until_ms <= now {
                    c.status = ConsumerStatus::Active;
                }
            }
            if let Err(e) = self.save(st, next) {
                tracing::error!(stream = %s.name, error = ?e, "cannot record a consumer status change; will retry");
            }
        }
    }

    /// Wakes every subscription to a shard of `s`, so that each looks at the stream again (after
    /// a deregistration or a deletion: they end at once). Appends and seals wake them through
    /// the shard log's tip watch.
    pub(crate) fn wake_subscriptions(&self, s: &StreamMeta) {
        for slot in self.subscriptions.lock().values() {
            if slot.stream == s.name {
                slot.wake.notify_one();
            }
        }
    }

    /// SubscribeToShard: checks the request (errors here are ordinary error responses) and starts
    /// the subscription, whose events arrive on the returned channel. The caller sends
    /// `initial-response` first.
    pub(crate) async fn subscribe_to_shard(
        self: &Arc<Self>,
        req: SubscribeToShardInput,
    ) -> Result<mpsc::Receiver<SubscribeEvent>, ServiceError> {
        let (s, c) = {
            let st = self.table();
            self.find_consumer(&st, None, None, Some(&req.consumer_arn))?
        };
        if c.status != ConsumerStatus::Active {
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!("Consumer {} is not ACTIVE (it is {}).", req.consumer_arn, c.status.as_str()),
            ));
        }
        // The starting position follows GetShardIterator's rules (and messages) exactly.
        let p = &req.starting_position;
        let it = self
            .get_shard_iterator(GetShardIteratorInput {
                stream_name: kinesin_wire::ids::StreamName::parse(s.name.clone()),
                stream_arn: None,
                shard_id: req.shard_id.clone(),
                shard_iterator_type: p.r#type,
                starting_sequence_number: p.sequence_number.clone(),
                timestamp: p.timestamp,
                dry_run: None,
            })
            .await
            .inspect_err(|e| {
                if e.kind() == ErrorKind::ProvisionedThroughputExceeded {
                    s.metrics.subscribe_rate_exceeded.add(1);
                }
            })?;
        let Output::GetShardIterator { shard_iterator } = it else {
            return Err(ServiceError::internal("GetShardIterator answered something else"));
        };
        let it = ShardIteratorToken::open(&shard_iterator, &self.token_key)
            .map_err(|_| ServiceError::internal("a fresh iterator did not open"))?;
        let shard = ShardId(it.shard_index);
        let sh = s.shard(shard.0).ok_or_else(|| self.shard_not_found(&s.name, shard))?;
        let now = self.clock.now_ms();
        let key = (req.consumer_arn.to_string(), shard.0);
        let cancel = Arc::new(Notify::new());
        let wake = Arc::new(Notify::new());
        let tip = self.log.watch(LogId(sh.log_id)).map_err(|e| {
            ServiceError::internal(format!(
                "Reading shard {} of stream {} failed ({e}). Retry.",
                sh.id(),
                s.name
            ))
        })?;
        let millis_behind = Arc::new(AtomicI64::new(-1));
        let id: u64 = rand::random();
        {
            let mut subs = self.subscriptions.lock();
            if let Some(old) = subs.get(&key) {
                if now - old.started_ms < RESUBSCRIBE_MIN_MS {
                    s.metrics.subscribe_rate_exceeded.add(1);
                    return Err(ServiceError::new(
                        ErrorKind::ResourceInUse,
                        format!(
                            "Another active subscription exists for consumer {} on shard {shard}. Subscribe again {} ms after the previous call.",
                            req.consumer_arn, RESUBSCRIBE_MIN_MS
                        ),
                    ));
                }
                old.cancel.notify_one();
            }
            subs.insert(
                key.clone(),
                SubscriptionSlot {
                    id,
                    started_ms: now,
                    cancel: cancel.clone(),
                    wake: wake.clone(),
                    stream: s.name.clone(),
                    consumer: c.name.clone(),
                    millis_behind: millis_behind.clone(),
                },
            );
        }
        let (tx, rx) = mpsc::channel(EVENT_QUEUE_MAX);
        let svc = self.clone();
        let sub = Subscription {
            consumer_arn: req.consumer_arn,
            consumer_created_ms: c.created_ms,
            incarnation: s.incarnation,
            shard: shard.0,
            position: it.position,
            wake,
            cancel,
            millis_behind,
        };
        tokio::spawn(async move {
            svc.run_subscription(&sub, tip, &tx).await;
            let mut subs = svc.subscriptions.lock();
            if subs.get(&key).is_some_and(|slot| slot.id == id) {
                subs.remove(&key);
            }
        });
        Ok(rx)
    }

    /// The current snapshot of the subscribed stream, if it and the consumer still exist.
    async fn subscription_stream(&self, sub: &Subscription) -> Option<Arc<StreamMeta>> {
        let st = self.table();
        let s = st.by_incarnation.get(&sub.incarnation).and_then(|n| st.streams.get(n))?.clone();
        if s.status == StreamStatus::Deleting {
            return None;
        }
        s.consumers
            .iter()
            .any(|c| {
                c.created_ms == sub.consumer_created_ms
                    && c.status == ConsumerStatus::Active
                    && sub.consumer_arn.name() == c.name
                    && sub.consumer_arn.created_secs() == c.created_ms.div_euclid(1000)
            })
            .then_some(s)
    }

    async fn run_subscription(
        &self,
        sub: &Subscription,
        mut tip: TipWatch,
        tx: &mpsc::Sender<SubscribeEvent>,
    ) {
        let started = self.clock.now_ms();
        let mut position = sub.position;
        // As if an event had just fallen due: the first one goes out at once (no i64::MIN
        // arithmetic, which overflows).
        let mut last_event_ms = started - IDLE_EVENT_INTERVAL_MS;
        let mut window_start_ms = started;
        let mut window_bytes = 0usize;
        // False once the shard's log is gone: then only the stream check and the timers wake us.
        let mut tip_alive = true;
        loop {
            let now = self.clock.now_ms();
            if now - started >= SUBSCRIPTION_LIFETIME_MS {
                return;
            }
            // Marked seen before reading, so an append after the read still wakes us.
            tip.seen();
            let Some(s) = self.subscription_stream(sub).await else {
                return;
            };
            let Some(sh) = s.shard(sub.shard) else { return };
            if now - window_start_ms >= 1000 {
                window_start_ms = now;
                window_bytes = 0;
            }
            let budget = SUBSCRIPTION_BYTES_PER_SEC.saturating_sub(window_bytes);
            let (event, delivered, at_end) = if budget == 0 {
                (None, 0, false)
            } else {
                match self.read_event(&s, sh, &mut position, budget, now).await {
                    Ok(x) => x,
                    Err(e) => {
                        // A stream deleted (or a consumer deregistered) between the check above
                        // and the read took its logs with it: the subscription just ends, as the
                        // check would have ended it.
                        if self.subscription_stream(sub).await.is_some() {
                            let _ = tx.send(SubscribeEvent::Exception(e)).await;
                        }
                        return;
                    }
                }
            };
            window_bytes += delivered;
            if let Some(ev) = event {
                if delivered > 0 || at_end || now - last_event_ms >= IDLE_EVENT_INTERVAL_MS {
                    let records = ev.records.len() as u64;
                    let behind = ev.millis_behind_latest;
                    if tx.send(SubscribeEvent::Event(ev)).await.is_err() {
                        return;
                    }
                    let m = &s.metrics;
                    m.subscribe_event_bytes.add(delivered as u64);
                    m.subscribe_event_records.add(records);
                    m.subscribe_event_millis_behind.set(behind);
                    sub.millis_behind.store(behind, Ordering::Relaxed);
                    m.subscribe_event_success.add(1);
                    sh.metrics.outgoing_bytes.add(delivered as u64);
                    sh.metrics.outgoing_records.add(records);
                    last_event_ms = now;
                }
            }
            if at_end {
                return;
            }
            if delivered > 0 && window_bytes < SUBSCRIPTION_BYTES_PER_SEC {
                continue;
            }
            let next_idle_ms = (last_event_ms + IDLE_EVENT_INTERVAL_MS).max(now);
            let mut wake_ms = next_idle_ms.min(started + SUBSCRIPTION_LIFETIME_MS);
            if window_bytes >= SUBSCRIPTION_BYTES_PER_SEC {
                wake_ms = wake_ms.min(window_start_ms + 1000);
            }
            let sleep = Duration::from_millis((wake_ms - now).max(1) as u64);
            tokio::select! {
                alive = tip.changed(), if tip_alive && window_bytes < SUBSCRIPTION_BYTES_PER_SEC => tip_alive = alive,
                _ = sub.wake.notified() => {}
                _ = sub.cancel.notified() => {
                    let _ = tx
                        .send(SubscribeEvent::Exception(ServiceError::new(
                            ErrorKind::ResourceInUse,
                            format!(
                                "A newer subscription for consumer {} on shard {} took over this one.",
                                sub.consumer_arn,
                                ShardId(sub.shard)
                            ),
                        )))
                        .await;
                    return;
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// The live subscriptions that have sent an event, for `/metrics`.
    pub(crate) fn subscription_figures(&self) -> Vec<crate::metrics::SubscriptionFigures> {
        let mut rows: Vec<crate::metrics::SubscriptionFigures> = self
            .subscriptions
            .lock()
            .iter()
            .map(|((_, shard), slot)| crate::metrics::SubscriptionFigures {
                stream: slot.stream.clone(),
                consumer: slot.consumer.clone(),
                shard: ShardId(*shard),
                millis_behind_latest: slot.millis_behind.load(Ordering::Relaxed),
            })
            .filter(|row| row.millis_behind_latest >= 0)
            .collect();
        rows.sort();
        rows
    }

    /// Reads from `position` (at most `budget` bytes) and builds the event: (event, bytes
    /// delivered, whether this is the end of a closed shard).
    async fn read_event(
        &self,
        s: &StreamMeta,
        sh: &ShardMeta,
        position: &mut u64,
        budget: usize,
        now: i64,
    ) -> Result<(Option<SubscribeToShardEventOut>, usize, bool), ServiceError> {
        let log = LogId(sh.log_id);
        let failed = |e: kinesin_storage::ShardLogError| {
            tracing::error!(stream = %s.name, shard = %sh.id(), error = %e, "read failed");
            ServiceError::internal(format!(
                "Reading shard {} of stream {} failed ({}).",
                sh.id(),
                s.name,
                e.client_message()
            ))
        };
        let request = ReadRequest {
            from: *position,
            not_before_ms: now - s.retention_ms(),
            max_records: EVENT_RECORDS_MAX,
            max_bytes: budget,
        };
        let keys = self.kms.read_keys(s);
        let out = self
            .log
            .read(log, request, keys.owned())
            .await
            .map_err(|e| crate::kms::read_error(&keys, &e).unwrap_or_else(|| failed(e)))?;
        let (from, tip) = (out.start, out.tip);
        let bytes: usize = out.records.iter().map(|r| r.partition_key.len() + r.data.len()).sum();
        let next = out.next_seq_index.max(from);
        let millis_behind = match out.records.last() {
            _ if next >= tip => 0,
            Some(last) => out.newest_arrival_ms.map_or(0, |n| (n - last.arrival_ms).max(0)),
            None => 0,
        };
        // The position before the next record, not the last record's number: resuming
        // AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER from it delivers nothing twice (as on AWS).
        let continuation = SequenceNumber::before_record(sh.create_secs(), sh.index, next);
        *position = next;
        let records: Vec<RecordOut> =
            out.records.into_iter().map(|r| crate::data::record_out(sh, r)).collect();
        let at_end = sh.closed.as_ref().is_some_and(|c| next >= c.end_seq_index);
        let event = SubscribeToShardEventOut {
            records,
            continuation_sequence_number: (!at_end).then(|| continuation.encode()),
            millis_behind_latest: millis_behind,
            child_shards: at_end.then(|| crate::data::child_shards(s, sh)),
        };
        Ok((Some(event), bytes, at_end))
    }
}

/// What a subscription task needs to know about itself.
struct Subscription {
    consumer_arn: ConsumerArn,
    consumer_created_ms: i64,
    incarnation: u64,
    shard: u32,
    position: u64,
    /// Signalled by `wake_subscriptions`.
    wake: Arc<Notify>,
    cancel: Arc<Notify>,
    millis_behind: Arc<AtomicI64>,
}
