//! `kinesin stream create|list|describe|delete|split|merge|scale|retention`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use aws_sdk_kinesis::types::{ScalingType, Shard, StreamMode, StreamModeDetails, StreamStatus};
use aws_sdk_kinesis::Client;
use clap::{Args, Subcommand};

use super::{aws_error, timestamp, ClientArgs};

#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: StreamCommand,
}

#[derive(Subcommand, Debug)]
pub enum StreamCommand {
    /// Create a stream and wait until it is ACTIVE.
    Create {
        name: String,
        /// Shards of a provisioned stream.
        #[arg(long, default_value_t = 1, conflicts_with = "on_demand")]
        shards: i32,
        /// Capacity mode ON_DEMAND instead of PROVISIONED.
        #[arg(long)]
        on_demand: bool,
        /// Return at once instead of waiting for ACTIVE.
        #[arg(long)]
        no_wait: bool,
    },
    /// List stream names.
    List,
    /// Show a stream and its shards.
    Describe { name: String },
    /// Delete a stream (with its consumers).
    Delete { name: String },
    /// Split a shard in two, by default at the middle of its hash key range.
    Split {
        name: String,
        shard_id: String,
        /// Hash key the second child starts at (decimal) [default: middle of the range].
        #[arg(long)]
        at: Option<String>,
    },
    /// Merge two adjacent shards.
    Merge { name: String, shard_id: String, adjacent_shard_id: String },
    /// Change the number of open shards (UpdateShardCount, UNIFORM_SCALING).
    Scale { name: String, shards: i32 },
    /// Set the retention period in hours (24..8760).
    Retention { name: String, hours: i32 },
}

