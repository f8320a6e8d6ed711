//! Control-plane operations: stream lifecycle, listing, retention, tags, monitoring, policies,
//! limits and account settings.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::ServiceError;
use kinesin_log::LogId;
use kinesin_wire::error::{echo, ErrorKind};
use kinesin_wire::ids::{ConsumerArn, HashKeyRange, ShardId, StreamArn, StreamName};
use kinesin_wire::ops::*;
use kinesin_wire::token::PageToken;

use crate::meta::{Change, ShardMeta, StreamMeta, StreamMode, StreamStatus, FIRST_RECORD_SEQ_INDEX};
use crate::{meta_failure, Service, StreamTable, TOKEN_LIFETIME_MS};

/// Shards of a new ON_DEMAND stream (AWS starts them at 4 MiB/s of writes).
pub const ON_DEMAND_INITIAL_SHARDS: u32 = 4;
pub const RETENTION_HOURS_DEFAULT: i64 = 24;
pub const RETENTION_HOURS_MIN: i64 = 24;
pub const RETENTION_HOURS_MAX: i64 = 8760;
pub const MAX_RECORD_SIZE_KIB_DEFAULT: i64 = 1024;
/// Streams that may be CREATING at once in an account.
pub const CREATING_STREAMS_MAX: usize = 5;
pub const TAGS_PER_STREAM_MAX: usize = 50;
/// Tags on one consumer (AWS: 50, as for streams).
pub const TAGS_PER_CONSUMER_MAX: usize = 50;

/// What a TagResource / UntagResource / ListTagsForResource ResourceARN names.
enum Resource {
    Stream(String),
    /// A consumer, by its stream, name and registration time (the ARN's identity).
    Consumer {
        stream: String,
        name: String,
        created_ms: i64,
    },
}
/// DescribeStream, ListStreams: the most items one page holds, whatever Limit says.
pub const DESCRIBE_STREAM_PAGE_MAX: i64 = 100;
pub const LIST_STREAMS_PAGE_MAX: i64 = 100;
pub const LIST_SHARDS_PAGE_DEFAULT: i64 = 1000;
pub const LIST_TAGS_PAGE_DEFAULT: i64 = 10;
/// Metric names EnableEnhancedMonitoring's `ALL` stands for, in AWS's order.
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

impl Service {
    pub(crate) fn create_stream(&self, req: CreateStreamInput) -> Result<Output, ServiceError> {
        self.create_stream_with(req, self.cfg.create_stream_ms)
    }

    /// Creates `name` with `shards` shards, ACTIVE at once, unless it exists (`--init-stream`).
    pub fn init_stream(&self, name: &str, shards: i64) -> Result<(), ServiceError> {
        if self.table().streams.contains_key(name) {
            return Ok(());
        }
        let stream_name = StreamName::parse(name).ok_or_else(|| {
            ServiceError::validation(format!(
                "1 validation error detected: Value '{}' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                echo(name)
            ))
        })?;
        if shards < 1 {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{shards}' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        let req = CreateStreamInput {
            stream_name,
            shard_count: Some(shards),
            stream_mode_details: None,
            tags: None,
            warm_throughput_mi_bps: None,
            max_record_size_in_ki_b: None,
            record_distribution_strategy: None,
        };
        self.create_stream_with(req, 0).map(|_| ())
    }

