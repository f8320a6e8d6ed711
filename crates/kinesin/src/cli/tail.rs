//! `kinesin tail`: reads every shard of a stream from a chosen position and prints the records.
//!
//! Shards are read parents first, as AWS recommends: a shard starts once every parent it has in
//! the stream has been read to its end, so a key's records come out in order across a reshard.
//! A closed shard's end names its children (GetRecords `ChildShards`), which are then read from
//! TRIM_HORIZON. Without `-f` each shard is read up to its tip (the newest record when it is
//! reached) and the command ends; with `-f` open shards are polled until interrupted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_sdk_kinesis::Client;
use base64::Engine;
use clap::Args;
use tokio::task::JoinSet;

use super::{aws_error, timestamp, ClientArgs};

/// Pause between GetRecords calls on a shard that returned nothing (AWS suggests >= 1 s per
/// consumer; kinesin answers 5 calls/s per shard).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause after a call that returned records, to stay under 5 calls/s per shard.
const BUSY_POLL: Duration = Duration::from_millis(200);
/// Records per GetRecords call.
const GET_RECORDS_LIMIT: i32 = 10_000;

#[derive(Args, Debug)]
#[command(after_help = FORMAT_HELP)]
pub struct TailArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Stream to read.
    pub stream: String,
    /// Where to start: `trim-horizon` (the oldest record), `latest` (only new records),
    /// `at-sequence:<sequence number>` (reads the shard holding it, then its descendants) or
    /// `at-timestamp:<time>`, the time in RFC 3339 (`2026-12-04T10:00:00Z`,
    /// `2026-12-04T10:00:00+02:00`), epoch seconds or milliseconds (`1796378400`,
    /// `1796378400000`), or relative to now (`-30s`, `-5m`, `-2h`, `-1d`).
    #[arg(long, default_value = "trim-horizon", value_name = "POSITION")]
    pub from: String,
    /// Output: `text` (each record's data on a line, escaped), `json` (one object per record),
    /// `hex`, or a kcat-style template such as `'%p %o %k: %s\n'` (tokens below).
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub format: String,
    /// Write the data (and keys) as the bytes they are, unescaped: for piping binary records.
    /// With `text` or a template only.
    #[arg(long)]
    pub raw: bool,
    /// Stop after N records (counted across all shards).
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Keep following new records (and new shards after a reshard) until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

const FORMAT_HELP: &str = "\
Output is safe on a terminal: unless --raw, text and templates show control characters, invalid
UTF-8 and bidirectional-text controls escaped (\\n, \\t, \\r, \\xHH, \\u{HHHH}); a backslash stays as
it is, so for the exact bytes use --raw, hex or json (its data_base64).

--format templates (as kcat's -f):
  %s  the data                          %S  the data's size in bytes
  %k  the partition key                 %K  the partition key's size in bytes
  %p  the shard id                      %o  the sequence number
  %T  the approximate arrival time, milliseconds since the epoch
  %t  the stream name                   %%  a percent sign
  \\n \\t \\r \\\\ \\xHH  newline, tab, carriage return, backslash, the byte HH
A template has no newline of its own: end it with \\n for one record per line.

Examples:
  kinesin tail orders --count 10 --format '%p %o %k %s\\n'
  kinesin tail orders --from at-timestamp:-15m -f --format json
  kinesin tail images --raw --format '%s' > blobs.bin";

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The data, escaped (or raw), one record per line.
    Text,
    Json,
    Hex,
    Template(Vec<Piece>),
}