pub async fn run(args: StreamArgs) -> Result<()> {
    let client = args.client.client().await?;
    let ep = args.client.endpoint_url.as_deref();
    match args.command {
        StreamCommand::Create { name, shards, on_demand, no_wait } => {
            let mut req = client.create_stream().stream_name(&name);
            if on_demand {
                req = req.stream_mode_details(
                    StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build()?,
                );
            } else {
                req = req.shard_count(shards);
            }
            req.send().await.map_err(|e| aws_error("CreateStream", ep, e))?;
            if !no_wait {
                wait_active(&client, ep, &name).await?;
            }
            crate::outln!("created stream {name}");
        }
        StreamCommand::List => {
            let mut start: Option<String> = None;
            let mut token: Option<String> = None;
            loop {
                let out = client
                    .list_streams()
                    .set_next_token(token.clone())
                    .set_exclusive_start_stream_name(if token.is_none() { start.clone() } else { None })
                    .send()
                    .await
                    .map_err(|e| aws_error("ListStreams", ep, e))?;
                for n in out.stream_names() {
                    crate::outln!("{n}");
                }
                if !out.has_more_streams() {
                    break;
                }
                token = out.next_token().map(str::to_string);
                start = out.stream_names().last().cloned();
                if token.is_none() && start.is_none() {
                    break;
                }
            }
        }
        StreamCommand::Describe { name } => {
            let out = client
                .describe_stream_summary()
                .stream_name(&name)
                .send()
                .await
                .map_err(|e| aws_error("DescribeStreamSummary", ep, e))?;
            let Some(s) = out.stream_description_summary() else {
                bail!("DescribeStreamSummary answered no summary")
            };
            crate::outln!("name:        {}", s.stream_name());
            crate::outln!("arn:         {}", s.stream_arn());
            crate::outln!("status:      {}", s.stream_status().as_str());
            let mode = s.stream_mode_details().map_or("PROVISIONED", |m| m.stream_mode().as_str());
            crate::outln!("mode:        {mode}");
            crate::outln!("open shards: {}", s.open_shard_count());
            crate::outln!("retention:   {} h", s.retention_period_hours());
            crate::outln!("created:     {}", timestamp(s.stream_creation_timestamp()));
            let metrics: Vec<&str> = s
                .enhanced_monitoring()
                .iter()
                .flat_map(|m| m.shard_level_metrics().iter().map(|x| x.as_str()))
                .collect();
            if !metrics.is_empty() {
                crate::outln!("shard-level metrics: {}", metrics.join(", "));
            }
            if let Some(c) = s.consumer_count() {
                crate::outln!("consumers:   {c}");
            }
            let shards = list_shards(&client, ep, &name).await?;
            crate::outln!("");
            crate::outln!(
                "{:<22} {:<6} {:<22} {:<22} {:>39} {:>39}",
                "shard",
                "state",
                "parent",
                "adjacent parent",
                "starting hash key",
                "ending hash key"
            );
            for sh in shards {
                let open = sh.sequence_number_range().is_some_and(|r| r.ending_sequence_number().is_none());
                let (start, end) =
                    sh.hash_key_range().map_or(("", ""), |r| (r.starting_hash_key(), r.ending_hash_key()));
                crate::outln!(
                    "{:<22} {:<6} {:<22} {:<22} {:>39} {:>39}",
                    sh.shard_id(),
                    if open { "open" } else { "closed" },
                    sh.parent_shard_id().unwrap_or("-"),
                    sh.adjacent_parent_shard_id().unwrap_or("-"),
                    start,
                    end
                );
            }
        }
        StreamCommand::Delete { name } => {
            client
                .delete_stream()
                .stream_name(&name)
                .enforce_consumer_deletion(true)
                .send()
                .await
                .map_err(|e| aws_error("DeleteStream", ep, e))?;
            crate::outln!("deleting stream {name}");
        }
        StreamCommand::Split { name, shard_id, at } => {
            let at = match at {
                Some(a) => {
                    if a.parse::<u128>().is_err() {
                        bail!("--at {a}: a hash key is a decimal number between 0 and 2^128-1");
                    }
                    a
                }
                None => {
                    let shards = list_shards(&client, ep, &name).await?;
                    let Some(sh) = shards.iter().find(|s| s.shard_id() == shard_id) else {
                        bail!("stream {name} has no shard {shard_id}.\nhint: `kinesin stream describe {name}` lists them")
                    };
                    let r = sh
                        .hash_key_range()
                        .ok_or_else(|| anyhow::anyhow!("shard {shard_id} has no hash key range"))?;
                    let (lo, hi): (u128, u128) =
                        (r.starting_hash_key().parse()?, r.ending_hash_key().parse()?);
                    if lo == hi {
                        bail!("shard {shard_id} covers a single hash key and cannot be split");
                    }
                    (lo + (hi - lo) / 2 + 1).to_string()
                }
            };
            client
                .split_shard()
                .stream_name(&name)
                .shard_to_split(&shard_id)
                .new_starting_hash_key(&at)
                .send()
                .await
                .map_err(|e| aws_error("SplitShard", ep, e))?;
            wait_active(&client, ep, &name).await?;
            crate::outln!("split {shard_id} of {name} at hash key {at}");
        }
        StreamCommand::Merge { name, shard_id, adjacent_shard_id } => {
            client
                .merge_shards()
                .stream_name(&name)
                .shard_to_merge(&shard_id)
                .adjacent_shard_to_merge(&adjacent_shard_id)
                .send()
                .await
                .map_err(|e| aws_error("MergeShards", ep, e))?;
            wait_active(&client, ep, &name).await?;
            crate::outln!("merged {shard_id} and {adjacent_shard_id} of {name}");
        }
        StreamCommand::Scale { name, shards } => {
            let call = client
                .update_shard_count()
                .stream_name(&name)
                .target_shard_count(shards)
                .scaling_type(ScalingType::UniformScaling);
            // First without the SDK's retries, which take LimitExceededException for throttling:
            // a permanent rule would be sent three more times (~2 s) to fail the same way.
            let no_retries = aws_sdk_kinesis::config::Builder::default()
                .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled());
            let out = match call.clone().customize().config_override(no_retries).send().await {
                Ok(out) => out,
                Err(e) if is_permanent(&e) => return Err(scale_error(&client, ep, &name, shards, e).await),
                Err(_) => match call.send().await {
                    Ok(out) => out,
                    Err(e) => return Err(scale_error(&client, ep, &name, shards, e).await),
                },
            };
            wait_active(&client, ep, &name).await?;
            crate::outln!(
                "scaled {name} from {} to {} open shards",
                out.current_shard_count().unwrap_or_default(),
                out.target_shard_count().unwrap_or(shards)
            );
        }
        StreamCommand::Retention { name, hours } => {
            let out = client
                .describe_stream_summary()
                .stream_name(&name)
                .send()
                .await
                .map_err(|e| aws_error("DescribeStreamSummary", ep, e))?;
            let current = out.stream_description_summary().map_or(24, |s| s.retention_period_hours());
            if hours > current {
                client
                    .increase_stream_retention_period()
                    .stream_name(&name)
                    .retention_period_hours(hours)
                    .send()
                    .await
                    .map_err(|e| aws_error("IncreaseStreamRetentionPeriod", ep, e))?;
            } else if hours < current {
                client
                    .decrease_stream_retention_period()
                    .stream_name(&name)
                    .retention_period_hours(hours)
                    .send()
                    .await
                    .map_err(|e| aws_error("DecreaseStreamRetentionPeriod", ep, e))?;
            }
            crate::outln!("retention of {name}: {hours} h (was {current} h)");
        }
    }
    Ok(())
}