    fn create_stream_with(&self, req: CreateStreamInput, creating_ms: u64) -> Result<Output, ServiceError> {
        let now = self.clock.now_ms();
        // Neither ShardCount nor StreamModeDetails: AWS creates an ON_DEMAND stream (4 shards;
        // a PROVISIONED stream needs its ShardCount).
        let mode = match (req.stream_mode_details.as_ref().map(|d| d.stream_mode.as_str()), req.shard_count) {
            (None, None) => StreamMode::OnDemand,
            (None | Some("PROVISIONED"), _) => StreamMode::Provisioned,
            (Some(_), _) => StreamMode::OnDemand,
        };
        let shard_count = match (mode, req.shard_count) {
            (StreamMode::Provisioned, Some(n)) => n,
            (StreamMode::Provisioned, None) => {
                return Err(ServiceError::invalid_argument(
                    "ShardCount is required for a PROVISIONED stream: give ShardCount, or StreamModeDetails {StreamMode: ON_DEMAND}.",
                ))
            }
            (StreamMode::OnDemand, None) => ON_DEMAND_INITIAL_SHARDS as i64,
            (StreamMode::OnDemand, Some(_)) => {
                return Err(ServiceError::invalid_argument(
                    "ShardCount cannot be specified for an ON_DEMAND stream: on-demand streams manage their shards.",
                ))
            }
        };
        if req.warm_throughput_mi_bps.is_some() {
            let enabled = self.table().settings.billing_commitment_enabled_ms.is_some();
            if mode != StreamMode::OnDemand || !enabled {
                return Err(ServiceError::invalid_argument(
                    "WarmThroughputMiBps applies only to ON_DEMAND streams in an account whose MinimumThroughputBillingCommitment is ENABLED (UpdateAccountSettings).",
                ));
            }
        }
        if req.record_distribution_strategy.as_deref() == Some("AUTO") {
            return Err(ServiceError::invalid_argument(
                "RecordDistributionStrategy AUTO is not supported by kinesin yet; omit it or use USER_PARTITION_KEY.",
            ));
        }
        let tags = req.tags.unwrap_or_default();
        check_tag_chars(
            tags.keys().chain(tags.values()),
            "add tags to",
            &req.stream_name,
            &self.cfg.account_id,
        )?;
        if tags.len() > TAGS_PER_STREAM_MAX {
            return Err(ServiceError::invalid_argument(format!(
                "Failed to create stream {} under account {} because a given stream cannot have more than {TAGS_PER_STREAM_MAX} tags associated with it.",
                req.stream_name, self.cfg.account_id
            )));
        }

        let mut st = self.state.lock();
        if st.streams.contains_key(req.stream_name.as_str()) {
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!("Stream {} under account {} already exists.", req.stream_name, self.cfg.account_id),
            ));
        }
        let creating = st.streams.values().filter(|s| s.status == StreamStatus::Creating).count();
        if creating >= CREATING_STREAMS_MAX {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "This request would exceed the limit of {CREATING_STREAMS_MAX} streams in CREATING state for the account {} in {}. Wait until they are ACTIVE and retry.",
                    self.cfg.account_id, self.cfg.region
                ),
            ));
        }
        let open_shards = open_shard_count(&st);
        if open_shards + shard_count as u64 > self.cfg.shard_limit {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {}. Limit: {}. Number of additional shards that would have resulted from this request: {}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                    self.cfg.account_id, self.cfg.region, open_shards, self.cfg.shard_limit, shard_count
                ),
            ));
        }
        if mode == StreamMode::OnDemand {
            let on_demand = st.streams.values().filter(|s| s.mode == StreamMode::OnDemand).count() as u64;
            if on_demand >= self.cfg.on_demand_stream_limit {
                return Err(ServiceError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "This request would exceed the limit of {} ON_DEMAND streams for the account {} in {}.",
                        self.cfg.on_demand_stream_limit, self.cfg.account_id, self.cfg.region
                    ),
                ));
            }
        }

        let mut counters = st.counters.clone();
        let incarnation = counters.next_incarnation;
        counters.next_incarnation += 1;
        let mut shards = Vec::with_capacity(shard_count as usize);
        for (i, range) in HashKeyRange::even_split(shard_count as u32).into_iter().enumerate() {
            let log_id = counters.next_log_id;
            counters.next_log_id += 1;
            shards.push(ShardMeta {
                index: i as u32,
                parent: None,
                adjacent_parent: None,
                start_hash: range.start.to_string(),
                end_hash: range.end.to_string(),
                created_ms: now,
                log_id,
                closed: None,
                range_cache: Default::default(),
                metrics: Default::default(),
                gate: Default::default(),
            });
        }
        // Logs first: a crash before the metadata commit leaves only orphan logs, removed at start.
        // All shard logs are made durable together: one sync round, not one per shard.
        let logs: Vec<(LogId, u64)> =
            shards.iter().map(|sh| (LogId(sh.log_id), FIRST_RECORD_SEQ_INDEX)).collect();
        crate::storage::wait(self.log.create(&logs)).map_err(|e| {
            tracing::error!(error = %e, "cannot create the shard logs");
            ServiceError::internal(format!(
                "The server could not create the shards' logs ({}). Nothing was created; retry.",
                e.client_message()
            ))
        })?;
        let status = if creating_ms == 0 { StreamStatus::Active } else { StreamStatus::Creating };
        let stream = StreamMeta {
            name: req.stream_name.to_string(),
            incarnation,
            created_ms: now,
            status,
            status_until_ms: now + creating_ms as i64,
            mode,
            retention_hours: RETENTION_HOURS_DEFAULT,
            shards,
            tags,
            shard_level_metrics: BTreeSet::new(),
            encryption_key_id: None,
            max_record_size_kib: req.max_record_size_in_ki_b.unwrap_or(MAX_RECORD_SIZE_KIB_DEFAULT),
            warm_throughput_mibps: req.warm_throughput_mi_bps,
            policy: None,
            scalings_ms: Vec::new(),
            mode_switches_ms: Vec::new(),
            consumers: Vec::new(),
            consumer_created_ms_last: 0,
            pending_reshard: Vec::new(),
            metrics: Default::default(),
            encryption: Default::default(),
        };
        self.store
            .commit(&Change { put_streams: &[&stream], counters: Some(&counters), ..Default::default() })
            .map_err(|e| meta_failure(&e))?;
        st.counters = counters;
        st.by_incarnation.insert(incarnation, stream.name.clone());
        tracing::info!(stream = %stream.name, shards = shard_count, mode = mode.as_str(), "stream created");
        st.streams.insert(stream.name.clone(), Arc::new(stream));
        Ok(Output::Empty)
    }

    pub(crate) fn delete_stream(&self, req: DeleteStreamInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = st.streams.get(&name).cloned().ok_or_else(|| self.not_found(&name))?;
        if s.status == StreamStatus::Deleting {
            // The stream is still listed and described (DELETING), so "not found" would
            // contradict them; AWS deletes only a stream that is not already being deleted.
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Stream {name} under account {} is already being deleted (DELETING); it disappears on its own.",
                    self.cfg.account_id
                ),
            ));
        }
        if !s.consumers.is_empty() && req.enforce_consumer_deletion != Some(true) {
            return Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Stream {name} under account {} has {} registered consumers. Deregister them first, or set EnforceConsumerDeletion to true.",
                    self.cfg.account_id,
                    s.consumers.len()
                ),
            ));
        }
        let mut next = (*s).clone();
        next.status = StreamStatus::Deleting;
        next.status_until_ms = now + self.cfg.delete_stream_ms as i64;
        let next = self.save(&mut st, next)?;
        tracing::info!(stream = %name, "stream DELETING");
        if self.cfg.delete_stream_ms == 0 {
            // Nothing to wait for: gone for the very next request, not at the next tick.
            if let Err(e) = self.finish_delete(&mut st, &next) {
                // DELETING is committed; the background task finishes it.
                tracing::error!(stream = %name, error = %e, "cannot finish deleting a stream; will retry");
            }
        }
        drop(st);
        // Subscriptions to its shards end now.
        self.wake_subscriptions(&s);
        Ok(Output::Empty)
    }

    /// Shards a listing shows: closed shards disappear once all their data is past retention.
    fn visible_shards<'a>(&self, s: &'a StreamMeta, now: i64) -> impl Iterator<Item = &'a ShardMeta> + 'a {
        let cutoff = now - s.retention_ms();
        s.shards.iter().filter(move |sh| match &sh.closed {
            None => true,
            Some(c) => c.closed_ms >= cutoff,
        })
    }

    fn shard_out(&self, sh: &ShardMeta) -> ShardOut {
        ShardOut {
            shard_id: sh.id().to_string(),
            parent_shard_id: sh.parent.map(|p| ShardId(p).to_string()),
            adjacent_parent_shard_id: sh.adjacent_parent.map(|p| ShardId(p).to_string()),
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: sh.start_hash.clone(),
                ending_hash_key: sh.end_hash.clone(),
            },
            sequence_number_range: SequenceNumberRangeOut {
                starting_sequence_number: sh.starting_sequence_number().encode(),
                ending_sequence_number: sh.ending_sequence_number().map(|s| s.encode()),
            },
        }
    }

    fn enhanced_monitoring_out(s: &StreamMeta) -> Vec<EnhancedMetricsOut> {
        vec![EnhancedMetricsOut { shard_level_metrics: ordered_metrics(&s.shard_level_metrics) }]
    }

    pub(crate) fn describe_stream(&self, req: DescribeStreamInput) -> Result<Output, ServiceError> {
        let s = self.find(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let limit = req.limit.unwrap_or(DESCRIBE_STREAM_PAGE_MAX).min(DESCRIBE_STREAM_PAGE_MAX) as usize;
        let after = req.exclusive_start_shard_id.as_deref().map(start_after);
        let mut shards: Vec<ShardOut> = Vec::new();
        let mut has_more = false;
        // AWS lists no shards while the stream is CREATING or DELETING (also when it was deleted
        // while CREATING).
        if !matches!(s.status, StreamStatus::Creating | StreamStatus::Deleting) {
            for sh in self.visible_shards(&s, now).filter(|sh| after.is_none_or(|a| sh.index > a)) {
                if shards.len() == limit {
                    has_more = true;
                    break;
                }
                shards.push(self.shard_out(sh));
            }
        }
        Ok(Output::DescribeStream {
            stream_description: StreamDescriptionOut {
                stream_name: s.name.clone(),
                stream_arn: self.stream_arn(&s.name).to_string(),
                stream_status: s.status.as_str(),
                stream_mode_details: StreamModeDetailsOut { stream_mode: s.mode.as_str() },
                shards,
                has_more_shards: has_more,
                retention_period_hours: s.retention_hours,
                stream_creation_timestamp: Timestamp(s.created_ms),
                enhanced_monitoring: Self::enhanced_monitoring_out(&s),
                encryption_type: if s.encryption_key_id.is_some() { "KMS" } else { "NONE" },
                key_id: s.encryption_key_id.clone(),
            },
        })
    }

    pub(crate) fn describe_stream_summary(&self, req: StreamRef) -> Result<Output, ServiceError> {
        let s = self.find(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        Ok(Output::DescribeStreamSummary {
            stream_description_summary: StreamDescriptionSummaryOut {
                stream_name: s.name.clone(),
                stream_arn: self.stream_arn(&s.name).to_string(),
                stream_status: s.status.as_str(),
                stream_mode_details: StreamModeDetailsOut { stream_mode: s.mode.as_str() },
                retention_period_hours: s.retention_hours,
                stream_creation_timestamp: Timestamp(s.created_ms),
                enhanced_monitoring: Self::enhanced_monitoring_out(&s),
                encryption_type: if s.encryption_key_id.is_some() { "KMS" } else { "NONE" },
                key_id: s.encryption_key_id.clone(),
                open_shard_count: match s.status {
                    StreamStatus::Creating | StreamStatus::Deleting => 0,
                    _ => s.open_shard_count(),
                },
                consumer_count: s.consumers.len() as u64,
                max_record_size_in_kib: s.max_record_size_kib,
                warm_throughput: (s.mode == StreamMode::OnDemand
                    && self.table().settings.billing_commitment_enabled_ms.is_some())
                .then(|| self.warm_throughput_out(&s)),
            },
        })
    }

    pub(crate) fn open_page_token(&self, token: &str, now: i64) -> Result<PageToken, ServiceError> {
        let t = PageToken::open(token, &self.token_key).map_err(|_| {
            ServiceError::invalid_argument(format!(
                "NextToken {} is invalid: pass back the NextToken of the previous response unchanged.",
                kinesin_wire::error::echo(token)
            ))
        })?;
        if now - t.issued_ms > TOKEN_LIFETIME_MS {
            return Err(ServiceError::new(
                ErrorKind::ExpiredNextToken,
                format!(
                    "The NextToken has expired: it is valid for {} seconds. Start the listing again.",
                    TOKEN_LIFETIME_MS / 1000
                ),
            ));
        }
        Ok(t)
    }

    pub(crate) fn seal_page_token(&self, t: PageToken) -> Result<String, ServiceError> {
        t.seal(&self.token_key).map_err(|e| ServiceError::internal(format!("cannot build a NextToken: {e}")))
    }

    pub(crate) fn list_streams(&self, req: ListStreamsInput) -> Result<Output, ServiceError> {
        let now = self.clock.now_ms();
        let limit = req.limit.unwrap_or(LIST_STREAMS_PAGE_MAX).min(LIST_STREAMS_PAGE_MAX) as usize;
        let after = match &req.next_token {
            Some(t) => Some(self.open_page_token(t, now)?.after),
            None => req.exclusive_start_stream_name.clone(),
        };
        let st = self.table();
        let mut names = Vec::new();
        let mut summaries = Vec::new();
        let mut has_more = false;
        for s in st.streams.values().filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a)) {
            if names.len() == limit {
                has_more = true;
                break;
            }
            names.push(s.name.clone());
            summaries.push(StreamSummaryOut {
                stream_name: s.name.clone(),
                stream_arn: self.stream_arn(&s.name).to_string(),
                stream_status: s.status.as_str(),
                stream_mode_details: StreamModeDetailsOut { stream_mode: s.mode.as_str() },
                stream_creation_timestamp: Timestamp(s.created_ms),
            });
        }
        drop(st);
        let next_token = match (has_more, names.last()) {
            (true, Some(last)) => Some(self.seal_page_token(PageToken {
                stream_incarnation: 0,
                after: last.clone(),
                issued_ms: now,
                extra: Vec::new(),
            })?),
            _ => None,
        };
        Ok(Output::ListStreams {
            stream_names: names,
            has_more_streams: has_more,
            next_token,
            stream_summaries: summaries,
        })
    }

    pub(crate) fn list_shards(&self, req: ListShardsInput) -> Result<Output, ServiceError> {
        let now = self.clock.now_ms();
        let named = req.stream_name.is_some() || req.stream_arn.is_some();
        let (stream, after, filter) = match &req.next_token {
            Some(token) => {
                if named {
                    return Err(ServiceError::invalid_argument(
                        "NextToken and StreamName cannot be provided together.",
                    ));
                }
                for (given, what) in [
                    (req.exclusive_start_shard_id.is_some(), "ExclusiveStartShardId"),
                    (req.stream_creation_timestamp.is_some(), "StreamCreationTimestamp"),
                    (req.shard_filter.is_some(), "ShardFilter"),
                ] {
                    if given {
                        return Err(ServiceError::invalid_argument(format!(
                            "NextToken and {what} cannot be provided together."
                        )));
                    }
                }
                let t = self.open_page_token(token, now)?;
                let name = self.table().by_incarnation.get(&t.stream_incarnation).cloned();
                let s = name.and_then(|n| self.table().streams.get(&n).cloned()).ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::ResourceNotFound,
                        "The stream this NextToken lists no longer exists (it was deleted).",
                    )
                })?;
                let after = ShardId::parse_lenient(&t.after).map(|s| s.0);
                (s, after, decode_filter(&t.extra))
            }
            None => {
                if !named {
                    return Err(ServiceError::invalid_argument(
                        "Either NextToken or StreamName should be provided.",
                    ));
                }
                let s = self.find(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
                if let Some(ts) = req.stream_creation_timestamp {
                    if ts.0 != s.created_ms && ts.0 / 1000 != s.created_ms / 1000 {
                        return Err(self.not_found(&s.name));
                    }
                }
                let after = req.exclusive_start_shard_id.as_deref().map(start_after);
                let filter = match &req.shard_filter {
                    Some(f) => Some(check_filter(f)?),
                    None => None,
                };
                (s, after, filter)
            }
        };
        match stream.status {
            StreamStatus::Creating => {
                return Err(ServiceError::new(
                    ErrorKind::ResourceInUse,
                    format!(
                        "Stream {} under account {} is in CREATING state; list its shards once it is ACTIVE.",
                        stream.name, self.cfg.account_id
                    ),
                ))
            }
            StreamStatus::Deleting => return Err(self.not_found(&stream.name)),
            _ => {}
        }
        let limit = req.max_results.unwrap_or(LIST_SHARDS_PAGE_DEFAULT) as usize;
        let trim_horizon = now - stream.retention_ms();
        let mut shards = Vec::new();
        let mut has_more = false;
        for sh in self.visible_shards(&stream, now) {
            if after.is_some_and(|a| sh.index <= a) || !filter_keeps(filter.as_ref(), sh, trim_horizon) {
                continue;
            }
            if shards.len() == limit {
                has_more = true;
                break;
            }
            shards.push(self.shard_out(sh));
        }
        let next_token = match (has_more, shards.last()) {
            (true, Some(last)) => Some(self.seal_page_token(PageToken {
                stream_incarnation: stream.incarnation,
                after: last.shard_id.clone(),
                issued_ms: now,
                extra: encode_filter(filter.as_ref()),
            })?),
            _ => None,
        };
        Ok(Output::ListShards { shards, next_token })
    }

    /// A stream that must be ACTIVE for a control-plane change.
    pub(crate) fn find_active(&self, st: &StreamTable, name: &str) -> Result<Arc<StreamMeta>, ServiceError> {
        let s = st.streams.get(name).cloned().ok_or_else(|| self.not_found(name))?;
        match s.status {
            StreamStatus::Active => Ok(s),
            StreamStatus::Creating | StreamStatus::Deleting => Err(self.not_found(name)),
            other => Err(ServiceError::new(
                ErrorKind::ResourceInUse,
                format!(
                    "Stream {} under account {} not ACTIVE, instead in state {}",
                    name,
                    self.cfg.account_id,
                    other.as_str()
                ),
            )),
        }
    }

    pub(crate) fn change_retention(
        &self,
        req: RetentionInput,
        increase: bool,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let hours = req.retention_period_hours;
        if hours < RETENTION_HOURS_MIN {
            return Err(ServiceError::invalid_argument(format!(
                "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        if hours > RETENTION_HOURS_MAX {
            return Err(ServiceError::invalid_argument(format!(
                "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        if increase && hours < s.retention_hours {
            return Err(ServiceError::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({} hours). Use DecreaseRetentionPeriod API.",
                s.retention_hours
            )));
        }
        if !increase && hours > s.retention_hours {
            return Err(ServiceError::invalid_argument(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({} hours). Use IncreaseRetentionPeriod API.",
                s.retention_hours
            )));
        }
        let mut next = (*s).clone();
        next.retention_hours = hours;
        self.save(&mut st, next)?;
        drop(st);
        if !increase {
            // Shorter retention takes effect now: let the next tick sweep.
            self.state.lock().last_retention_sweep_ms = 0;
        }
        Ok(Output::Empty)
    }

    fn add_tags(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
        let mut st = self.state.lock();
        let s = self.find_active(&st, name)?;
        check_tag_chars(tags.keys().chain(tags.values()), "add tags to", name, &self.cfg.account_id)?;
        let mut next = (*s).clone();
        for (k, v) in tags {
            next.tags.insert(k.clone(), v.clone());
        }
        if next.tags.len() > TAGS_PER_STREAM_MAX {
            return Err(ServiceError::invalid_argument(format!(
                "Failed to add tags to stream {name} under account {} because a given stream cannot have more than {TAGS_PER_STREAM_MAX} tags associated with it.",
                self.cfg.account_id
            )));
        }
        self.save(&mut st, next)?;
        Ok(())
    }

    fn remove_tags(&self, name: &str, keys: &[String]) -> Result<(), ServiceError> {
        let mut st = self.state.lock();
        let s = self.find_active(&st, name)?;
        check_tag_chars(keys.iter(), "remove tags from", name, &self.cfg.account_id)?;
        let mut next = (*s).clone();
        for k in keys {
            next.tags.remove(k);
        }
        self.save(&mut st, next)?;
        Ok(())
    }

    pub(crate) fn add_tags_to_stream(&self, req: AddTagsToStreamInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        self.add_tags(&name, &req.tags)?;
        Ok(Output::Empty)
    }

    pub(crate) fn remove_tags_from_stream(
        &self,
        req: RemoveTagsFromStreamInput,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        self.remove_tags(&name, &req.tag_keys)?;
        Ok(Output::Empty)
    }

    pub(crate) fn list_tags_for_stream(&self, req: ListTagsForStreamInput) -> Result<Output, ServiceError> {
        let s = self.find(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let limit = req.limit.unwrap_or(LIST_TAGS_PAGE_DEFAULT) as usize;
        let mut tags = Vec::new();
        let mut has_more = false;
        for (k, v) in
            s.tags.iter().filter(|(k, _)| req.exclusive_start_tag_key.as_ref().is_none_or(|a| *k > a))
        {
            if tags.len() == limit {
                has_more = true;
                break;
            }
            tags.push(TagOut { key: k.clone(), value: v.clone() });
        }
        Ok(Output::ListTagsForStream { tags, has_more_tags: has_more })
    }

    /// What a ResourceARN names: a stream, or one of its consumers (AWS tags both).
    fn resource(&self, arn: &str) -> Result<Resource, ServiceError> {
        if arn.contains("/consumer/") {
            let arn = ConsumerArn::parse(arn)
                .ok_or_else(|| ServiceError::invalid_argument(ConsumerArn::malformed(arn)))?;
            let st = self.table();
            let (s, c) = self.find_consumer(&st, None, None, Some(&arn))?;
            return Ok(Resource::Consumer { stream: s.name.clone(), name: c.name, created_ms: c.created_ms });
        }
        match StreamArn::parse(arn) {
            Some(a) => Ok(Resource::Stream(self.resolve_name(None, Some(&a))?)),
            None => Err(ServiceError::invalid_argument(format!(
                "ResourceARN {arn} is not a stream ARN: expected arn:aws:kinesis:<region>:<account>:stream/<name>."
            ))),
        }
    }

    /// The stream a resource-policy ResourceARN names. AWS also attaches policies to consumers;
    /// kinesin keeps policies on streams only, so a consumer ARN is refused in words that say so.
    fn resource_stream(&self, arn: &str) -> Result<String, ServiceError> {
        match self.resource(arn)? {
            Resource::Stream(name) => Ok(name),
            Resource::Consumer { .. } => Err(ServiceError::invalid_argument(format!(
                "ResourceARN {arn} names a consumer: kinesin keeps resource policies on streams only; use the stream's ARN."
            ))),
        }
    }

    /// Changes a consumer's tags with `change` and commits its stream's document.
    fn change_consumer_tags(
        &self,
        stream: &str,
        name: &str,
        created_ms: i64,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        let mut st = self.state.lock();
        let s = st.streams.get(stream).cloned().ok_or_else(|| self.not_found(stream))?;
        let mut next = (*s).clone();
        let c = next.consumers.iter_mut().find(|c| c.name == name && c.created_ms == created_ms).ok_or_else(
            || {
                ServiceError::new(
                    ErrorKind::ResourceNotFound,
                    format!(
                        "Consumer {name} under stream {stream} under account {} not found.",
                        self.cfg.account_id
                    ),
                )
            },
        )?;
        change(&mut c.tags)?;
        self.save(&mut st, next)?;
        Ok(())
    }

    pub(crate) fn tag_resource(&self, req: TagResourceInput) -> Result<Output, ServiceError> {
        match self.resource(&req.resource_arn)? {
            Resource::Stream(name) => self.add_tags(&name, &req.tags)?,
            Resource::Consumer { stream, name, created_ms } => {
                let account = &self.cfg.account_id;
                check_tag_chars(req.tags.keys().chain(req.tags.values()), "add tags to", &stream, account)?;
                self.change_consumer_tags(&stream, &name, created_ms, |tags| {
                    let mut next = tags.clone();
                    next.extend(req.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                    if next.len() > TAGS_PER_CONSUMER_MAX {
                        return Err(ServiceError::invalid_argument(format!(
                            "Failed to add tags to consumer {name} of stream {stream} under account {account} because a given consumer cannot have more than {TAGS_PER_CONSUMER_MAX} tags associated with it."
                        )));
                    }
                    *tags = next;
                    Ok(())
                })?;
            }
        }
        Ok(Output::Empty)
    }

    pub(crate) fn untag_resource(&self, req: UntagResourceInput) -> Result<Output, ServiceError> {
        match self.resource(&req.resource_arn)? {
            Resource::Stream(name) => self.remove_tags(&name, &req.tag_keys)?,
            Resource::Consumer { stream, name, created_ms } => {
                check_tag_chars(req.tag_keys.iter(), "remove tags from", &stream, &self.cfg.account_id)?;
                self.change_consumer_tags(&stream, &name, created_ms, |tags| {
                    for k in &req.tag_keys {
                        tags.remove(k);
                    }
                    Ok(())
                })?;
            }
        }
        Ok(Output::Empty)
    }

    pub(crate) fn list_tags_for_resource(&self, req: ResourceArnInput) -> Result<Output, ServiceError> {
        let tags = match self.resource(&req.resource_arn)? {
            Resource::Stream(name) => self.find(Some(&name), None)?.tags.clone(),
            Resource::Consumer { stream, name, created_ms } => {
                let st = self.table();
                let s = st.streams.get(&stream).ok_or_else(|| self.not_found(&stream))?;
                s.consumers
                    .iter()
                    .find(|c| c.name == name && c.created_ms == created_ms)
                    .map(|c| c.tags.clone())
                    .unwrap_or_default()
            }
        };
        let tags = tags.into_iter().map(|(key, value)| TagOut { key, value }).collect();
        Ok(Output::ListTagsForResource { tags })
    }

    pub(crate) fn describe_limits(&self) -> Output {
        let st = self.table();
        Output::DescribeLimits {
            shard_limit: self.cfg.shard_limit,
            open_shard_count: open_shard_count(&st),
            on_demand_stream_count: st.streams.values().filter(|s| s.mode == StreamMode::OnDemand).count()
                as u64,
            on_demand_stream_count_limit: self.cfg.on_demand_stream_limit,
        }
    }

    fn billing_out(&self, st: &StreamTable) -> MinimumThroughputBillingCommitmentOut {
        match (st.settings.billing_commitment_enabled_ms, st.settings.billing_commitment_ended_ms) {
            (Some(start), _) => MinimumThroughputBillingCommitmentOut {
                status: "ENABLED".into(),
                started_at: Some(Timestamp(start)),
                ended_at: None,
                earliest_allowed_end_at: Some(Timestamp(start + BILLING_COMMITMENT_MIN_MS)),
            },
            (None, ended) => MinimumThroughputBillingCommitmentOut {
                status: "DISABLED".into(),
                started_at: None,
                ended_at: ended.map(Timestamp),
                earliest_allowed_end_at: None,
            },
        }
    }

    pub(crate) fn describe_account_settings(&self) -> Output {
        let st = self.table();
        Output::AccountSettings { minimum_throughput_billing_commitment: self.billing_out(&st) }
    }

    pub(crate) fn update_account_settings(
        &self,
        req: UpdateAccountSettingsInput,
    ) -> Result<Output, ServiceError> {
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let mut settings = st.settings.clone();
        match req.minimum_throughput_billing_commitment.status.as_str() {
            "ENABLED" => {
                if settings.billing_commitment_enabled_ms.is_none() {
                    settings.billing_commitment_enabled_ms = Some(now);
                    settings.billing_commitment_ended_ms = None;
                }
            }
            _ => {
                if let Some(start) = settings.billing_commitment_enabled_ms {
                    if now < start + BILLING_COMMITMENT_MIN_MS {
                        return Err(ServiceError::invalid_argument(format!(
                            "The minimum throughput billing commitment cannot end before its earliest allowed end ({}); retry after then.",
                            crate::time::amz_utc_string(start + BILLING_COMMITMENT_MIN_MS)
                        )));
                    }
                    settings.billing_commitment_enabled_ms = None;
                    settings.billing_commitment_ended_ms = Some(now);
                }
            }
        }
        self.store
            .commit(&Change { settings: Some(&settings), ..Default::default() })
            .map_err(|e| meta_failure(&e))?;
        st.settings = settings;
        Ok(Output::AccountSettings { minimum_throughput_billing_commitment: self.billing_out(&st) })
    }

    pub(crate) fn update_max_record_size(
        &self,
        req: UpdateMaxRecordSizeInput,
    ) -> Result<Output, ServiceError> {
        let Some(arn) = req.stream_arn.as_ref() else {
            return Err(ServiceError::invalid_argument("StreamARN is required for UpdateMaxRecordSize."));
        };
        let name = self.resolve_name(None, Some(arn))?;
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let mut next = (*s).clone();
        next.max_record_size_kib = req.max_record_size_in_ki_b;
        self.save(&mut st, next)?;
        Ok(Output::Empty)
    }

    pub(crate) fn enhanced_monitoring(
        &self,
        req: EnhancedMonitoringInput,
        enable: bool,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let mut wanted = BTreeSet::new();
        for m in &req.shard_level_metrics {
            if m == "ALL" {
                wanted.extend(SHARD_LEVEL_METRICS.iter().map(|m| m.to_string()));
            } else {
                wanted.insert(m.clone());
            }
        }
        let current = s.shard_level_metrics.clone();
        let desired: BTreeSet<String> = if enable {
            current.union(&wanted).cloned().collect()
        } else {
            current.difference(&wanted).cloned().collect()
        };
        let mut next = (*s).clone();
        next.shard_level_metrics = desired.clone();
        self.save(&mut st, next)?;
        if desired != current {
            tracing::info!(stream = %name, shard_level_metrics = ?ordered_metrics(&desired), "enhanced monitoring changed");
        }
        Ok(Output::EnhancedMonitoring {
            stream_name: name.clone(),
            current_shard_level_metrics: ordered_metrics(&current),
            desired_shard_level_metrics: ordered_metrics(&desired),
            stream_arn: self.stream_arn(&name).to_string(),
        })
    }

    pub(crate) fn put_resource_policy(&self, req: PutResourcePolicyInput) -> Result<Output, ServiceError> {
        let name = self.resource_stream(&req.resource_arn)?;
        let doc: serde_json::Value = serde_json::from_str(&req.policy).map_err(|e| {
            ServiceError::invalid_argument(format!(
                "The policy is not valid JSON ({e}); send an IAM policy document."
            ))
        })?;
        if !doc.get("Statement").is_some_and(|s| s.is_array() || s.is_object()) {
            return Err(ServiceError::invalid_argument(
                "The policy has no Statement; a resource policy needs at least one statement.",
            ));
        }
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let mut next = (*s).clone();
        next.policy = Some(req.policy);
        self.save(&mut st, next)?;
        Ok(Output::Empty)
    }

    pub(crate) fn get_resource_policy(&self, req: ResourceArnInput) -> Result<Output, ServiceError> {
        let name = self.resource_stream(&req.resource_arn)?;
        let s = self.find(Some(&name), None)?;
        Ok(Output::GetResourcePolicy { policy: s.policy.clone().unwrap_or_else(|| "{}".into()) })
    }

    pub(crate) fn delete_resource_policy(&self, req: ResourceArnInput) -> Result<Output, ServiceError> {
        let name = self.resource_stream(&req.resource_arn)?;
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        if s.policy.is_none() {
            return Err(ServiceError::new(
                ErrorKind::ResourceNotFound,
                format!("No resource policy found for resource ARN {}.", req.resource_arn),
            ));
        }
        let mut next = (*s).clone();
        next.policy = None;
        self.save(&mut st, next)?;
        Ok(Output::Empty)
    }
}

/// The shard index an ExclusiveStartShardId stands for; an unparsable one lists nothing after it.
fn start_after(id: &str) -> u32 {
    ShardId::parse_lenient(id).map_or(u32::MAX, |s| s.0)
}

/// How long a minimum throughput billing commitment lasts at least.
const BILLING_COMMITMENT_MIN_MS: i64 = 24 * 3_600_000;

pub(crate) fn open_shard_count(st: &StreamTable) -> u64 {
    st.streams.values().filter(|s| s.status != StreamStatus::Deleting).map(|s| s.open_shard_count()).sum()
}

fn ordered_metrics(set: &BTreeSet<String>) -> Vec<String> {
    SHARD_LEVEL_METRICS.iter().filter(|m| set.contains(**m)).map(|m| m.to_string()).collect()
}

/// Tag keys and values allow letters (ASCII word characters and most of the Unicode letter
/// blocks), digits, the space and `_ . / = + - @ :`, as AWS's front end does; `%` passes the first
/// check and fails the second, with its own message.
fn check_tag_chars<'a>(
    items: impl Iterator<Item = &'a String>,
    action: &str,
    stream: &str,
    account: &str,
) -> Result<(), ServiceError> {
    let ok = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '.' | '/' | '=' | '+' | '-' | ' ' | '@' | ':' | '%')
            || ('\u{00C0}'..='\u{1FFF}').contains(&c)
            || ('\u{2C00}'..='\u{D7FF}').contains(&c)
    };
    let items: Vec<&String> = items.collect();
    if items.iter().any(|s| !s.chars().all(ok)) {
        return Err(ServiceError::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.",
        ));
    }
    if items.iter().any(|s| s.contains('%')) {
        return Err(ServiceError::invalid_argument(format!(
            "Failed to {action} stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."
        )));
    }
    Ok(())
}

