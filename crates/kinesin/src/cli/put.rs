//! `kinesin put`: records from arguments, stdin lines or files, batched into PutRecords, with
//! the failed records of each batch retried.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::{aws_error, ClientArgs};

/// PutRecords limits (AWS): records and bytes (data + partition keys) per request. The byte
/// budget stays well under the 10 MiB limit so one large record cannot push a batch over.
pub const BATCH_RECORDS_MAX: usize = 500;
pub const BATCH_BYTES_MAX: usize = 5 * 1024 * 1024;
/// Partition keys are at most 256 characters.
const PARTITION_KEY_CHARS_MAX: usize = 256;
/// Inputs larger than this (records) get a progress display on a terminal.
const PROGRESS_RECORDS_MIN: u64 = 1000;

#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Stream to put to.
    pub stream: String,
    /// Records to put (one per argument). Without records or --file, lines of stdin are put.
    pub records: Vec<String>,
    /// Put each line of this file as a record (`-` for stdin; repeatable).
    #[arg(long, short = 'F')]
    pub file: Vec<PathBuf>,
    /// Partition key: `random` (default), `hash` (of the record, so equal records go to the same
    /// shard), `json:FIELD` (that field of a JSON record), `fixed:KEY` or just KEY.
    #[arg(long, short = 'k', default_value = "random")]
    pub partition_key: String,
    /// Attempts per record before giving up (failed records of a batch are retried with backoff).
    #[arg(long, default_value_t = 10)]
    pub max_attempts: u32,
    /// Do not print each record's shard and sequence number (only the summary).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// How each record's partition key is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRule {
    Random,
    Hash,
    JsonField(String),
    Fixed(String),
}

impl KeyRule {
    pub fn parse(s: &str) -> Result<KeyRule> {
        let rule = match s {
            "random" => KeyRule::Random,
            "hash" => KeyRule::Hash,
            _ => match s.split_once(':') {
                Some(("json", f)) if !f.is_empty() => KeyRule::JsonField(f.to_string()),
                Some(("fixed", k)) => KeyRule::Fixed(k.to_string()),
                _ => KeyRule::Fixed(s.to_string()),
            },
        };
        if let KeyRule::Fixed(k) = &rule {
            if k.is_empty() || k.chars().count() > PARTITION_KEY_CHARS_MAX {
                bail!("--partition-key: a partition key has 1 to {PARTITION_KEY_CHARS_MAX} characters");
            }
        }
        Ok(rule)
    }

    /// The key of one record; `line` is its 1-based input line, for messages.
    pub fn key(&self, data: &[u8], line: u64) -> Result<String> {
        Ok(match self {
            KeyRule::Random => format!("{:032x}", rand::random::<u128>()),
            KeyRule::Hash => Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect(),
            KeyRule::Fixed(k) => k.clone(),
            KeyRule::JsonField(field) => {
                let v: serde_json::Value = serde_json::from_slice(data).with_context(|| {
                    format!("record {line} is not JSON, but --partition-key json:{field} reads its field")
                })?;
                let key = match v.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => {
                        bail!("record {line} has no field {field:?} for --partition-key json:{field}")
                    }
                    Some(other) => other.to_string(),
                };
                if key.is_empty() || key.chars().count() > PARTITION_KEY_CHARS_MAX {
                    bail!("record {line}: field {field:?} gives a partition key of {} characters; keys have 1 to {PARTITION_KEY_CHARS_MAX}", key.chars().count());
                }
                key
            }
        })
    }
}

/// Records waiting to be sent; `add` hands back a full batch before it would overflow.
#[derive(Default)]
struct Batch {
    entries: Vec<PutRecordsRequestEntry>,
    bytes: usize,
}

impl Batch {
    fn add(&mut self, entry: PutRecordsRequestEntry, size: usize) -> Option<Vec<PutRecordsRequestEntry>> {
        let full = !self.entries.is_empty()
            && (self.entries.len() >= BATCH_RECORDS_MAX || self.bytes + size > BATCH_BYTES_MAX);
        let out = if full {
            self.bytes = 0;
            Some(std::mem::take(&mut self.entries))
        } else {
            None
        };
        self.entries.push(entry);
        self.bytes += size;
        out
    }
}

