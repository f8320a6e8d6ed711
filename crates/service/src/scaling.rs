//! SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode, control-plane call rates and
//! on-demand scaling. The shard changes themselves are in `reshard`.

use crate::error::ServiceError;
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::{HashKey, ShardId};
use kinesin_wire::ops::{
    MergeShardsInput, Output, SplitShardInput, UpdateShardCountInput, UpdateStreamModeInput,
    UpdateStreamWarmThroughputInput, WarmThroughputOut,
};
use kinesin_wire::request::Request;

use crate::control::{open_shard_count, ON_DEMAND_INITIAL_SHARDS};
use crate::meta::{PendingStep, StreamMeta, StreamMode, StreamStatus};
use crate::reshard::{self, Op, OpError, STREAM_SHARDS_MAX};
use crate::{Service, StateGuard, StreamTable};

/// How often on-demand scaling measures the shards' write demand.
pub const AUTOSCALE_WINDOW_MS: i64 = 1000;
/// UpdateStreamMode switches per stream per rolling 24 hours (AWS: 2).
pub const MODE_SWITCHES_PER_DAY: usize = 2;
const DAY_MS: i64 = 24 * 3_600_000;

/// Largest warm throughput one stream can ask for (AWS: 10 GiB/s in the large regions).
pub const WARM_THROUGHPUT_MIBPS_MAX: i64 = 10_240;

impl Service {
    /// Control-plane call rates per account (reference §3.8).
    pub(crate) fn admit_control(&self, req: &Request) -> Result<(), ServiceError> {
        let op = req.op();
        if self.limiter.admit_control(op, self.clock.now_ms()) {
            return Ok(());
        }
        let stream = req.stream_name();
        Err(ServiceError::new(
            ErrorKind::LimitExceeded,
            match stream {
                Some(s) => format!("Rate exceeded for stream {s} under account {}.", self.cfg.account_id),
                None => format!("Rate exceeded for {op} under account {}.", self.cfg.account_id),
            },
        ))
    }

    fn shard_missing(&self, stream: &str, shard: &str) -> ServiceError {
        ServiceError::new(
            ErrorKind::ResourceNotFound,
            format!("Could not find shard {shard} in stream {stream} under account {}.", self.cfg.account_id),
        )
    }

    fn provisioned_only(op: &str) -> ServiceError {
        ServiceError::validation(format!(
            "{op} is only supported for data streams with the provisioned capacity mode."
        ))
    }

    fn not_active(&self, s: &StreamMeta) -> ServiceError {
        ServiceError::new(
            ErrorKind::ResourceInUse,
            format!(
                "Stream {} under account {} not ACTIVE, instead in state {}",
                s.name,
                self.cfg.account_id,
                s.status.as_str()
            ),
        )
    }

    fn already_resharded(&self, s: &StreamMeta, id: ShardId) -> ServiceError {
        ServiceError::invalid_argument(format!(
            "Shard {id} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
            s.name, self.cfg.account_id
        ))
    }

