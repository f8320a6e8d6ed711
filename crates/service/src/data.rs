//! Data-plane operations: PutRecord, PutRecords, GetShardIterator, GetRecords.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::join_all;

use crate::error::ServiceError;
use kinesin_log::{LogId, RecordIn, StoredRecord};
use kinesin_storage::{ReadRequest, ShardLogError};
use kinesin_wire::error::echo;
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::{HashKey, HashKeyError, SeqError, SequenceNumber, ShardId};
use kinesin_wire::ops::*;
use kinesin_wire::token::ShardIteratorToken;

use crate::meta::{ShardMeta, StreamMeta};
use crate::time::amz_utc_string;
use crate::{Service, TOKEN_LIFETIME_MS};

/// PutRecords: total data and partition keys of one request (AWS: 10 MiB since Oct 2025).
pub const PUT_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
/// GetRecords: records and bytes of one response.
pub const GET_RECORDS_LIMIT_DEFAULT: i64 = 10_000;
pub const GET_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;

/// One record routed to its shard.
struct Routed {
    shard: usize,
    pk: String,
    data: Bytes,
}

impl Service {
    fn encryption_type(s: &StreamMeta) -> &'static str {
        if s.encryption_key_id.is_some() {
            "KMS"
        } else {
            "NONE"
        }
    }

    /// Checks one record and finds its shard (an index into `s.shards`).
    fn route(
        &self,
        s: &StreamMeta,
        pk: Option<String>,
        ehk: Option<&str>,
        data: Bytes,
        path: &str,
    ) -> Result<Routed, ServiceError> {
        let Some(pk) = pk else {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value null at '{path}partitionKey' failed to satisfy constraint: Member must not be null"
            )));
        };
        let limit = (s.max_record_size_kib as usize) * 1024;
        if data.len() > limit {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]' at '{path}data' failed to satisfy constraint: Member must have length less than or equal to {limit}",
                n = data.len()
            )));
        }
        if data.len() + pk.len() > limit {
            return Err(ServiceError::invalid_argument(format!(
                "Record size (data + partition key) of {} bytes exceeds the maximum record size of {limit} bytes of stream {} (MaxRecordSizeInKiB {}). Send smaller records or raise it with UpdateMaxRecordSize.",
                data.len() + pk.len(),
                s.name,
                s.max_record_size_kib
            )));
        }
        let key = match ehk {
            Some(k) => HashKey::parse(k).map_err(|e| match e {
                HashKeyError::OutOfRange => ServiceError::invalid_argument(format!(
                    "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {}",
                    echo(k)
                )),
                _ => ServiceError::validation(format!(
                    "1 validation error detected: Value '{}' at '{path}explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})",
                    echo(k)
                )),
            })?,
            None => HashKey::from_partition_key(&pk),
        };
        let shard =
            s.shards.iter().position(|sh| sh.is_open() && sh.range().contains(key)).ok_or_else(|| {
                ServiceError::internal(format!("No open shard of stream {} holds hash key {key}.", s.name))
            })?;
        Ok(Routed { shard, pk, data })
    }

    /// PutRecord / PutRecords retry their routing this many times when a reshard closes the shard
    /// they routed to (each retry waits for the reshard's switch).
    const ROUTE_ATTEMPTS_MAX: usize = 1000;

    fn throttled(&self, s: &StreamMeta, sh: &ShardMeta) -> ServiceError {
        ServiceError::new(
            ErrorKind::ProvisionedThroughputExceeded,
            format!(
                "Rate exceeded for shard {} in stream {} under account {}.",
                sh.id(),
                s.name,
                self.cfg.account_id
            ),
        )
    }

    fn closing_too_long(s: &StreamMeta) -> ServiceError {
        ServiceError::internal(format!(
            "Stream {} kept resharding while the records were routed; nothing was stored. Retry.",
            s.name
        ))
    }

    pub(crate) async fn put_record(&self, req: PutRecordInput) -> Result<Output, ServiceError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let s = self.find_usable_async(req.stream_name.as_deref(), req.stream_arn.as_ref()).await?;
            let r = self.route(
                &s,
                req.partition_key.clone(),
                req.explicit_hash_key.as_deref(),
                req.data.0.clone(),
                "",
            )?;
            let key = self.kms.write_key(&s)?;
            if let Some(seq) = &req.sequence_number_for_ordering {
                let now_secs = (self.clock.now_ms() / 1000) as u64;
                let ok = SequenceNumber::parse_for_ordering(seq)
                    .is_ok_and(|o| o.arrival_secs.is_none_or(|secs| secs <= now_secs));
                if !ok {
                    return Err(ServiceError::invalid_argument(format!(
                        "ExclusiveMinimumSequenceNumber {seq} used in PutRecord on stream {} under account {} is invalid.",
                        s.name, self.cfg.account_id
                    )));
                }
            }
            if req.dry_run == Some(true) {
                return Err(dry_run());
            }
            let sh = &s.shards[r.shard];
            let _gate = match self.enter_gate(sh) {
                Ok(g) => g,
                Err(closed) => {
                    if attempt >= Self::ROUTE_ATTEMPTS_MAX {
                        return Err(Self::closing_too_long(&s));
                    }
                    closed.wait().await;
                    continue;
                }
            };
            let now = self.clock.now_ms();
            let size = (r.pk.len() + r.data.len()) as u64;
            if !self.limiter.admit_writes(sh.log_id, &[size as usize], now)[0] {
                s.metrics.write_throttled.add(1);
                sh.metrics.write_throttled.add(1);
                s.metrics.put_record_latency.observe(started.elapsed());
                return Err(self.throttled(&s, sh));
            }
            let out = self
                .log
                .append(
                    LogId(sh.log_id),
                    now,
                    vec![RecordIn { partition_key: Bytes::from(r.pk), data: r.data }],
                    key.as_ref(),
                )
                .await
                .map_err(|e| append_failure(&s, sh, &e))?;
            let m = &s.metrics;
            m.incoming_bytes.add(size);
            m.incoming_records.add(1);
            m.put_record_bytes.add(size);
            m.put_record_success.add(1);
            m.put_record_latency.observe(started.elapsed());
            sh.metrics.incoming_bytes.add(size);
            sh.metrics.incoming_records.add(1);
            return Ok(Output::PutRecord {
                shard_id: sh.id().to_string(),
                sequence_number: sh.sequence_number(out.first_seq_index, out.arrival_ms).encode(),
                encryption_type: Self::encryption_type(&s),
            });
        }
    }

    pub(crate) async fn put_records(&self, req: PutRecordsInput) -> Result<Output, ServiceError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let s = self.find_usable_async(req.stream_name.as_deref(), req.stream_arn.as_ref()).await?;
            let mut total = 0usize;
            let mut routed = Vec::with_capacity(req.records.len());
            for (i, rec) in req.records.iter().enumerate() {
                total += rec.data.0.len() + rec.partition_key.as_ref().map_or(0, |p| p.len());
                let path = format!("records.{}.member.", i + 1);
                routed.push(self.route(
                    &s,
                    rec.partition_key.clone(),
                    rec.explicit_hash_key.as_deref(),
                    rec.data.0.clone(),
                    &path,
                )?);
            }
            if total > PUT_RECORDS_BYTES_MAX {
                return Err(ServiceError::invalid_argument(format!(
                    "Records of this PutRecords request total {total} bytes of data and partition keys, more than the limit of {PUT_RECORDS_BYTES_MAX} bytes. Split them into smaller requests."
                )));
            }
            let key = self.kms.write_key(&s)?;
            if req.dry_run == Some(true) {
                return Err(dry_run());
            }
            // Records per shard, in request order.
            // (A map from shard to its slot: a request may touch hundreds of shards.)
            let mut per_shard: Vec<(usize, Vec<usize>)> = Vec::new();
            let mut slot_of: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
            for (i, r) in routed.iter().enumerate() {
                let slot = *slot_of.entry(r.shard).or_insert_with(|| {
                    per_shard.push((r.shard, Vec::new()));
                    per_shard.len() - 1
                });
                per_shard[slot].1.push(i);
            }
            // Enter every gate first; never wait while holding one (see `reshard`).
            let mut gates = Vec::with_capacity(per_shard.len());
            let mut closed = None;
            for (shard, _) in &per_shard {
                match self.enter_gate(&s.shards[*shard]) {
                    Ok(g) => gates.push(g),
                    Err(c) => {
                        closed = Some(c);
                        break;
                    }
                }
            }
            if let Some(closed) = closed {
                drop(gates);
                if attempt >= Self::ROUTE_ATTEMPTS_MAX {
                    return Err(Self::closing_too_long(&s));
                }
                closed.wait().await;
                continue;
            }
            let now = self.clock.now_ms();
            let n = routed.len();
            let mut results: Vec<Option<PutRecordsResultEntryOut>> = vec![None; n];
            let mut failed = 0u64;
            let mut throttled_total = 0u64;
            let mut order = Vec::with_capacity(per_shard.len());
            let mut appends = Vec::with_capacity(per_shard.len());
            let mut slots: Vec<Option<Routed>> = routed.into_iter().map(Some).collect();
            for (shard, idx) in per_shard {
                let sh = &s.shards[shard];
                let sizes: Vec<usize> =
                    idx.iter().map(|i| slots[*i].as_ref().map_or(0, |r| r.pk.len() + r.data.len())).collect();
                let admitted = self.limiter.admit_writes(sh.log_id, &sizes, now);
                let mut keep = Vec::with_capacity(idx.len());
                let mut recs = Vec::with_capacity(idx.len());
                let mut kept_bytes = 0u64;
                let mut throttled = 0u64;
                for ((i, ok), size) in idx.into_iter().zip(admitted).zip(sizes) {
                    if ok {
                        if let Some(r) = slots[i].take() {
                            keep.push(i);
                            kept_bytes += size as u64;
                            recs.push(RecordIn { partition_key: Bytes::from(r.pk), data: r.data });
                        }
                    } else {
                        failed += 1;
                        throttled += 1;
                        results[i] = Some(PutRecordsResultEntryOut {
                            sequence_number: None,
                            shard_id: None,
                            error_code: Some("ProvisionedThroughputExceededException".into()),
                            error_message: self.throttled(&s, sh).message().map(str::to_string),
                        });
                    }
                }
                if throttled > 0 {
                    sh.metrics.write_throttled.add(throttled);
                    throttled_total += throttled;
                }
                if !recs.is_empty() {
                    order.push((shard, keep, kept_bytes));
                    appends.push(self.log.append(LogId(sh.log_id), now, recs, key.as_ref()));
                }
            }
            let outcomes = join_all(appends).await;
            drop(gates);
            let (mut stored, mut stored_bytes, mut internal_failures) = (0u64, 0u64, 0u64);
            for ((shard, idx, bytes), outcome) in order.into_iter().zip(outcomes) {
                let sh = &s.shards[shard];
                match outcome {
                    Ok(out) => {
                        sh.metrics.incoming_bytes.add(bytes);
                        sh.metrics.incoming_records.add(idx.len() as u64);
                        stored += idx.len() as u64;
                        stored_bytes += bytes;
                        for (k, i) in idx.into_iter().enumerate() {
                            results[i] = Some(PutRecordsResultEntryOut {
                                sequence_number: Some(
                                    sh.sequence_number(out.first_seq_index + k as u64, out.arrival_ms)
                                        .encode(),
                                ),
                                shard_id: Some(sh.id().to_string()),
                                error_code: None,
                                error_message: None,
                            });
                        }
                    }
                    Err(e) => {
                        let err = append_failure(&s, sh, &e);
                        internal_failures += idx.len() as u64;
                        for i in idx {
                            failed += 1;
                            results[i] = Some(PutRecordsResultEntryOut {
                                sequence_number: None,
                                shard_id: None,
                                error_code: Some("InternalFailure".into()),
                                error_message: err.message().map(str::to_string),
                            });
                        }
                    }
                }
            }
            let m = &s.metrics;
            m.incoming_bytes.add(stored_bytes);
            m.incoming_records.add(stored);
            m.put_records_bytes.add(stored_bytes);
            m.put_records_records.add(stored);
            if stored > 0 {
                m.put_records_success.add(1);
            }
            if throttled_total > 0 {
                m.put_records_throttled_records.add(throttled_total);
                m.write_throttled.add(throttled_total);
            }
            if internal_failures > 0 {
                m.put_records_failed_records.add(internal_failures);
            }
            m.put_records_latency.observe(started.elapsed());
            return Ok(Output::PutRecords {
                failed_record_count: failed,
                records: results.into_iter().flatten().collect(),
                encryption_type: Self::encryption_type(&s),
            });
        }
    }

    pub(crate) fn shard_not_found(&self, stream: &str, id: ShardId) -> ServiceError {
        ServiceError::new(
            ErrorKind::ResourceNotFound,
            format!(
                "Shard {id} in stream {} under account {} does not exist",
                echo(stream),
                self.cfg.account_id
            ),
        )
    }

    pub(crate) async fn get_shard_iterator(
        &self,
        req: GetShardIteratorInput,
    ) -> Result<Output, ServiceError> {
        use ShardIteratorType::*;
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let Some(id) = ShardId::parse_lenient(&req.shard_id) else {
            return Err(ServiceError::new(
                ErrorKind::ResourceNotFound,
                format!(
                    "Could not find shard {} in stream {} under account {}.",
                    echo(&req.shard_id),
                    echo(&name),
                    self.cfg.account_id
                ),
            ));
        };
        let s = self.find_usable_async(Some(&name), None).await.map_err(|e| match e.kind() {
            ErrorKind::ResourceNotFound => self.shard_not_found(&name, id),
            _ => e,
        })?;
        let sh = s.shard(id.0).ok_or_else(|| self.shard_not_found(&name, id))?;
        let id = sh.id();
        let log = LogId(sh.log_id);
        let now = self.clock.now_ms();
        let kind = req.shard_iterator_type;
        let position = match (kind, &req.starting_sequence_number) {
            (TrimHorizon | Latest, Some(_)) | (AtSequenceNumber | AfterSequenceNumber, None) => {
                return Err(ServiceError::invalid_argument(format!(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {} StartingSequenceNumber.",
                    if req.starting_sequence_number.is_some() { "also a" } else { "no" }
                )))
            }
            (TrimHorizon, None) => 0,
            (Latest, None) => self.log.tip(log).await.map_err(|e| read_failure(&s, sh, &e))?,
            (AtTimestamp, _) => {
                let Some(ts) = req.timestamp else {
                    return Err(ServiceError::invalid_argument(
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
                    ));
                };
                if ts.0 > now {
                    return Err(ServiceError::invalid_argument(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {}, currentTimestampInMillis: {now}",
                        ts.0
                    )));
                }
                self.log.seek_time(log, ts.0).await.map_err(|e| read_failure(&s, sh, &e))?
            }
            (AtSequenceNumber | AfterSequenceNumber, Some(seq_text)) => {
                let seq = SequenceNumber::parse(seq_text).map_err(|e| match e {
                    SeqError::Malformed => ServiceError::validation(format!(
                        "1 validation error detected: Value '{}' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,128}})",
                        echo(seq_text)
                    )),
                    _ => ServiceError::invalid_argument(format!(
                        "StartingSequenceNumber {seq_text} used in GetShardIterator on shard {id} in stream {} under account {} is invalid.",
                        s.name, self.cfg.account_id
                    )),
                })?;
                if seq.shard_index != id.0 {
                    return Err(ServiceError::invalid_argument(format!(
                        "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {id}",
                        ShardId(seq.shard_index)
                    )));
                }
                if seq.shard_create_secs != sh.create_secs() {
                    return Err(ServiceError::invalid_argument(format!(
                        "StartingSequenceNumber {seq_text} used in GetShardIterator on shard {id} in stream {} under account {} is invalid because it did not come from this stream.",
                        s.name, self.cfg.account_id
                    )));
                }
                // A position between records (a ContinuationSequenceNumber) is before its
                // record, so AFTER it starts at that record too.
                if kind == AtSequenceNumber || seq.is_between_records() {
                    seq.seq_index
                } else {
                    seq.seq_index.saturating_add(1)
                }
            }
        };
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        if !self.limiter.admit_iterator(sh.log_id, now) {
            return Err(self.throttled(&s, sh));
        }
        let token = ShardIteratorToken {
            stream_incarnation: s.incarnation,
            shard_index: id.0,
            position,
            issued_ms: now,
        };
        Ok(Output::GetShardIterator { shard_iterator: token.seal(&self.token_key) })
    }

    pub(crate) async fn get_records(&self, req: GetRecordsInput) -> Result<Output, ServiceError> {
        let started = Instant::now();
        let now = self.clock.now_ms();
        let it = ShardIteratorToken::open(&req.shard_iterator, &self.token_key)
            .map_err(|_| ServiceError::invalid_argument("Invalid ShardIterator."))?;
        if now - it.issued_ms > TOKEN_LIFETIME_MS {
            return Err(ServiceError::new(
                ErrorKind::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {TOKEN_LIFETIME_MS} milliseconds.",
                    amz_utc_string(it.issued_ms),
                    amz_utc_string(now)
                ),
            ));
        }
        let s: Arc<StreamMeta> = {
            let st = self.table();
            match st.by_incarnation.get(&it.stream_incarnation).and_then(|n| st.streams.get(n)) {
                Some(s) => s.clone(),
                None => {
                    let name = st.tombstones.get(&it.stream_incarnation).cloned().unwrap_or_default();
                    return Err(self.shard_not_found(&name, ShardId(it.shard_index)));
                }
            }
        };
        let sh = s
            .shard(it.shard_index)
            .ok_or_else(|| ServiceError::invalid_argument("Invalid ShardIterator."))?;
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let log = LogId(sh.log_id);
        if !self.limiter.admit_read(sh.log_id, now) {
            s.metrics.read_throttled.add(1);
            sh.metrics.read_throttled.add(1);
            return Err(self.throttled(&s, sh));
        }
        let limit = req.limit.unwrap_or(GET_RECORDS_LIMIT_DEFAULT) as usize;
        // Records past retention are never served, whether or not their segment is gone yet.
        let request = ReadRequest {
            from: it.position,
            not_before_ms: now - s.retention_ms(),
            max_records: limit,
            max_bytes: GET_RECORDS_BYTES_MAX,
        };
        let keys = self.kms.read_keys(&s);
        let out = self
            .log
            .read(log, request, keys.owned())
            .await
            .map_err(|e| crate::kms::read_error(&keys, &e).unwrap_or_else(|| read_failure(&s, sh, &e)))?;
        let (from, tip) = (out.start, out.tip);
        let bytes: usize = out.records.iter().map(|r| r.partition_key.len() + r.data.len()).sum();
        self.limiter.charge_read(sh.log_id, bytes, now);
        let next_position = out.next_seq_index.max(from);
        let millis_behind = match out.records.last() {
            _ if next_position >= tip => 0,
            Some(last) => out.newest_arrival_ms.map_or(0, |n| (n - last.arrival_ms).max(0)),
            None => 0,
        };
        let iterator_age_ms = out.records.last().map_or(0, |r| (now - r.arrival_ms).max(0));
        let n = out.records.len() as u64;
        let m = &s.metrics;
        m.get_records_bytes.add(bytes as u64);
        m.get_records_records.add(n);
        m.get_records_success.add(1);
        m.get_records_iterator_age_ms.set(iterator_age_ms);
        m.get_records_latency.observe(started.elapsed());
        sh.metrics.outgoing_bytes.add(bytes as u64);
        sh.metrics.outgoing_records.add(n);
        sh.metrics.iterator_age_ms.set(iterator_age_ms);
        let records = out.records.into_iter().map(|r| record_out(sh, r)).collect();
        let at_end = sh.closed.as_ref().is_some_and(|c| next_position >= c.end_seq_index);
        if at_end {
            let children = child_shards(&s, sh);
            return Ok(Output::GetRecords {
                records,
                next_shard_iterator: None,
                millis_behind_latest: 0,
                child_shards: Some(children),
            });
        }
        let next = ShardIteratorToken {
            stream_incarnation: s.incarnation,
            shard_index: sh.index,
            position: next_position,
            issued_ms: now,
        };
        Ok(Output::GetRecords {
            records,
            next_shard_iterator: Some(next.seal(&self.token_key)),
            millis_behind_latest: millis_behind,
            child_shards: None,
        })
    }
}