/// One part of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(Vec<u8>),
    Data,
    DataSize,
    Key,
    KeySize,
    Shard,
    Sequence,
    ArrivalMs,
    Stream,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "text" => return Ok(Format::Text),
            "json" => return Ok(Format::Json),
            "hex" => return Ok(Format::Hex),
            _ => {}
        }
        if !s.contains('%') && !s.contains('\\') {
            bail!("--format {s}: expected text, json, hex or a template with %-tokens such as '%k %s\\n' (see `kinesin tail --help`)");
        }
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'%' || c == b'\\' {
                let Some(&t) = b.get(i + 1) else {
                    bail!("--format {s}: a template ends with a lone {}", c as char)
                };
                i += 2;
                if c == b'\\' {
                    match t {
                        b'n' => lit.push(b'\n'),
                        b't' => lit.push(b'\t'),
                        b'r' => lit.push(b'\r'),
                        b'\\' => lit.push(b'\\'),
                        b'x' => {
                            let hex = b.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                            let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                                bail!("--format {s}: \\x takes two hex digits, e.g. \\x1f")
                            };
                            lit.push(v);
                            i += 2;
                        }
                        _ => bail!(
                            "--format {s}: unknown escape \\{}; known: \\n \\t \\r \\\\ \\xHH",
                            t as char
                        ),
                    }
                    continue;
                }
                let piece = match t {
                    b'%' => {
                        lit.push(b'%');
                        continue;
                    }
                    b's' => Piece::Data,
                    b'S' => Piece::DataSize,
                    b'k' => Piece::Key,
                    b'K' => Piece::KeySize,
                    b'p' => Piece::Shard,
                    b'o' => Piece::Sequence,
                    b'T' => Piece::ArrivalMs,
                    b't' => Piece::Stream,
                    _ => bail!(
                        "--format {s}: unknown token %{}; known: %s %S %k %K %p %o %T %t %% (see `kinesin tail --help`)",
                        String::from_utf8_lossy(&b[i - 1..(i - 1 + utf8_len(t)).min(b.len())])
                    ),
                };
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(piece);
            } else {
                lit.push(c);
                i += 1;
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Format::Template(pieces))
    }
}

/// The length of the UTF-8 sequence a leading byte starts (for naming an unknown token).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

/// Where reading starts.
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    TrimHorizon,
    Latest,
    AtTimestamp(DateTime),
    AtSequence(String),
}

impl From {
    /// `now_ms` anchors relative times (`at-timestamp:-5m`).
    pub fn parse(s: &str, now_ms: i64) -> Result<From> {
        Ok(match s {
            "trim-horizon" => From::TrimHorizon,
            "latest" => From::Latest,
            _ => match s.split_once(':') {
                Some(("at-timestamp", t)) => {
                    let ms = parse_time(t, now_ms).map_err(|e| {
                        anyhow::anyhow!(
                            "--from {s}: {e}.\nhint: give RFC 3339 (at-timestamp:2026-12-04T10:00:00Z, or with an offset: +02:00), epoch seconds or milliseconds, or a time relative to now (at-timestamp:-5m; units s, m, h, d)"
                        )
                    })?;
                    From::AtTimestamp(DateTime::from_millis(ms))
                }
                Some(("at-sequence", n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    From::AtSequence(n.to_string())
                }
                _ => bail!(
                    "--from {s}: expected trim-horizon, latest, at-timestamp:<time> or at-sequence:<sequence number>"
                ),
            },
        })
    }
}

/// A time for `at-timestamp:` as milliseconds since the epoch: RFC 3339 (`Z` or an offset,
/// optional fraction; a space may stand for the `T`), epoch seconds (optionally with a fraction)
/// or milliseconds (13 digits and more), or `-<n><unit>` before `now_ms` (units s, m, h, d).
pub fn parse_time(t: &str, now_ms: i64) -> std::result::Result<i64, String> {
    let t = t.trim();
    if t.is_empty() {
        return Err("no time given".into());
    }
    if let Some(rel) = t.strip_prefix('-') {
        let split = rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len());
        let (n, unit) = rel.split_at(split);
        let n: i64 = n.parse().map_err(|_| format!("{t:?} is not a relative time like -5m"))?;
        let unit_ms: i64 = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("{t:?} has no unit (s, m, h or d)")),
            u => return Err(format!("unknown unit {u:?} in {t:?} (s, m, h or d)")),
        };
        return n.checked_mul(unit_ms).map(|d| now_ms - d).ok_or_else(|| format!("{t:?} is too far back"));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() || frac.contains('.') {
            return Err(format!("{t:?} is not a number of seconds"));
        }
        let v: i64 = int.parse().map_err(|_| format!("{t:?} is out of range"))?;
        // 13 digits and more: milliseconds (as seconds that would be after the year 5000).
        if int.len() >= 13 && frac.is_empty() {
            return Ok(v);
        }
        let frac_ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap_or(0);
        return v.checked_mul(1000).map(|ms| ms + frac_ms).ok_or_else(|| format!("{t:?} is out of range"));
    }
    parse_rfc3339(t).ok_or_else(|| {
        format!("{t:?} is not an RFC 3339 time (e.g. 2026-12-04T10:00:00Z or 2026-12-04T10:00:00+02:00)")
    })
}

/// RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to epoch milliseconds.
fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let frac = &t[i + 1..i + 1 + digits];
        frac_ms = format!("{frac:0<3}")[..3].parse().ok()?;
        i += 1 + digits;
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset_s) * 1000 + frac_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A shard known to the reader.
#[derive(Debug, Clone)]
struct Known {
    parents: Vec<String>,
    /// How to start reading it (children found at a parent's end start at TRIM_HORIZON).
    start: From,
}

/// Why a shard reader stopped.
enum Ended {
    /// The shard is closed and read to its end; these are its children (id, parents).
    Closed(Vec<(String, Vec<String>)>),
    /// Read up to the tip (without `-f`).
    AtTip,
    /// `--count` records are printed: the command is done.
    Counted,
}

/// The output, shared by the shard readers: renders records and stops at `--count`.
struct Printer {
    format: Format,
    raw: bool,
    stream: String,
    /// Records still to print (`--count`); `None`: no limit.
    remaining: parking_lot::Mutex<Option<u64>>,
}

impl Printer {
    /// Prints what it may of `records`; false once `--count` records are printed.
    fn print(&self, shard: &str, records: &[Record]) -> bool {
        let mut remaining = self.remaining.lock();
        let n = remaining.map_or(records.len(), |r| records.len().min(r as usize));
        if n > 0 {
            let mut text = Vec::new();
            for r in &records[..n] {
                render(&mut text, &self.stream, shard, r, &self.format, self.raw);
            }
            // Under the lock: records of one call stay together, and --count is exact.
            super::stdout_write(&text);
        }
        if let Some(r) = remaining.as_mut() {
            *r -= n as u64;
            return *r > 0;
        }
        true
    }

    fn done(&self) -> bool {
        *self.remaining.lock() == Some(0)
    }
}

pub async fn run(args: TailArgs) -> Result<()> {
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let from = From::parse(&args.from, started_ms).unwrap_or_else(|e| super::exit_with(e, 2));
    let format = Format::parse(&args.format).unwrap_or_else(|e| super::exit_with(e, 2));
    if args.raw && matches!(format, Format::Json | Format::Hex) {
        super::exit_with(
            format!("--raw applies to text and templates; --format {} is already safe to print", args.format),
            2,
        );
    }
    let client = args.client.client().await?;
    let ep = args.client.endpoint_url.clone();
    let shards = super::stream::list_shards(&client, ep.as_deref(), &args.stream).await?;

    let mut known: HashMap<String, Known> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let ids: HashSet<String> = shards.iter().map(|s| s.shard_id().to_string()).collect();
    for sh in &shards {
        let parents: Vec<String> = [sh.parent_shard_id(), sh.adjacent_parent_shard_id()]
            .into_iter()
            .flatten()
            .filter(|p| ids.contains(*p))
            .map(str::to_string)
            .collect();
        let open = sh.sequence_number_range().is_some_and(|r| r.ending_sequence_number().is_none());
        known.insert(sh.shard_id().to_string(), Known { parents, start: from.clone() });
        if from == From::Latest && !open {
            // LATEST of a closed shard is its end: nothing to read, but its children may start.
            finished.insert(sh.shard_id().to_string());
        }
    }
    if let From::AtSequence(seq) = &from {
        let holder = find_sequence_shard(&client, ep.as_deref(), &args.stream, &shards, seq).await?;
        // Only the holder and its descendants are read: the others are marked done.
        for sh in &shards {
            if sh.shard_id() != holder {
                finished.insert(sh.shard_id().to_string());
            }
        }
        let mut descendants: HashSet<String> = HashSet::from([holder.clone()]);
        let mut changed = true;
        while changed {
            changed = false;
            for (id, k) in &known {
                if !descendants.contains(id) && k.parents.iter().any(|p| descendants.contains(p)) {
                    descendants.insert(id.clone());
                    changed = true;
                }
            }
        }
        for d in &descendants {
            finished.remove(d);
            if *d != holder {
                if let Some(k) = known.get_mut(d) {
                    k.start = From::TrimHorizon;
                }
            }
        }
    }

    let out = std::sync::Arc::new(Printer {
        format,
        raw: args.raw,
        stream: args.stream.clone(),
        remaining: parking_lot::Mutex::new(args.count),
    });
    let mut started: HashSet<String> = HashSet::new();
    let mut readers: JoinSet<Result<(String, Ended)>> = JoinSet::new();
    loop {
        let mut ready: Vec<String> = known
            .iter()
            .filter(|(id, k)| {
                !started.contains(*id)
                    && !finished.contains(*id)
                    && k.parents.iter().all(|p| finished.contains(p) || !known.contains_key(p))
            })
            .map(|(id, _)| id.clone())
            .collect();
        ready.sort();
        for id in ready {
            started.insert(id.clone());
            let start = known[&id].start.clone();
            let (client, ep, stream, out) = (client.clone(), ep.clone(), args.stream.clone(), out.clone());
            let follow = args.follow;
            readers.spawn(async move {
                let ended =
                    read_shard(&client, ep.as_deref(), &stream, &id, &start, follow, &out, started_ms)
                        .await?;
                Ok((id, ended))
            });
        }
        let Some(joined) = readers.join_next().await else { break };
        let (id, ended) = joined??;
        match ended {
            Ended::Closed(children) => {
                finished.insert(id);
                for (child, parents) in children {
                    known.entry(child).or_insert(Known { parents, start: From::TrimHorizon });
                }
            }
            Ended::Counted => {
                readers.abort_all();
                break;
            }
            Ended::AtTip => {}
        }
    }
    Ok(())
}

