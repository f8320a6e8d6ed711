//! Throughput limits (token buckets) and the per-shard traffic meters that drive on-demand scaling.
//!
//! Per shard, as on AWS: writes 1 MiB/s and 1,000 records/s; GetRecords 5 calls/s and 2 MiB/s;
//! GetShardIterator 5 calls/s. Per account: control-plane call rates (reference §3.8), as the
//! operation table gives them (`kinesin_wire::operation::Op::control_rate_per_sec`). Each
//! bucket holds one second of its rate, so a shard that was idle absorbs a one-second burst and
//! then settles at the rate. A record larger than the write-bytes bucket (up to the stream's
//! MaxRecordSizeInKiB, 10 MiB at most) is admitted when the bucket is full and puts it in debt,
//! paid back at the rate before the shard takes more writes: AWS's large records "burst beyond
//! the sustained write throughput, then return to the baseline over time", so a shard still
//! averages 1 MiB/s. Read bytes work the other way round, as AWS documents: a GetRecords
//! call is admitted while the shard's read budget is not in debt, its response is charged after
//! the fact, and a 10 MiB response therefore blocks the next 5 seconds of reads at 2 MiB/s.
//!
//! Buckets run on the service's clock, so tests with a manual clock are deterministic.

use std::collections::HashMap;

use kinesin_wire::operation::Op;
use parking_lot::Mutex;

pub const MIB: u64 = 1024 * 1024;

/// The rates the server enforces. `enabled == false` (`--limits off`) admits everything.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    pub enabled: bool,
    pub shard_write_bytes_per_sec: u64,
    pub shard_write_records_per_sec: u64,
    pub shard_read_calls_per_sec: u64,
    pub shard_read_bytes_per_sec: u64,
    pub shard_iterator_calls_per_sec: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig::aws()
    }
}

impl LimitsConfig {
    /// AWS's defaults.
    pub fn aws() -> LimitsConfig {
        LimitsConfig {
            enabled: true,
            shard_write_bytes_per_sec: MIB,
            shard_write_records_per_sec: 1000,
            shard_read_calls_per_sec: 5,
            shard_read_bytes_per_sec: 2 * MIB,
            shard_iterator_calls_per_sec: 5,
        }
    }

    /// `--limits aws|off`.
    pub fn parse_mode(text: &str) -> Result<LimitsConfig, String> {
        match text {
            "aws" => Ok(LimitsConfig::aws()),
            "off" => Ok(LimitsConfig { enabled: false, ..LimitsConfig::aws() }),
            other => Err(format!("--limits {other}: expected `aws` or `off`")),
        }
    }

