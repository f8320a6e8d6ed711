//! `kinesin tail`: reads every shard of a stream from a chosen position and prints the records.
//!
//! Shards are read parents first, as AWS recommends: a shard starts once every parent it has in
//! the stream has been read to its end, so a key's records come out in order across a reshard.
//! A closed shard's end names its children (GetRecords `ChildShards`), which are then read from
//! TRIM_HORIZON. Without `-f` each shard is read up to its tip (the newest record when it is
//! reached) and the command ends; with `-f` open shards are polled until interrupted.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_sdk_kinesis::Client;
use base64::Engine;
use clap::{Args, ValueEnum};
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
pub struct TailArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Stream to read.
    pub stream: String,
    /// Where to start: `trim-horizon`, `latest`, `at-timestamp:<RFC 3339>` or
    /// `at-sequence:<sequence number>` (reads the shard holding it, then its descendants).
    #[arg(long, default_value = "trim-horizon")]
    pub from: String,
    /// Output: `text` (the data, one record per line), `json` (one object per record) or `hex`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Keep following new records (and new shards after a reshard) until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Hex,
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
    pub fn parse(s: &str) -> Result<From> {
        Ok(match s {
            "trim-horizon" => From::TrimHorizon,
            "latest" => From::Latest,
            _ => match s.split_once(':') {
                Some(("at-timestamp", t)) => From::AtTimestamp(
                    DateTime::from_str(t, DateTimeFormat::DateTime).map_err(|e| {
                        anyhow::anyhow!("--from {s}: not an RFC 3339 time ({e}), e.g. at-timestamp:2025-01-31T12:00:00Z")
                    })?,
                ),
                Some(("at-sequence", n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    From::AtSequence(n.to_string())
                }
                _ => bail!(
                    "--from {s}: expected trim-horizon, latest, at-timestamp:<RFC 3339> or at-sequence:<sequence number>"
                ),
            },
        })
    }
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
}

pub async fn run(args: TailArgs) -> Result<()> {
    let from = From::parse(&args.from).unwrap_or_else(|e| super::exit_with(e, 2));
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
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

    let out = std::sync::Arc::new(parking_lot::Mutex::new(std::io::stdout()));
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
            let (format, follow) = (args.format, args.follow);
            readers.spawn(async move {
                let ended = read_shard(
                    &client,
                    ep.as_deref(),
                    &stream,
                    &id,
                    &start,
                    format,
                    follow,
                    &out,
                    started_ms,
                )
                .await?;
                Ok((id, ended))
            });
        }
        let Some(joined) = readers.join_next().await else { break };
        let (id, ended) = joined??;
        if let Ended::Closed(children) = ended {
            finished.insert(id);
            for (child, parents) in children {
                known.entry(child).or_insert(Known { parents, start: From::TrimHorizon });
            }
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
    format: Format,
    follow: bool,
    out: &parking_lot::Mutex<std::io::Stdout>,
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
        let resp = match client.get_records().shard_iterator(&it).limit(GET_RECORDS_LIMIT).send().await {
            Ok(r) => r,
            Err(e) if e.code() == Some("ProvisionedThroughputExceededException") => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                iterator = Some(it);
                continue;
            }
            Err(e) => return Err(aws_error("GetRecords", ep, e)),
        };
        if !resp.records().is_empty() {
            let mut text = Vec::new();
            for r in resp.records() {
                render(&mut text, shard, r, format);
            }
            let mut o = out.lock();
            o.write_all(&text)?;
            o.flush()?;
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

fn render(out: &mut Vec<u8>, shard: &str, r: &Record, format: Format) {
    let data = r.data().as_ref();
    match format {
        Format::Text => {
            out.extend_from_slice(data);
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
            let _ = serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj));
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        assert_eq!(From::parse("trim-horizon").unwrap(), From::TrimHorizon);
        assert_eq!(From::parse("latest").unwrap(), From::Latest);
        assert_eq!(From::parse("at-sequence:123").unwrap(), From::AtSequence("123".into()));
        assert!(matches!(From::parse("at-timestamp:2025-01-31T12:00:00Z").unwrap(), From::AtTimestamp(_)));
        assert!(From::parse("at-timestamp:yesterday").is_err());
        assert!(From::parse("at-sequence:x").is_err());
        assert!(From::parse("oldest").is_err());
    }
}