/// The shard that accepts `seq` as AT_SEQUENCE_NUMBER.
async fn find_sequence_shard(
    client: &Client,
    ep: Option<&str>,
    stream: &str,
    shards: &[aws_sdk_kinesis::types::Shard],
    seq: &str,
) -> Result<String> {
    for sh in shards {
        let r = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(sh.shard_id())
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(seq)
            .send()
            .await;
        match r {
            Ok(_) => return Ok(sh.shard_id().to_string()),
            Err(e) if e.code() == Some("InvalidArgumentException") => continue,
            Err(e) => return Err(aws_error("GetShardIterator", ep, e)),
        }
    }
    bail!("no shard of stream {stream} holds sequence number {seq}.\nhint: the record may have expired, or belong to another stream")
}

#[allow(clippy::too_many_arguments)]
async fn read_shard(
    client: &Client,
    ep: Option<&str>,
    stream: &str,
    shard: &str,
    start: &From,
    follow: bool,
    out: &Printer,
    started_ms: i64,
) -> Result<Ended> {
    let mut req = client.get_shard_iterator().stream_name(stream).shard_id(shard);
    req = match start {
        From::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        From::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
        From::AtTimestamp(t) => req.shard_iterator_type(ShardIteratorType::AtTimestamp).timestamp(*t),
        From::AtSequence(n) => {
            req.shard_iterator_type(ShardIteratorType::AtSequenceNumber).starting_sequence_number(n)
        }
    };
    let it = req.send().await.map_err(|e| aws_error("GetShardIterator", ep, e))?;
    let mut iterator = it.shard_iterator().map(str::to_string);
    while let Some(it) = iterator.take() {
        if out.done() {
            return Ok(Ended::Counted);
        }
        let resp = match client.get_records().shard_iterator(&it).limit(GET_RECORDS_LIMIT).send().await {
            Ok(r) => r,
            Err(e) if e.code() == Some("ProvisionedThroughputExceededException") => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                iterator = Some(it);
                continue;
            }
            Err(e) => return Err(aws_error("GetRecords", ep, e)),
        };
        if !resp.records().is_empty() && !out.print(shard, resp.records()) {
            return Ok(Ended::Counted);
        }
        match resp.next_shard_iterator() {
            None => {
                let children = resp
                    .child_shards()
                    .iter()
                    .map(|c| (c.shard_id().to_string(), c.parent_shards().to_vec()))
                    .collect();
                return Ok(Ended::Closed(children));
            }
            Some(next) => iterator = Some(next.to_string()),
        }
        let at_tip = resp.millis_behind_latest() == Some(0);
        // Without -f: done once a call finds nothing new, or reaches records that arrived after
        // the command started (a busy shard would otherwise never let it end). MillisBehindLatest
        // 0 alone is not enough: records of the same millisecond may still follow.
        let caught_up = resp
            .records()
            .last()
            .and_then(|r| r.approximate_arrival_timestamp())
            .and_then(|t| t.to_millis().ok())
            .is_some_and(|t| t >= started_ms);
        if !follow && ((at_tip && resp.records().is_empty()) || caught_up) {
            return Ok(Ended::AtTip);
        }
        let idle = follow && (resp.records().is_empty() || at_tip);
        tokio::time::sleep(if idle { IDLE_POLL } else { BUSY_POLL }).await;
    }
    Ok(Ended::AtTip)
}