pub async fn run(args: PutArgs) -> Result<()> {
    let rule = KeyRule::parse(&args.partition_key).unwrap_or_else(|e| super::exit_with(e, 2));
    let client = args.client.client().await?;
    let ep = args.client.endpoint_url.as_deref();
    let started = Instant::now();
    let mut stats = Stats::default();
    let print_each = !args.quiet && !args.records.is_empty();

    let mut batch = Batch::default();
    // Both the progress bar and the summary count data bytes: the records' payloads as stored
    // (what `kinesin tail --format %S` prints), without line ends and partition keys.
    let mut bar = ProgressBar::hidden();
    let mut line = 0u64;
    let mut entry = |data: Vec<u8>| -> Result<(PutRecordsRequestEntry, usize)> {
        line += 1;
        let key = rule.key(&data, line).unwrap_or_else(|e| super::exit_with(e, 2));
        let size = data.len() + key.len();
        Ok((PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(key).build()?, size))
    };

    if !args.records.is_empty() {
        for r in &args.records {
            let (e, size) = entry(r.clone().into_bytes())?;
            if let Some(full) = batch.add(e, size) {
                send(&client, ep, &args, full, &mut stats, print_each, &bar).await?;
            }
        }
    } else {
        let mut sources: Vec<(String, Box<dyn AsyncBufRead + Unpin>)> = Vec::new();
        let mut total_bytes = 0u64;
        if args.file.is_empty() {
            sources.push(("stdin".into(), Box::new(BufReader::new(tokio::io::stdin()))));
        }
        for path in &args.file {
            if path.as_os_str() == "-" {
                sources.push(("stdin".into(), Box::new(BufReader::new(tokio::io::stdin()))));
                continue;
            }
            let f = tokio::fs::File::open(path)
                .await
                .unwrap_or_else(|e| super::exit_with(format!("cannot read {}: {e}", path.display()), 2));
            total_bytes += f.metadata().await.map(|m| m.len()).unwrap_or(0);
            sources.push((path.display().to_string(), Box::new(BufReader::new(f))));
        }
        bar = if total_bytes > 0 {
            // Starts at the files' sizes and loses each line end (and empty line) as it is read,
            // so that at the end its total is the data bytes put.
            let b = ProgressBar::new(total_bytes);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} of data put, {msg} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        } else {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {bytes} of data put, {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        for (name, mut reader) in sources {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n =
                    reader.read_until(b'\n', &mut buf).await.with_context(|| format!("reading {name}"))?;
                if n == 0 {
                    break;
                }
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                line_read(&bar, n, buf.len());
                if buf.is_empty() {
                    continue;
                }
                let (e, size) = entry(buf.clone())?;
                if let Some(full) = batch.add(e, size) {
                    send(&client, ep, &args, full, &mut stats, false, &bar).await?;
                    if stats.records >= PROGRESS_RECORDS_MIN && bar.is_hidden() {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    bar.set_message(format!("{} records", stats.records));
                }
            }
        }
    }
    if !batch.entries.is_empty() {
        send(&client, ep, &args, batch.entries, &mut stats, print_each, &bar).await?;
    }
    bar.finish_and_clear();
    eprintln!(
        "put {} records ({} bytes of data, {} with partition keys) to {} in {:.2} s{}",
        stats.records,
        stats.data_bytes,
        stats.data_bytes + stats.key_bytes,
        args.stream,
        started.elapsed().as_secs_f64(),
        if stats.retried > 0 { format!(", {} retried", stats.retried) } else { String::new() }
    );
    Ok(())
}

#[derive(Default)]
struct Stats {
    records: u64,
    /// The records' data (payload) bytes.
    data_bytes: u64,
    /// Their partition keys' bytes (UTF-8), which also count against the shard's write limit.
    key_bytes: u64,
    retried: u64,
}

/// The bar's total loses what a line had besides its data (its end; a whole empty line).
fn line_read(bar: &ProgressBar, read: usize, data: usize) {
    if let Some(len) = bar.length() {
        bar.set_length(len.saturating_sub((read - data) as u64));
    }
}

/// Sends one batch; retries its failed records with backoff until they succeed or run out of
/// attempts.
async fn send(
    client: &Client,
    ep: Option<&str>,
    args: &PutArgs,
    mut entries: Vec<PutRecordsRequestEntry>,
    stats: &mut Stats,
    print_each: bool,
    bar: &ProgressBar,
) -> Result<()> {
    let mut attempt = 1;
    let mut backoff = Duration::from_millis(100);
    loop {
        let out = client
            .put_records()
            .stream_name(&args.stream)
            .set_records(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| aws_error("PutRecords", ep, e))?;
        let mut failed = Vec::new();
        let mut last_error = None;
        for (entry, result) in entries.into_iter().zip(out.records()) {
            match result.error_code() {
                None => {
                    let data = entry.data().as_ref().len() as u64;
                    stats.records += 1;
                    stats.data_bytes += data;
                    stats.key_bytes += entry.partition_key().map_or(0, str::len) as u64;
                    bar.inc(data);
                    if print_each {
                        crate::outln!(
                            "{} {}",
                            result.shard_id().unwrap_or("-"),
                            result.sequence_number().unwrap_or("-")
                        );
                    }
                }
                Some(code) => {
                    last_error = Some(format!("{code}: {}", result.error_message().unwrap_or("")));
                    failed.push(entry);
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        if attempt >= args.max_attempts {
            bail!(
                "PutRecords: {} records still failed after {attempt} attempts (last: {}).\nhint: slow down or add shards with `kinesin stream scale`",
                failed.len(),
                last_error.unwrap_or_default()
            );
        }
        stats.retried += failed.len() as u64;
        attempt += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        entries = failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert_eq!(KeyRule::parse("random").unwrap(), KeyRule::Random);
        assert_eq!(KeyRule::parse("hash").unwrap(), KeyRule::Hash);
        assert_eq!(KeyRule::parse("json:user").unwrap(), KeyRule::JsonField("user".into()));
        assert_eq!(KeyRule::parse("fixed:random").unwrap(), KeyRule::Fixed("random".into()));
        assert_eq!(KeyRule::parse("u1").unwrap(), KeyRule::Fixed("u1".into()));
        assert!(KeyRule::parse(&"x".repeat(300)).is_err());
        let h = KeyRule::Hash;
        assert_eq!(h.key(b"a", 1).unwrap(), h.key(b"a", 2).unwrap());
        assert_eq!(h.key(b"a", 1).unwrap().len(), 32);
        let j = KeyRule::JsonField("user".into());
        assert_eq!(j.key(br#"{"user":"bob"}"#, 1).unwrap(), "bob");
        assert_eq!(j.key(br#"{"user":7}"#, 1).unwrap(), "7");
        assert!(j.key(br#"{"x":1}"#, 1).is_err());
        assert!(j.key(b"not json", 1).is_err());
    }

    /// The bar ends where the summary does: at the data bytes, line ends and empty lines left out.
    #[test]
    fn progress_counts_data_bytes() {
        let input = b"ab\r\n\nccc\nd";
        let bar = ProgressBar::hidden();
        bar.set_length(input.len() as u64);
        let mut data_total = 0;
        for line in input.split_inclusive(|b| *b == b'\n') {
            let data = line.strip_suffix(b"\n").unwrap_or(line);
            let data = data.strip_suffix(b"\r").unwrap_or(data);
            line_read(&bar, line.len(), data.len());
            bar.inc(data.len() as u64);
            data_total += data.len() as u64;
        }
        assert_eq!(data_total, 6);
        assert_eq!(bar.length(), Some(6));
        assert_eq!(bar.position(), 6);
    }
}