    fn shard_limit_error(&self, current: u64, additional: u64) -> ServiceError {
        ServiceError::new(
            ErrorKind::LimitExceeded,
            format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {current}. Limit: {}. Number of additional shards that would have resulted from this request: {additional}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
                self.cfg.account_id, self.cfg.region, self.cfg.shard_limit
            ),
        )
    }

    /// The stream a resharding call names; not found in CREATING / DELETING.
    fn reshard_target(
        &self,
        st: &StreamTable,
        name: &str,
    ) -> Result<std::sync::Arc<StreamMeta>, ServiceError> {
        let s = st.streams.get(name).cloned().ok_or_else(|| self.not_found(name))?;
        if matches!(s.status, StreamStatus::Creating | StreamStatus::Deleting) {
            return Err(self.not_found(name));
        }
        Ok(s)
    }

    pub(crate) fn split_shard(&self, req: SplitShardInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let Some(id) = ShardId::parse_lenient(&req.shard_to_split) else {
            return Err(self.shard_missing(&name, &req.shard_to_split));
        };
        let mut st = self.state.lock();
        let s = self.reshard_target(&st, &name)?;
        if s.mode == StreamMode::OnDemand {
            return Err(Self::provisioned_only("SplitShard"));
        }
        // The stream's state first, then its shards (kinesalite's order, captured from AWS): while
        // UPDATING the new shards of a pending reshard do not exist yet.
        if s.status != StreamStatus::Active {
            return Err(self.not_active(&s));
        }
        let sh = s.shard(id.0).ok_or_else(|| self.shard_missing(&name, &id.to_string()))?;
        let open = open_shard_count(&st);
        if open + 1 > self.cfg.shard_limit {
            return Err(self.shard_limit_error(open, 1));
        }
        let r = sh.range();
        let key = HashKey::parse(&req.new_starting_hash_key).ok();
        // AWS (captured by kinesalite): strictly more than one past the start, less than the end.
        let inside = key.is_some_and(|k| k.0 > r.start.0.saturating_add(1) && k < r.end);
        if !inside {
            return Err(ServiceError::invalid_argument(format!(
                "NewStartingHashKey {} used in SplitShard() on shard {id} in stream {name} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                req.new_starting_hash_key, self.cfg.account_id, sh.start_hash, sh.end_hash
            )));
        }
        if !sh.is_open() {
            return Err(self.already_resharded(&s, id));
        }
        let at = key.unwrap_or(HashKey::MIN);
        let now = self.clock.now_ms();
        let mut next = (*s).clone();
        let mut counters = st.counters.clone();
        reshard::apply(&mut next, Op::Split { shard: id.0, at }, now, &mut counters)
            .map_err(|e| self.op_error(&s, e))?;
        self.reshard_or_defer(
            &mut st,
            &s,
            next,
            counters,
            PendingStep::Split { shard: id.0, at: at.to_string() },
        )?;
        tracing::info!(stream = %name, shard = %id, "shard split");
        Ok(Output::Empty)
    }

    fn op_error(&self, s: &StreamMeta, e: OpError) -> ServiceError {
        match e {
            OpError::NoSuchShard(i) => self.shard_missing(&s.name, &ShardId(i).to_string()),
            OpError::Closed(i) => self.already_resharded(s, ShardId(i)),
            OpError::KeyOutside | OpError::NotAdjacent => ServiceError::invalid_argument(format!(
                "The resharding step on stream {} is not valid ({e:?}).",
                s.name
            )),
        }
    }

    pub(crate) fn merge_shards(&self, req: MergeShardsInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let mut ids = [ShardId(0); 2];
        for (slot, text) in ids.iter_mut().zip([&req.shard_to_merge, &req.adjacent_shard_to_merge]) {
            *slot = ShardId::parse_lenient(text).ok_or_else(|| self.shard_missing(&name, text))?;
        }
        let mut st = self.state.lock();
        let s = self.reshard_target(&st, &name)?;
        if s.mode == StreamMode::OnDemand {
            return Err(Self::provisioned_only("MergeShards"));
        }
        if s.status != StreamStatus::Active {
            return Err(self.not_active(&s));
        }
        for id in ids {
            if s.shard(id.0).is_none() {
                return Err(self.shard_missing(&name, &id.to_string()));
            }
        }
        let (a, b) = (s.shard(ids[0].0).map(|x| x.range()), s.shard(ids[1].0).map(|x| x.range()));
        // AWS takes the pair in order: ShardToMerge's range must end just below
        // AdjacentShardToMerge's (kinesalite's captures: the inverted pair is "not an adjacent
        // pair of shards eligible for merging").
        let adjacent = match (a, b) {
            (Some(a), Some(b)) => a.end.0.checked_add(1) == Some(b.start.0),
            _ => false,
        };
        if !adjacent || ids[0] == ids[1] {
            return Err(ServiceError::invalid_argument(format!(
                "Shards {} and {} in stream {name} under account {} are not an adjacent pair of shards eligible for merging",
                ids[0], ids[1], self.cfg.account_id
            )));
        }
        for id in ids {
            if s.shard(id.0).is_some_and(|x| !x.is_open()) {
                return Err(self.already_resharded(&s, id));
            }
        }
        let now = self.clock.now_ms();
        let mut next = (*s).clone();
        let mut counters = st.counters.clone();
        let (shard, adjacent) = (ids[0].0, ids[1].0);
        reshard::apply(&mut next, Op::Merge { shard, adjacent }, now, &mut counters)
            .map_err(|e| self.op_error(&s, e))?;
        self.reshard_or_defer(&mut st, &s, next, counters, PendingStep::Merge { shard, adjacent })?;
        tracing::info!(stream = %name, shard = %ids[0], adjacent = %ids[1], "shards merged");
        Ok(Output::Empty)
    }

    pub(crate) fn update_shard_count(&self, req: UpdateShardCountInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = self.reshard_target(&st, &name)?;
        if s.mode == StreamMode::OnDemand {
            return Err(Self::provisioned_only("UpdateShardCount"));
        }
        if s.status != StreamStatus::Active {
            return Err(self.not_active(&s));
        }
        let current = s.open_shard_count();
        let target = req.target_shard_count.max(0) as u64;
        if target > current * 2 {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {current} Target shard count: {target}"
                ),
            ));
        }
        if target * 2 < current {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {current} Target shard count: {target}"
                ),
            ));
        }
        if target > STREAM_SHARDS_MAX {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "UpdateShardCount cannot scale stream {name} under account {} above {STREAM_SHARDS_MAX} shards. Target shard count: {target}",
                    self.cfg.account_id
                ),
            ));
        }
        let recent: Vec<i64> = s.scalings_ms.iter().copied().filter(|t| now - t < DAY_MS).collect();
        if recent.len() >= self.cfg.scalings_per_day as usize {
            let retry = recent.iter().min().copied().unwrap_or(now) + DAY_MS;
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Stream {name} under account {} has already been scaled {} times in the last 24 hours, the limit of UpdateShardCount calls per rolling 24 hours. Retry after {}.",
                    self.cfg.account_id,
                    recent.len(),
                    crate::time::amz_utc_string(retry)
                ),
            ));
        }
        let answer = Output::UpdateShardCount {
            stream_name: name.clone(),
            current_shard_count: current,
            target_shard_count: target,
            stream_arn: self.stream_arn(&name).to_string(),
        };
        if target == current {
            return Ok(answer);
        }
        let mut next = (*s).clone();
        let mut counters = st.counters.clone();
        let (steps, peak) = reshard::scale_uniformly(&mut next, target as u32, now, &mut counters)
            .map_err(|e| self.op_error(&s, e))?;
        let account_open = open_shard_count(&st);
        if account_open - current + peak > self.cfg.shard_limit {
            return Err(self.shard_limit_error(account_open, peak - current));
        }
        next.scalings_ms = recent;
        next.scalings_ms.push(now);
        self.reshard_or_defer(&mut st, &s, next, counters, PendingStep::Scale { target: target as u32 })?;
        tracing::info!(stream = %name, from = current, to = target, steps, "shard count updated");
        Ok(answer)
    }

    pub(crate) fn update_stream_mode(&self, req: UpdateStreamModeInput) -> Result<Output, ServiceError> {
        let name = self.resolve_name(None, Some(&req.stream_arn))?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let mode = match req.stream_mode_details.stream_mode.as_str() {
            "ON_DEMAND" => StreamMode::OnDemand,
            _ => StreamMode::Provisioned,
        };
        if req.warm_throughput_mi_bps.is_some()
            && (mode != StreamMode::OnDemand || st.settings.billing_commitment_enabled_ms.is_none())
        {
            return Err(ServiceError::invalid_argument(
                "WarmThroughputMiBps applies only when switching to ON_DEMAND in an account whose MinimumThroughputBillingCommitment is ENABLED (UpdateAccountSettings).",
            ));
        }
        if mode == s.mode {
            return Err(ServiceError::invalid_argument(format!(
                "Stream {name} under account {} is already in {} mode.",
                self.cfg.account_id,
                mode.as_str()
            )));
        }
        let recent: Vec<i64> = s.mode_switches_ms.iter().copied().filter(|t| now - t < DAY_MS).collect();
        if recent.len() >= MODE_SWITCHES_PER_DAY {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Stream {name} under account {} has already switched capacity mode {MODE_SWITCHES_PER_DAY} times in the last 24 hours, the limit. Retry after {}.",
                    self.cfg.account_id,
                    crate::time::amz_utc_string(recent.iter().min().copied().unwrap_or(now) + DAY_MS)
                ),
            ));
        }
        if mode == StreamMode::OnDemand {
            let on_demand = st.streams.values().filter(|x| x.mode == StreamMode::OnDemand).count() as u64;
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
        let mut next = (*s).clone();
        next.mode = mode;
        next.warm_throughput_mibps =
            if mode == StreamMode::OnDemand { req.warm_throughput_mi_bps } else { None };
        next.mode_switches_ms = recent;
        next.mode_switches_ms.push(now);
        if self.cfg.update_stream_ms > 0 {
            next.status = StreamStatus::Updating;
            next.status_until_ms = now + self.cfg.update_stream_ms as i64;
        }
        self.save(&mut st, next)?;
        tracing::info!(stream = %name, mode = mode.as_str(), "capacity mode switched");
        Ok(Output::Empty)
    }

    /// Pre-scales an ON_DEMAND stream so that it absorbs `WarmThroughputMiBps` of writes without
    /// waiting for on-demand scaling: open shards × the per-shard write limit ≥ the target.
    pub(crate) fn update_stream_warm_throughput(
        &self,
        req: UpdateStreamWarmThroughputInput,
    ) -> Result<Output, ServiceError> {
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        if s.mode != StreamMode::OnDemand {
            return Err(ServiceError::validation(
                "UpdateStreamWarmThroughput is only supported for data streams with the on-demand capacity mode.",
            ));
        }
        if st.settings.billing_commitment_enabled_ms.is_none() {
            return Err(ServiceError::invalid_argument(
                "WarmThroughputMiBps applies only to ON_DEMAND streams in an account whose MinimumThroughputBillingCommitment is ENABLED (UpdateAccountSettings).",
            ));
        }
        let target = req.warm_throughput_mi_bps;
        if target > WARM_THROUGHPUT_MIBPS_MAX {
            return Err(ServiceError::invalid_argument(format!(
                "WarmThroughputMiBps {target} is above the maximum of {WARM_THROUGHPUT_MIBPS_MAX} MiB/s for a stream."
            )));
        }
        let per_shard_mib =
            (self.cfg.limits.shard_write_bytes_per_sec as f64 / (1024.0 * 1024.0)).max(f64::MIN_POSITIVE);
        let needed = ((target as f64 / per_shard_mib).ceil() as u64).min(STREAM_SHARDS_MAX);
        let current = s.open_shard_count();
        let mut next = (*s).clone();
        next.warm_throughput_mibps = Some(target);
        let published = if needed > current {
            let mut counters = st.counters.clone();
            let (_, peak) = reshard::scale_uniformly(&mut next, needed as u32, now, &mut counters)
                .map_err(|e| self.op_error(&s, e))?;
            let account_open = open_shard_count(&st);
            if account_open - current + peak > self.cfg.shard_limit {
                return Err(self.shard_limit_error(account_open, peak - current));
            }
            tracing::info!(stream = %name, from = current, to = needed, target_mibps = target, "warm throughput: pre-scaled");
            self.commit_reshard(&mut st, &s, next, counters, true)?
        } else {
            if self.cfg.update_stream_ms > 0 {
                next.status = StreamStatus::Updating;
                next.status_until_ms = now + self.cfg.update_stream_ms as i64;
            }
            self.save(&mut st, next)?
        };
        Ok(Output::UpdateStreamWarmThroughput {
            stream_arn: self.stream_arn(&name).to_string(),
            stream_name: name,
            warm_throughput: self.warm_throughput_out(&published),
        })
    }

    /// WarmThroughput as DescribeStreamSummary reports it: what was asked, and what the open
    /// shards absorb now.
    pub(crate) fn warm_throughput_out(&self, s: &StreamMeta) -> WarmThroughputOut {
        let per_shard_mib = self.cfg.limits.shard_write_bytes_per_sec / (1024 * 1024);
        WarmThroughputOut {
            target_mibps: s.warm_throughput_mibps.unwrap_or(0),
            current_mibps: (s.open_shard_count() * per_shard_mib) as i64,
        }
    }

    /// On-demand scaling, once per `AUTOSCALE_WINDOW_MS`: measures each open shard's write
    /// demand (admitted or throttled) against its write limit; splits a shard hot for
    /// `autoscale_hot_secs` windows at the middle of its range, and merges one pair of
    /// neighbours cold for `autoscale_cold_secs` windows while more than the initial shards are
    /// open. Through the same path as SplitShard / MergeShards; the stream stays ACTIVE.
    pub(crate) fn autoscale(&self, st: &mut StateGuard<'_>, now: i64) {
        let cfg = &self.cfg;
        let lim = &self.limiter.cfg;
        let streams: Vec<_> = st
            .streams
            .values()
            .filter(|s| s.mode == StreamMode::OnDemand && s.status == StreamStatus::Active)
            .cloned()
            .collect();
        for s in streams {
            let mut hot = Vec::new();
            let mut cold = std::collections::HashSet::new();
            {
                let mut meters = self.limiter.shards.lock();
                for sh in s.shards.iter().filter(|sh| sh.is_open()) {
                    let Some(m) = meters.get_mut(&sh.log_id) else {
                        continue;
                    };
                    let elapsed = now - m.window_start_ms;
                    if elapsed < AUTOSCALE_WINDOW_MS / 2 {
                        continue;
                    }
                    let secs = elapsed as f64 / 1000.0;
                    let share = (m.window_bytes as f64 / (lim.shard_write_bytes_per_sec as f64 * secs))
                        .max(m.window_records as f64 / (lim.shard_write_records_per_sec as f64 * secs));
                    m.window_start_ms = now;
                    m.window_bytes = 0;
                    m.window_records = 0;
                    m.hot_windows = if share > cfg.autoscale_hot_share { m.hot_windows + 1 } else { 0 };
                    m.cold_windows = if share < cfg.autoscale_cold_share { m.cold_windows + 1 } else { 0 };
                    if m.hot_windows >= cfg.autoscale_hot_secs {
                        hot.push(sh.index);
                    }
                    if m.cold_windows >= cfg.autoscale_cold_secs {
                        cold.insert(sh.index);
                    }
                }
            }
            let mut next = (*s).clone();
            let mut counters = st.counters.clone();
            let mut ops = Vec::new();
            let open_total = open_shard_count(st);
            for index in hot {
                let Some(sh) = s.shard(index) else { continue };
                let r = sh.range();
                let width = r.end.0 - r.start.0;
                if width < 2 || open_total + ops.len() as u64 + 1 > cfg.shard_limit {
                    continue;
                }
                ops.push(Op::Split { shard: index, at: HashKey(r.start.0 + width / 2 + 1) });
            }
            if ops.is_empty() && s.open_shard_count() > ON_DEMAND_INITIAL_SHARDS as u64 {
                let open = reshard::open_by_range(&s);
                if let Some(w) =
                    open.windows(2).find(|w| cold.contains(&w[0].index) && cold.contains(&w[1].index))
                {
                    ops.push(Op::Merge { shard: w[0].index, adjacent: w[1].index });
                }
            }
            if ops.is_empty() {
                continue;
            }
            let mut ok = true;
            for op in &ops {
                if let Err(e) = reshard::apply(&mut next, *op, now, &mut counters) {
                    tracing::warn!(stream = %s.name, op = ?op, error = ?e, "on-demand scaling step skipped");
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            match self.commit_reshard(st, &s, next, counters, false) {
                Ok(_) => {
                    for op in &ops {
                        tracing::info!(stream = %s.name, step = ?op, "on-demand scaling");
                    }
                }
                Err(e) => {
                    tracing::warn!(stream = %s.name, error = %e, "on-demand scaling failed; will retry")
                }
            }
        }
    }
}