/// One record as GetRecords and SubscribeToShard answer it: `EncryptionType` is KMS for a
/// record stored encrypted (whatever the stream's setting is now) and absent otherwise.
pub(crate) fn record_out(sh: &ShardMeta, r: StoredRecord) -> RecordOut {
    RecordOut {
        sequence_number: sh.sequence_number(r.seq_index, r.arrival_ms).encode(),
        approximate_arrival_timestamp: Timestamp(r.arrival_ms),
        data: Blob(r.data),
        partition_key: String::from_utf8_lossy(&r.partition_key).into_owned(),
        encryption_type: r.encrypted.then_some("KMS"),
    }
}

/// The children of a closed shard, as GetRecords and SubscribeToShard report them at its end.
pub(crate) fn child_shards(s: &StreamMeta, sh: &ShardMeta) -> Vec<ChildShardOut> {
    s.shards
        .iter()
        .filter(|c| c.parent == Some(sh.index) || c.adjacent_parent == Some(sh.index))
        .map(|c| ChildShardOut {
            shard_id: c.id().to_string(),
            parent_shards: [c.parent, c.adjacent_parent]
                .into_iter()
                .flatten()
                .map(|p| ShardId(p).to_string())
                .collect(),
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: c.start_hash.clone(),
                ending_hash_key: c.end_hash.clone(),
            },
        })
        .collect()
}