fn render(out: &mut Vec<u8>, stream: &str, shard: &str, r: &Record, format: &Format, raw: bool) {
    let data = r.data().as_ref();
    let text = |out: &mut Vec<u8>, bytes: &[u8]| {
        if raw {
            out.extend_from_slice(bytes)
        } else {
            escape_into(out, bytes)
        }
    };
    match format {
        Format::Text => {
            text(out, data);
            out.push(b'\n');
        }
        Format::Hex => {
            for b in data {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            out.push(b'\n');
        }
        Format::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("shard_id".into(), shard.into());
            obj.insert("sequence_number".into(), r.sequence_number().into());
            obj.insert("partition_key".into(), r.partition_key().unwrap_or_default().into());
            if let Some(t) = r.approximate_arrival_timestamp() {
                obj.insert("approximate_arrival_timestamp".into(), timestamp(t).into());
            }
            if let Ok(s) = std::str::from_utf8(data) {
                obj.insert("data".into(), s.into());
            }
            obj.insert("data_base64".into(), base64::engine::general_purpose::STANDARD.encode(data).into());
            let mut ser = serde_json::Serializer::with_formatter(&mut *out, TerminalSafeJson);
            let _ = serde::Serialize::serialize(&serde_json::Value::Object(obj), &mut ser);
            out.push(b'\n');
        }
        Format::Template(pieces) => {
            for p in pieces {
                match p {
                    Piece::Literal(l) => out.extend_from_slice(l),
                    Piece::Data => text(out, data),
                    Piece::DataSize => out.extend_from_slice(data.len().to_string().as_bytes()),
                    Piece::Key => text(out, r.partition_key().unwrap_or_default().as_bytes()),
                    Piece::KeySize => out.extend_from_slice(
                        r.partition_key().unwrap_or_default().len().to_string().as_bytes(),
                    ),
                    Piece::Shard => out.extend_from_slice(shard.as_bytes()),
                    Piece::Sequence => out.extend_from_slice(r.sequence_number().as_bytes()),
                    Piece::ArrivalMs => {
                        let ms = r.approximate_arrival_timestamp().map(arrival_ms);
                        out.extend_from_slice(
                            ms.map_or_else(|| "-".to_string(), |m| m.to_string()).as_bytes(),
                        )
                    }
                    Piece::Stream => out.extend_from_slice(stream.as_bytes()),
                }
            }
        }
    }
}