    /// Per-shard overrides, `write-mib=2,write-records=2000,read-mib=4,read-calls=10,iterator-calls=10`,
    /// for hardware bigger than a Kinesis shard. Keys not given keep their value.
    pub fn apply_overrides(&mut self, text: &str) -> Result<(), String> {
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) =
                item.split_once('=').ok_or_else(|| format!("--shard-limits {item}: expected KEY=VALUE"))?;
            let n: u64 = value
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("--shard-limits {item}: the value must be a positive integer"))?;
            match key.trim() {
                "write-mib" => self.shard_write_bytes_per_sec = n * MIB,
                "write-records" => self.shard_write_records_per_sec = n,
                "read-mib" => self.shard_read_bytes_per_sec = n * MIB,
                "read-calls" => self.shard_read_calls_per_sec = n,
                "iterator-calls" => self.shard_iterator_calls_per_sec = n,
                other => {
                    return Err(format!(
                        "--shard-limits: unknown key {other}; known: write-mib, write-records, read-mib, read-calls, iterator-calls"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A token bucket on a millisecond clock.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    rate_per_ms: f64,
    cap: f64,
    last_ms: i64,
}

impl Bucket {
    /// A full bucket holding `cap` tokens, refilled at `rate_per_sec`.
    pub(crate) fn new(rate_per_sec: u64, cap: f64, now: i64) -> Bucket {
        Bucket { tokens: cap, rate_per_ms: rate_per_sec as f64 / 1000.0, cap, last_ms: now }
    }

    fn refill(&mut self, now: i64) {
        if now > self.last_ms {
            self.tokens = (self.tokens + (now - self.last_ms) as f64 * self.rate_per_ms).min(self.cap);
            self.last_ms = now;
        }
    }

    pub(crate) fn available(&mut self, now: i64) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Takes `n`, or — when `n` is more than the bucket holds — takes it into debt once the
    /// bucket is full (large records; see the module comment).
    pub(crate) fn try_take_or_burst(&mut self, n: f64, now: i64) -> bool {
        self.refill(now);
        if self.tokens >= n.min(self.cap) {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    fn can_take_or_burst(&mut self, n: f64, now: i64) -> bool {
        self.available(now) >= n.min(self.cap)
    }

    pub(crate) fn try_take(&mut self, n: f64, now: i64) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` even into debt (read bytes are charged after the response).
    pub(crate) fn charge(&mut self, n: f64, now: i64) {
        self.refill(now);
        self.tokens -= n;
    }
}

/// One shard's buckets and its traffic over the current measuring window.
#[derive(Debug)]
pub(crate) struct ShardMeter {
    write_bytes: Bucket,
    write_records: Bucket,
    read_calls: Bucket,
    read_bytes: Bucket,
    iterator_calls: Bucket,
    /// Write demand (admitted or not) since `window_start_ms`.
    pub(crate) window_start_ms: i64,
    pub(crate) window_bytes: u64,
    pub(crate) window_records: u64,
    /// Consecutive windows above the hot threshold / below the cold one.
    pub(crate) hot_windows: u32,
    pub(crate) cold_windows: u32,
}

impl ShardMeter {
    fn new(cfg: &LimitsConfig, now: i64) -> ShardMeter {
        ShardMeter {
            write_bytes: Bucket::new(
                cfg.shard_write_bytes_per_sec,
                cfg.shard_write_bytes_per_sec as f64,
                now,
            ),
            write_records: Bucket::new(
                cfg.shard_write_records_per_sec,
                cfg.shard_write_records_per_sec as f64,
                now,
            ),
            read_calls: Bucket::new(cfg.shard_read_calls_per_sec, cfg.shard_read_calls_per_sec as f64, now),
            // No stored credit: see the module comment.
            read_bytes: Bucket::new(cfg.shard_read_bytes_per_sec, 0.0, now),
            iterator_calls: Bucket::new(
                cfg.shard_iterator_calls_per_sec,
                cfg.shard_iterator_calls_per_sec as f64,
                now,
            ),
            window_start_ms: now,
            window_bytes: 0,
            window_records: 0,
            hot_windows: 0,
            cold_windows: 0,
        }
    }
}

/// Every bucket of the service, keyed by shard log id (unique for the data dir's life).
pub(crate) struct Limiter {
    pub(crate) cfg: LimitsConfig,
    pub(crate) shards: Mutex<HashMap<u64, ShardMeter>>,
    control: Mutex<HashMap<Op, Bucket>>,
}

impl Limiter {
    pub(crate) fn new(cfg: LimitsConfig) -> Limiter {
        Limiter { cfg, shards: Mutex::new(HashMap::new()), control: Mutex::new(HashMap::new()) }
    }

    /// Admits (true) or refuses each write of `sizes` (bytes of data + partition key) to one
    /// shard, in order. Refused writes still count as demand for on-demand scaling.
    pub(crate) fn admit_writes(&self, log_id: u64, sizes: &[usize], now: i64) -> Vec<bool> {
        let mut shards = self.shards.lock();
        let m = shards.entry(log_id).or_insert_with(|| ShardMeter::new(&self.cfg, now));
        sizes
            .iter()
            .map(|&size| {
                m.window_bytes += size as u64;
                m.window_records += 1;
                if !self.cfg.enabled {
                    return true;
                }
                let ok = m.write_records.available(now) >= 1.0
                    && m.write_bytes.can_take_or_burst(size as f64, now);
                if ok {
                    m.write_records.try_take(1.0, now);
                    m.write_bytes.try_take_or_burst(size as f64, now);
                }
                ok
            })
            .collect()
    }

    /// Admits one GetRecords call on a shard.
    pub(crate) fn admit_read(&self, log_id: u64, now: i64) -> bool {
        if !self.cfg.enabled {
            return true;
        }
        let mut shards = self.shards.lock();
        let m = shards.entry(log_id).or_insert_with(|| ShardMeter::new(&self.cfg, now));
        if m.read_bytes.available(now) < 0.0 {
            return false;
        }
        m.read_calls.try_take(1.0, now)
    }

    /// Charges the bytes a GetRecords response carried.
    pub(crate) fn charge_read(&self, log_id: u64, bytes: usize, now: i64) {
        if !self.cfg.enabled {
            return;
        }
        let mut shards = self.shards.lock();
        if let Some(m) = shards.get_mut(&log_id) {
            m.read_bytes.charge(bytes as f64, now);
        }
    }

    pub(crate) fn admit_iterator(&self, log_id: u64, now: i64) -> bool {
        if !self.cfg.enabled {
            return true;
        }
        let mut shards = self.shards.lock();
        let m = shards.entry(log_id).or_insert_with(|| ShardMeter::new(&self.cfg, now));
        m.iterator_calls.try_take(1.0, now)
    }

    /// Admits one call of `op` for the account; operations without a control-plane rate are
    /// always admitted.
    pub(crate) fn admit_control(&self, op: Op, now: i64) -> bool {
        let Some(rate) = op.control_rate_per_sec() else {
            return true;
        };
        if !self.cfg.enabled {
            return true;
        }
        let mut control = self.control.lock();
        control.entry(op).or_insert_with(|| Bucket::new(rate as u64, rate as f64, now)).try_take(1.0, now)
    }

    /// Forgets the meters of shards whose logs are gone.
    pub(crate) fn forget(&self, log_ids: impl Iterator<Item = u64>) {
        let mut shards = self.shards.lock();
        for id in log_ids {
            shards.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_settle_at_the_rate_after_a_one_second_burst() {
        let l = Limiter::new(LimitsConfig::aws());
        let mut admitted = 0;
        // 10 s of 3,000 offered records/s in 10 ms steps.
        for step in 0..1000 {
            let now = step * 10;
            admitted += l.admit_writes(1, &[10; 30], now).iter().filter(|a| **a).count();
        }
        // 1,000 of burst plus 1,000/s for 10 s (the last step's refill included).
        assert!((10_900..=11_000).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_large_record_bursts_once_and_is_paid_back_at_the_rate() {
        let l = Limiter::new(LimitsConfig::aws());
        let ten_mib = 10 * MIB as usize;
        // An idle shard takes a 10 MiB record: 9 MiB of debt at 1 MiB/s.
        assert_eq!(l.admit_writes(1, &[ten_mib], 0), vec![true]);
        assert_eq!(l.admit_writes(1, &[1], 8_999), vec![false], "still in debt");
        assert_eq!(l.admit_writes(1, &[1], 9_001), vec![true]);
        // Another large record needs the whole bucket back: 1 MiB more.
        assert_eq!(l.admit_writes(1, &[MIB as usize + 1], 9_900), vec![false]);
        assert_eq!(l.admit_writes(1, &[MIB as usize + 1], 10_002), vec![true]);
        // Sustained: 10 MiB records every 10 s, never faster.
        let mut admitted = 0;
        for step in 0..600 {
            admitted += l.admit_writes(1, &[ten_mib], 20_000 + step * 100).iter().filter(|a| **a).count();
        }
        assert_eq!(admitted, 6, "60 s at 1 MiB/s is six 10 MiB records");
    }

    #[test]
    fn a_large_read_blocks_reads_until_paid_off() {
        let l = Limiter::new(LimitsConfig::aws());
        assert!(l.admit_read(1, 0));
        l.charge_read(1, 10 * MIB as usize, 0);
        assert!(!l.admit_read(1, 4_900));
        assert!(l.admit_read(1, 5_000));
    }

    #[test]
    fn off_admits_everything() {
        let l = Limiter::new(LimitsConfig::parse_mode("off").unwrap());
        assert!(l.admit_writes(1, &[MIB as usize; 50], 0).iter().all(|a| *a));
        assert!((0..100).all(|_| l.admit_control(Op::DescribeLimits, 0)));
    }

    #[test]
    fn overrides_parse() {
        let mut c = LimitsConfig::aws();
        c.apply_overrides("write-mib=2, write-records=5000,read-calls=10").unwrap();
        assert_eq!((c.shard_write_bytes_per_sec, c.shard_write_records_per_sec), (2 * MIB, 5000));
        assert_eq!(c.shard_read_calls_per_sec, 10);
        assert!(c.apply_overrides("bogus=1").is_err());
        assert!(c.apply_overrides("write-mib=0").is_err());
    }
}