fn dry_run() -> ServiceError {
    ServiceError::new(ErrorKind::DryRunOperation, "Request would have succeeded, but DryRun flag is set.")
}

fn append_failure(s: &StreamMeta, sh: &ShardMeta, e: &ShardLogError) -> ServiceError {
    tracing::error!(stream = %s.name, shard = %sh.id(), error = %e, "append failed");
    match e {
        ShardLogError::NotFound(_) => ServiceError::new(
            ErrorKind::ResourceNotFound,
            format!("Stream {} is being deleted; shard {} takes no more records.", s.name, sh.id()),
        ),
        full if full.is_storage_full() => ServiceError::new(
            ErrorKind::InternalFailure,
            format!(
                "The disk holding the data directory is full ({}); nothing was acknowledged and \
                 nothing stored was harmed. Free space on that disk and retry.",
                full.client_message()
            ),
        ),
        other => ServiceError::new(
            ErrorKind::InternalFailure,
            format!(
                "The record could not be stored durably ({}); nothing was acknowledged. Retry.",
                other.client_message()
            ),
        ),
    }
}

fn read_failure(s: &StreamMeta, sh: &ShardMeta, e: &ShardLogError) -> ServiceError {
    tracing::error!(stream = %s.name, shard = %sh.id(), error = %e, "read failed");
    ServiceError::internal(format!(
        "Reading shard {} of stream {} failed ({}). Retry.",
        sh.id(),
        s.name,
        e.client_message()
    ))
}