/// Milliseconds since the epoch, rounded: the SDK parses the wire's fractional seconds
/// (`1796378400.031`) through a float, and `to_millis` would truncate `.030999…` to 30.
fn arrival_ms(t: &DateTime) -> i64 {
    t.secs() * 1000 + (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000
}

/// Characters that must not reach a terminal as they are, beyond the ASCII controls below 0x20:
/// DEL and the C1 controls (U+007F..U+009F; a terminal may take U+009B as CSI), bidirectional-text controls (they reorder
/// what is shown: "Trojan Source"), and the Unicode line and paragraph separators.
fn unsafe_char(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `bytes` printable: valid UTF-8 as it is, except `\n` `\t` `\r`, the other ASCII control
/// bytes (`\xHH`), [`unsafe_char`]s (`\u{HHHH}`) and bytes of invalid UTF-8 (`\xHH`).
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.extend_from_slice(b"\\n"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\0'..='\x1f' | '\x7f' => out.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes()),
                c if unsafe_char(c) => out.extend_from_slice(format!("\\u{{{:04x}}}", c as u32).as_bytes()),
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
}

/// serde_json escapes ASCII controls already; this also writes [`unsafe_char`]s as `\uHHHH`,
/// so a JSON line is as safe on a terminal as the text output.
struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| unsafe_char(*c)) {
            w.write_all(&rest.as_bytes()[..i])?;
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_378_400_000; // 2026-12-04T10:00:00Z

    #[test]
    fn positions_parse() {
        assert_eq!(From::parse("trim-horizon", NOW).unwrap(), From::TrimHorizon);
        assert_eq!(From::parse("latest", NOW).unwrap(), From::Latest);
        assert_eq!(From::parse("at-sequence:123", NOW).unwrap(), From::AtSequence("123".into()));
        assert_eq!(
            From::parse("at-timestamp:2025-01-31T12:00:00Z", NOW).unwrap(),
            From::AtTimestamp(DateTime::from_millis(1_738_324_800_000))
        );
        assert!(From::parse("at-timestamp:yesterday", NOW).is_err());
        assert!(From::parse("at-sequence:x", NOW).is_err());
        assert!(From::parse("oldest", NOW).is_err());
    }

    #[test]
    fn times_parse() {
        let p = |t| parse_time(t, NOW);
        assert_eq!(p("2026-12-04T10:00:00Z"), Ok(NOW));
        assert_eq!(p("2026-12-04T12:00:00+02:00"), Ok(NOW));
        assert_eq!(p("2026-12-04T05:30:00-04:30"), Ok(NOW));
        assert_eq!(p("2026-12-04 10:00:00.25z"), Ok(NOW + 250));
        assert_eq!(p("2026-12-04T10:00:00.123456Z"), Ok(NOW + 123));
        assert_eq!(p("1796378400"), Ok(NOW));
        assert_eq!(p("1796378400.5"), Ok(NOW + 500));
        assert_eq!(p("1796378400000"), Ok(NOW));
        assert_eq!(p("-30s"), Ok(NOW - 30_000));
        assert_eq!(p("-5m"), Ok(NOW - 300_000));
        assert_eq!(p("-2h"), Ok(NOW - 7_200_000));
        assert_eq!(p("-1d"), Ok(NOW - 86_400_000));
        assert_eq!(p("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        for bad in [
            "",
            "-5",
            "-5y",
            "-m",
            "2026-02-30T00:00:00Z",
            "2026-12-04T10:00:00",
            "2026-12-04T25:00:00Z",
            "2026-12-04T10:00:00+2:00",
            "2026-12-04",
            "1.2.3",
            "tomorrow",
        ] {
            assert!(p(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn templates_parse() {
        use Piece::*;
        assert_eq!(Format::parse("json").unwrap(), Format::Json);
        assert_eq!(
            Format::parse("%p %o\\t%k=%s 100%%\\n").unwrap(),
            Format::Template(vec![
                Shard,
                Literal(b" ".to_vec()),
                Sequence,
                Literal(b"\t".to_vec()),
                Key,
                Literal(b"=".to_vec()),
                Data,
                Literal(b" 100%\n".to_vec())
            ])
        );
        assert_eq!(Format::parse("%S\\x1e").unwrap(), Format::Template(vec![DataSize, Literal(vec![0x1e])]));
        for bad in ["yaml", "%q", "%", "50\\", "\\q", "\\x1", "%\u{e9}"] {
            assert!(Format::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn record(data: &[u8], key: &str) -> Record {
        Record::builder()
            .sequence_number("4960")
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .approximate_arrival_timestamp(DateTime::from_millis(NOW))
            .build()
            .unwrap()
    }

    fn shown(data: &[u8], format: &str, raw: bool) -> Vec<u8> {
        let mut out = Vec::new();
        render(
            &mut out,
            "s",
            "shardId-000000000000",
            &record(data, "k\x1b"),
            &Format::parse(format).unwrap(),
            raw,
        );
        out
    }

    #[test]
    fn text_is_escaped_unless_raw() {
        let evil = "a\nb\x1b[31mred\x07\t\r\u{9b}2J\u{202e}\\ é".as_bytes();
        let mut data = evil.to_vec();
        data.push(0xff);
        assert_eq!(
            String::from_utf8(shown(&data, "text", false)).unwrap(),
            "a\\nb\\x1b[31mred\\x07\\t\\r\\u{009b}2J\\u{202e}\\ é\\xff\n"
        );
        let mut raw = data.clone();
        raw.push(b'\n');
        assert_eq!(shown(&data, "text", true), raw);
        assert_eq!(
            String::from_utf8(shown(b"x\ny", "%t %p %o %T %k(%K) %S:%s\\n", false)).unwrap(),
            format!("s shardId-000000000000 4960 {NOW} k\\x1b(2) 3:x\\ny\n")
        );
        assert_eq!(shown(b"x\ny", "%s|%k", true), b"x\ny|k\x1b");
    }

    #[test]
    fn json_is_terminal_safe() {
        let out = String::from_utf8(shown("a\x1b\u{9b}\u{202e}\n".as_bytes(), "json", false)).unwrap();
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains(r#""data":"a\u001b\u009b\u202e\n""#), "{out}");
        assert!(out.contains(r#""partition_key":"k\u001b""#), "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["data"], "a\x1b\u{9b}\u{202e}\n");
    }
}