/// A ShardFilter after its checks.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    kind: FilterKind,
    shard: Option<u32>,
    timestamp_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterKind {
    AfterShardId,
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp,
    FromTimestamp,
}

const FILTER_KINDS: [(FilterKind, &str); 6] = [
    (FilterKind::AfterShardId, "AFTER_SHARD_ID"),
    (FilterKind::AtTrimHorizon, "AT_TRIM_HORIZON"),
    (FilterKind::FromTrimHorizon, "FROM_TRIM_HORIZON"),
    (FilterKind::AtLatest, "AT_LATEST"),
    (FilterKind::AtTimestamp, "AT_TIMESTAMP"),
    (FilterKind::FromTimestamp, "FROM_TIMESTAMP"),
];

fn check_filter(f: &ShardFilter) -> Result<Filter, ServiceError> {
    let kind =
        FILTER_KINDS.iter().find(|(_, n)| *n == f.r#type).map(|(k, _)| *k).ok_or_else(|| {
            ServiceError::invalid_argument(format!("Unknown ShardFilter type {}.", f.r#type))
        })?;
    let shard = match (&f.shard_id, kind) {
        (Some(id), FilterKind::AfterShardId) => {
            Some(ShardId::parse_lenient(id).map(|s| s.0).ok_or_else(|| {
                ServiceError::invalid_argument(format!(
                    "ShardId {id} in the ShardFilter is not a shard id such as shardId-000000000000."
                ))
            })?)
        }
        (None, FilterKind::AfterShardId) => {
            return Err(ServiceError::invalid_argument(
                "ShardId must be specified for ShardFilter type AFTER_SHARD_ID.",
            ))
        }
        (Some(_), _) => {
            return Err(ServiceError::invalid_argument(format!(
                "ShardId can only be specified with ShardFilter type AFTER_SHARD_ID, not {}.",
                f.r#type
            )))
        }
        (None, _) => None,
    };
    let needs_ts = matches!(kind, FilterKind::AtTimestamp | FilterKind::FromTimestamp);
    let timestamp_ms = match (f.timestamp, needs_ts) {
        (Some(t), true) => Some(t.0),
        (None, true) => {
            return Err(ServiceError::invalid_argument(format!(
                "Timestamp must be specified for ShardFilter type {}.",
                f.r#type
            )))
        }
        (Some(_), false) => {
            return Err(ServiceError::invalid_argument(format!(
            "Timestamp can only be specified with ShardFilter types AT_TIMESTAMP and FROM_TIMESTAMP, not {}.",
            f.r#type
        )))
        }
        (None, false) => None,
    };
    Ok(Filter { kind, shard, timestamp_ms })
}

/// Whether the shard was open at time `t`: created by then (the stream's first shards count as
/// open from the beginning of time) and not closed before it.
fn open_at(sh: &ShardMeta, t: i64) -> bool {
    let born = sh.parent.is_none() || sh.created_ms <= t;
    let alive = sh.closed.as_ref().is_none_or(|c| c.closed_ms > t);
    born && alive
}

fn filter_keeps(f: Option<&Filter>, sh: &ShardMeta, trim_horizon_ms: i64) -> bool {
    let Some(f) = f else { return true };
    match f.kind {
        FilterKind::AfterShardId => f.shard.is_none_or(|a| sh.index > a),
        FilterKind::AtTrimHorizon => open_at(sh, trim_horizon_ms),
        FilterKind::FromTrimHorizon => true,
        FilterKind::AtLatest => sh.is_open(),
        FilterKind::AtTimestamp => open_at(sh, f.timestamp_ms.unwrap_or(0)),
        FilterKind::FromTimestamp => {
            sh.closed.as_ref().is_none_or(|c| c.closed_ms >= f.timestamp_ms.unwrap_or(0))
        }
    }
}

/// A filter inside a NextToken: kind byte, shard u32 LE, timestamp i64 LE.
fn encode_filter(f: Option<&Filter>) -> Vec<u8> {
    let Some(f) = f else { return Vec::new() };
    let kind = FILTER_KINDS.iter().position(|(k, _)| *k == f.kind).unwrap_or(0) as u8;
    let mut out = vec![kind];
    out.extend_from_slice(&f.shard.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&f.timestamp_ms.unwrap_or(0).to_le_bytes());
    out
}

fn decode_filter(b: &[u8]) -> Option<Filter> {
    if b.len() != 13 {
        return None;
    }
    let (kind, _) = FILTER_KINDS.get(b[0] as usize)?;
    let shard = u32::from_le_bytes(b[1..5].try_into().ok()?);
    let ts = i64::from_le_bytes(b[5..13].try_into().ok()?);
    Some(Filter {
        kind: *kind,
        shard: (*kind == FilterKind::AfterShardId).then_some(shard),
        timestamp_ms: matches!(kind, FilterKind::AtTimestamp | FilterKind::FromTimestamp).then_some(ts),
    })
}