/// A failed UpdateShardCount, worded by what the user can do: the factor-of-2 rule and the
/// 24-hour budget are permanent (the same call fails again), so instead of "retry" the message
/// gives the steps that do pass, or the calls this budget does not count.
async fn scale_error<R: std::fmt::Debug>(
    client: &Client,
    ep: Option<&str>,
    name: &str,
    target: i32,
    e: aws_sdk_kinesis::error::SdkError<
        aws_sdk_kinesis::operation::update_shard_count::UpdateShardCountError,
        R,
    >,
) -> anyhow::Error {
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    let (code, message) = (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string());
    let m = message.to_ascii_lowercase();
    if code != "LimitExceededException" || super::limit_kind(&message) == super::Retry::Transient {
        return aws_error("UpdateShardCount", ep, e);
    }
    if m.contains("double") || m.contains("half") {
        let current = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stream_description_summary().map(|s| s.open_shard_count()));
        let Some(current) = current else { return aws_error("UpdateShardCount", ep, e) };
        let steps = scale_steps(current, target);
        let commands: Vec<String> =
            steps.iter().map(|n| format!("`kinesin stream scale {name} {n}`")).collect();
        return anyhow::anyhow!(
            "UpdateShardCount: {code}: {message}\n\
             One UpdateShardCount call can at most double or halve the open shard count \
             ({current} now), so this call fails the same way every time.\n\
             hint: scale in {} steps, one after the other: {} (each step counts against the \
             scalings allowed per rolling 24 hours)",
            steps.len(),
            commands.join(", then ")
        );
    }
    if m.contains("24 hours") || m.contains("per day") || m.contains("rolling") {
        return anyhow::anyhow!(
            "UpdateShardCount: {code}: {message}\n\
             The stream's UpdateShardCount budget for the rolling 24 hours is used up: this call \
             fails until the time above.\n\
             hint: until then, reshard one shard at a time with `kinesin stream split` / \
             `kinesin stream merge`, which this budget does not count"
        );
    }
    aws_error("UpdateShardCount", ep, e)
}

/// Whether a failed call broke a rule that a retry cannot pass (see [`super::limit_kind`]).
fn is_permanent<E: aws_sdk_kinesis::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_kinesis::error::SdkError<E, R>,
) -> bool {
    use aws_sdk_kinesis::error::ProvideErrorMetadata as _;
    match e.code() {
        Some("LimitExceededException") => {
            super::limit_kind(e.message().unwrap_or("")) == super::Retry::Permanent
        }
        Some("InvalidArgumentException" | "ValidationException" | "ResourceNotFoundException") => true,
        _ => false,
    }
}

/// The open shard counts UpdateShardCount passes through from `current` to `target`, each at
/// most double or half of the one before (AWS's rule for one call).
pub fn scale_steps(current: i32, target: i32) -> Vec<i32> {
    let mut steps = Vec::new();
    let mut at = current.max(1);
    while at != target && target > 0 && steps.len() < 64 {
        at = if target > at { (at * 2).min(target) } else { ((at + 1) / 2).max(target) };
        steps.push(at);
    }
    steps
}

/// Every shard of the stream (ListShards, all pages).
pub async fn list_shards(client: &Client, ep: Option<&str>, name: &str) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(name),
        };
        let out = req.send().await.map_err(|e| aws_error("ListShards", ep, e))?;
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(shards),
        }
    }
}

/// Polls until the stream is ACTIVE (at most 5 minutes, like the SDK waiters).
async fn wait_active(client: &Client, ep: Option<&str>, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let out = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| aws_error("DescribeStreamSummary", ep, e))?;
        if out.stream_description_summary().is_some_and(|s| *s.stream_status() == StreamStatus::Active) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("stream {name} did not become ACTIVE within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::scale_steps;

    #[test]
    fn scale_in_steps_of_at_most_two() {
        assert_eq!(scale_steps(1, 4), vec![2, 4]);
        assert_eq!(scale_steps(3, 10), vec![6, 10]);
        assert_eq!(scale_steps(10, 2), vec![5, 3, 2]);
        assert_eq!(scale_steps(4, 4), Vec::<i32>::new());
        assert_eq!(scale_steps(2, 3), vec![3]);
    }
}
