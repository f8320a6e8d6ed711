//! Typed inputs and outputs of the operations, independent of the encoding.
//!
//! Inputs are deserialized (by `request::Request`) from a body that `model::check_input` has
//! already checked, so a failure here is a defect of ours, answered as a SerializationException
//! — except an ARN that matches the model's pattern but does not parse, answered as AWS does
//! (InvalidArgumentException). Blobs and timestamps
//! carry their own codecs: in a human-readable format (JSON) a blob is base64 and a timestamp is
//! epoch seconds with milliseconds; in a binary one (CBOR, `cbor.rs`) a blob is raw bytes and a
//! timestamp epoch milliseconds (tag 1).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::ids::{ConsumerArn, ConsumerName, StreamArn, StreamName};

/// Record data, and anything else the model calls a blob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blob(pub Bytes);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string or bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(|b| Blob(Bytes::from(b)))
                    .map_err(E::custom)
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(Bytes::from(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A point in time, in epoch milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

/// JSON timestamps above this are taken as milliseconds: the Java v1 SDK sends milliseconds when
/// CBOR is disabled (reference §2.3), and no real seconds value is this large before year 5138.
const JSON_SECONDS_MAX: f64 = 1e11;

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // Whole seconds print as an integer; otherwise seconds with up to 3 decimals and
            // never an exponent (some SDKs reject 1.6E9).
            if self.0 % 1000 == 0 {
                s.serialize_i64(self.0 / 1000)
            } else {
                s.serialize_f64(self.0 as f64 / 1000.0)
            }
        } else {
            // CBOR writes this newtype as tag 1 + ms (reference §2.3); others as the integer.
            s.serialize_newtype_struct(crate::cbor::EPOCH_MILLIS, &self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let human = d.is_human_readable();
        let v = f64::deserialize(d)?;
        if !v.is_finite() {
            return Err(de::Error::custom("timestamp is not a finite number"));
        }
        if human && v.abs() < JSON_SECONDS_MAX {
            Ok(Timestamp((v * 1000.0).round() as i64))
        } else {
            Ok(Timestamp(v as i64))
        }
    }
}

/// An operation's input. Members the model requires are plain fields (a body without one does
/// not decode); optional ones are `Option`s. Names, ARNs and enums are their own types, parsed
/// once here.
macro_rules! input {
    ($name:ident { $($(#[$meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name { $($(#[$meta])* pub $field: $ty),* }
    };
}

/// Where a shard iterator (or a subscription) starts: the model's `ShardIteratorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ShardIteratorType {
    #[serde(rename = "AT_SEQUENCE_NUMBER")]
    AtSequenceNumber,
    #[serde(rename = "AFTER_SEQUENCE_NUMBER")]
    AfterSequenceNumber,
    #[serde(rename = "TRIM_HORIZON")]
    TrimHorizon,
    #[serde(rename = "LATEST")]
    Latest,
    #[serde(rename = "AT_TIMESTAMP")]
    AtTimestamp,
}

impl ShardIteratorType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardIteratorType::AtSequenceNumber => "AT_SEQUENCE_NUMBER",
            ShardIteratorType::AfterSequenceNumber => "AFTER_SEQUENCE_NUMBER",
            ShardIteratorType::TrimHorizon => "TRIM_HORIZON",
            ShardIteratorType::Latest => "LATEST",
            ShardIteratorType::AtTimestamp => "AT_TIMESTAMP",
        }
    }
}

impl fmt::Display for ShardIteratorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

input!(StreamModeDetails { stream_mode: String });
input!(ShardFilter { r#type: String, shard_id: Option<String>, timestamp: Option<Timestamp> });

input!(CreateStreamInput {
    stream_name: StreamName,
    shard_count: Option<i64>,
    stream_mode_details: Option<StreamModeDetails>,
    tags: Option<BTreeMap<String, String>>,
    warm_throughput_mi_bps: Option<i64>,
    max_record_size_in_ki_b: Option<i64>,
    record_distribution_strategy: Option<String>,
});
input!(StreamRef { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn> });
input!(DeleteStreamInput { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, enforce_consumer_deletion: Option<bool> });
input!(DescribeStreamInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    limit: Option<i64>,
    exclusive_start_shard_id: Option<String>,
});
input!(ListStreamsInput { limit: Option<i64>, exclusive_start_stream_name: Option<String>, next_token: Option<String> });
input!(ListShardsInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    next_token: Option<String>,
    exclusive_start_shard_id: Option<String>,
    max_results: Option<i64>,
    stream_creation_timestamp: Option<Timestamp>,
    shard_filter: Option<ShardFilter>,
});
input!(PutRecordInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    data: Blob,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
    sequence_number_for_ordering: Option<String>,
    dry_run: Option<bool>,
});
input!(PutRecordsRequestEntry { data: Blob, explicit_hash_key: Option<String>, partition_key: Option<String> });
input!(PutRecordsInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    records: Vec<PutRecordsRequestEntry>,
    dry_run: Option<bool>,
});
input!(GetShardIteratorInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    shard_id: String,
    shard_iterator_type: ShardIteratorType,
    starting_sequence_number: Option<String>,
    timestamp: Option<Timestamp>,
    dry_run: Option<bool>,
});
// StreamARN stays text here: GetRecords reads the stream its iterator names; the member is only
// authorized (the server) and never parsed.
input!(GetRecordsInput { shard_iterator: String, limit: Option<i64>, #[serde(rename = "StreamARN")] stream_arn: Option<String>, dry_run: Option<bool> });
input!(RetentionInput { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, retention_period_hours: i64 });
input!(AddTagsToStreamInput { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, tags: BTreeMap<String, String> });
input!(RemoveTagsFromStreamInput { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, tag_keys: Vec<String> });
input!(ListTagsForStreamInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    exclusive_start_tag_key: Option<String>,
    limit: Option<i64>,
});
// A ResourceARN names a stream or a consumer (or, on AWS, a channel or queue): the service tells
// them apart and answers each kind in its own words.
input!(TagResourceInput { #[serde(rename = "ResourceARN")] resource_arn: String, tags: BTreeMap<String, String> });
input!(UntagResourceInput { #[serde(rename = "ResourceARN")] resource_arn: String, tag_keys: Vec<String> });
input!(ResourceArnInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String
});
input!(PutResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    policy: String
});
input!(MinimumThroughputBillingCommitmentInput { status: String });
input!(UpdateAccountSettingsInput {
    minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentInput
});
input!(UpdateMaxRecordSizeInput { #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, max_record_size_in_ki_b: i64 });
input!(UpdateStreamWarmThroughputInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    warm_throughput_mi_bps: i64,
});
input!(SplitShardInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    shard_to_split: String,
    new_starting_hash_key: String,
});
input!(MergeShardsInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    shard_to_merge: String,
    adjacent_shard_to_merge: String,
});
input!(UpdateShardCountInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    target_shard_count: i64,
    scaling_type: String,
});
input!(UpdateStreamModeInput {
    #[serde(rename = "StreamARN")] stream_arn: StreamArn,
    stream_mode_details: StreamModeDetails,
    warm_throughput_mi_bps: Option<i64>,
});
input!(StreamEncryptionInput {
    stream_name: Option<StreamName>,
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    encryption_type: String,
    key_id: String,
});
input!(RegisterStreamConsumerInput {
    #[serde(rename = "StreamARN")] stream_arn: StreamArn,
    consumer_name: ConsumerName,
    tags: Option<BTreeMap<String, String>>,
});
input!(ConsumerRef {
    #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>,
    consumer_name: Option<ConsumerName>,
    #[serde(rename = "ConsumerARN")] consumer_arn: Option<ConsumerArn>,
});
input!(ListStreamConsumersInput {
    #[serde(rename = "StreamARN")] stream_arn: StreamArn,
    next_token: Option<String>,
    max_results: Option<i64>,
    stream_creation_timestamp: Option<Timestamp>,
});
input!(StartingPosition { r#type: ShardIteratorType, sequence_number: Option<String>, timestamp: Option<Timestamp> });
input!(SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    consumer_arn: ConsumerArn,
    shard_id: String,
    starting_position: StartingPosition,
});
input!(EnhancedMonitoringInput { stream_name: Option<StreamName>, #[serde(rename = "StreamARN")] stream_arn: Option<StreamArn>, shard_level_metrics: Vec<String> });

// ---- outputs ----

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRangeOut {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRangeOut {
    pub starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardOut {
    pub shard_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRangeOut,
    pub sequence_number_range: SequenceNumberRangeOut,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShardOut {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRangeOut,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetailsOut {
    pub stream_mode: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetricsOut {
    pub shard_level_metrics: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionOut {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: &'static str,
    pub stream_mode_details: StreamModeDetailsOut,
    pub shards: Vec<ShardOut>,
    pub has_more_shards: bool,
    pub retention_period_hours: i64,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetricsOut>,
    pub encryption_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummaryOut {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: &'static str,
    pub stream_mode_details: StreamModeDetailsOut,
    pub retention_period_hours: i64,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetricsOut>,
    pub encryption_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub open_shard_count: u64,
    pub consumer_count: u64,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_throughput: Option<WarmThroughputOut>,
}

/// Warm throughput of an ON_DEMAND stream (reported only while the account's minimum throughput
/// billing commitment is on).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputOut {
    #[serde(rename = "TargetMiBps")]
    pub target_mibps: i64,
    #[serde(rename = "CurrentMiBps")]
    pub current_mibps: i64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummaryOut {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: &'static str,
    pub stream_mode_details: StreamModeDetailsOut,
    pub stream_creation_timestamp: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordOut {
    pub sequence_number: String,
    pub approximate_arrival_timestamp: Timestamp,
    pub data: Blob,
    pub partition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntryOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOut {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinimumThroughputBillingCommitmentOut {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerOut {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: &'static str,
    pub consumer_creation_timestamp: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescriptionOut {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: &'static str,
    pub consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

/// One `SubscribeToShardEvent` of a SubscribeToShard event stream. At the end of a closed shard
/// ContinuationSequenceNumber is absent and ChildShards is set (reference §2.5).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventOut {
    pub records: Vec<RecordOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    pub millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShardOut>>,
}

/// Every operation's answer. `Empty` is an operation without output: an empty body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Empty,
    DescribeStream {
        #[serde(rename = "StreamDescription")]
        stream_description: StreamDescriptionOut,
    },
    DescribeStreamSummary {
        #[serde(rename = "StreamDescriptionSummary")]
        stream_description_summary: StreamDescriptionSummaryOut,
    },
    ListStreams {
        #[serde(rename = "StreamNames")]
        stream_names: Vec<String>,
        #[serde(rename = "HasMoreStreams")]
        has_more_streams: bool,
        #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
        #[serde(rename = "StreamSummaries")]
        stream_summaries: Vec<StreamSummaryOut>,
    },
    ListShards {
        #[serde(rename = "Shards")]
        shards: Vec<ShardOut>,
        #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    PutRecord {
        #[serde(rename = "ShardId")]
        shard_id: String,
        #[serde(rename = "SequenceNumber")]
        sequence_number: String,
        #[serde(rename = "EncryptionType")]
        encryption_type: &'static str,
    },
    PutRecords {
        #[serde(rename = "FailedRecordCount")]
        failed_record_count: u64,
        #[serde(rename = "Records")]
        records: Vec<PutRecordsResultEntryOut>,
        #[serde(rename = "EncryptionType")]
        encryption_type: &'static str,
    },
    GetShardIterator {
        #[serde(rename = "ShardIterator")]
        shard_iterator: String,
    },
    GetRecords {
        #[serde(rename = "Records")]
        records: Vec<RecordOut>,
        #[serde(rename = "NextShardIterator", skip_serializing_if = "Option::is_none")]
        next_shard_iterator: Option<String>,
        #[serde(rename = "MillisBehindLatest")]
        millis_behind_latest: i64,
        #[serde(rename = "ChildShards", skip_serializing_if = "Option::is_none")]
        child_shards: Option<Vec<ChildShardOut>>,
    },
    ListTagsForStream {
        #[serde(rename = "Tags")]
        tags: Vec<TagOut>,
        #[serde(rename = "HasMoreTags")]
        has_more_tags: bool,
    },
    ListTagsForResource {
        #[serde(rename = "Tags")]
        tags: Vec<TagOut>,
    },
    DescribeLimits {
        #[serde(rename = "ShardLimit")]
        shard_limit: u64,
        #[serde(rename = "OpenShardCount")]
        open_shard_count: u64,
        #[serde(rename = "OnDemandStreamCount")]
        on_demand_stream_count: u64,
        #[serde(rename = "OnDemandStreamCountLimit")]
        on_demand_stream_count_limit: u64,
    },
    AccountSettings {
        #[serde(rename = "MinimumThroughputBillingCommitment")]
        minimum_throughput_billing_commitment: MinimumThroughputBillingCommitmentOut,
    },
    EnhancedMonitoring {
        #[serde(rename = "StreamName")]
        stream_name: String,
        #[serde(rename = "CurrentShardLevelMetrics")]
        current_shard_level_metrics: Vec<String>,
        #[serde(rename = "DesiredShardLevelMetrics")]
        desired_shard_level_metrics: Vec<String>,
        #[serde(rename = "StreamARN")]
        stream_arn: String,
    },
    GetResourcePolicy {
        #[serde(rename = "Policy")]
        policy: String,
    },
    UpdateShardCount {
        #[serde(rename = "StreamName")]
        stream_name: String,
        #[serde(rename = "CurrentShardCount")]
        current_shard_count: u64,
        #[serde(rename = "TargetShardCount")]
        target_shard_count: u64,
        #[serde(rename = "StreamARN")]
        stream_arn: String,
    },
    RegisterStreamConsumer {
        #[serde(rename = "Consumer")]
        consumer: ConsumerOut,
    },
    DescribeStreamConsumer {
        #[serde(rename = "ConsumerDescription")]
        consumer_description: ConsumerDescriptionOut,
    },
    ListStreamConsumers {
        #[serde(rename = "Consumers")]
        consumers: Vec<ConsumerOut>,
        #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    },
    UpdateStreamWarmThroughput {
        #[serde(rename = "StreamARN")]
        stream_arn: String,
        #[serde(rename = "StreamName")]
        stream_name: String,
        #[serde(rename = "WarmThroughput")]
        warm_throughput: WarmThroughputOut,
    },
}

impl Output {
    /// The JSON body; operations without output answer an empty body, as AWS does. A failure
    /// to encode is an error for the caller to answer (never an empty body that looks like
    /// success).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Output::Empty => Ok(Vec::new()),
            Output::GetRecords { records, next_shard_iterator, millis_behind_latest, child_shards } => {
                Ok(get_records_json(
                    records,
                    next_shard_iterator.as_deref(),
                    *millis_behind_latest,
                    child_shards,
                ))
            }
            other => serde_json::to_vec(other),
        }
    }

    /// The CBOR body. An operation without output answers an empty map (`a0`), which every
    /// CBOR reader parses, rather than an empty body, which not every one does.
    pub fn to_cbor(&self) -> Result<Vec<u8>, crate::cbor::EncodeError> {
        match self {
            Output::Empty => Ok(vec![0xa0]),
            other => crate::cbor::to_vec(other),
        }
    }
}

/// GetRecords' JSON, written straight into one buffer: the same bytes serde writes for the
/// `Output::GetRecords` value (a test holds the two equal), without a `String` per record's
/// base64 and without scanning base64 for characters to escape (it has none). This is the read
/// path's largest cost: 10,000 records per response.
#[allow(clippy::expect_used, reason = "writing JSON into a Vec cannot fail; base64 is sized exactly above")]
fn get_records_json(
    records: &[RecordOut],
    next_shard_iterator: Option<&str>,
    millis_behind_latest: i64,
    child_shards: &Option<Vec<ChildShardOut>>,
) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let data_bytes: usize = records.iter().map(|r| r.data.0.len().div_ceil(3) * 4 + 160).sum();
    let mut out = Vec::with_capacity(data_bytes + 256);
    // Writing JSON into a Vec cannot fail.
    let str_into = |out: &mut Vec<u8>, v: &str| serde_json::to_writer(&mut *out, v).expect("Vec write");
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"SequenceNumber\":");
        str_into(&mut out, &r.sequence_number);
        out.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
        serde_json::to_writer(&mut out, &r.approximate_arrival_timestamp).expect("Vec write");
        out.extend_from_slice(b",\"Data\":\"");
        let at = out.len();
        out.resize(at + base64::encoded_len(r.data.0.len(), true).expect("record fits in memory"), 0);
        let n = STANDARD.encode_slice(&r.data.0, &mut out[at..]).expect("sized above");
        out.truncate(at + n);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        str_into(&mut out, &r.partition_key);
        if let Some(e) = r.encryption_type {
            out.extend_from_slice(b",\"EncryptionType\":");
            str_into(&mut out, e);
        }
        out.push(b'}');
    }
    out.push(b']');
    if let Some(it) = next_shard_iterator {
        out.extend_from_slice(b",\"NextShardIterator\":");
        str_into(&mut out, it);
    }
    out.extend_from_slice(b",\"MillisBehindLatest\":");
    out.extend_from_slice(millis_behind_latest.to_string().as_bytes());
    if let Some(children) = child_shards {
        out.extend_from_slice(b",\"ChildShards\":");
        serde_json::to_writer(&mut out, children).expect("Vec write");
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod get_records_json_tests {
    use super::*;

    #[test]
    fn writes_what_serde_writes() {
        let rec = |seq: &str, ms: i64, data: &[u8], pk: &str, enc: Option<&'static str>| RecordOut {
            sequence_number: seq.into(),
            approximate_arrival_timestamp: Timestamp(ms),
            data: Blob(Bytes::copy_from_slice(data)),
            partition_key: pk.into(),
            encryption_type: enc,
        };
        let cases = vec![
            Output::GetRecords {
                records: vec![],
                next_shard_iterator: Some("AAAAAAAAAAE+/=".into()),
                millis_behind_latest: 0,
                child_shards: None,
            },
            Output::GetRecords {
                records: vec![
                    rec(
                        "49590338271490256608559692538361571095921575989136588898",
                        1_700_000_000_123,
                        b"hello",
                        "k",
                        None,
                    ),
                    rec("2", 1_700_000_000_000, b"", "quote\" back\\ nl\n \u{1} \u{e9}", Some("KMS")),
                    rec("3", 1_700_000_000_100, &[0, 255, 254, 1, 2], "x", Some("NONE")),
                    rec("4", 1, &[7; 1000], "y", None),
                ],
                next_shard_iterator: None,
                millis_behind_latest: 12_345,
                child_shards: Some(vec![ChildShardOut {
                    shard_id: "shardId-000000000001".into(),
                    parent_shards: vec!["shardId-000000000000".into()],
                    hash_key_range: HashKeyRangeOut {
                        starting_hash_key: "0".into(),
                        ending_hash_key: "9".into(),
                    },
                }]),
            },
        ];
        for out in cases {
            assert_eq!(
                String::from_utf8(out.to_json().unwrap()).unwrap(),
                serde_json::to_string(&out).unwrap()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_seconds_without_exponent() {
        let json = serde_json::to_string(&Timestamp(1_701_760_153_593)).unwrap();
        assert_eq!(json, "1701760153.593");
        assert_eq!(serde_json::to_string(&Timestamp(1_701_760_153_000)).unwrap(), "1701760153");
        let t: Timestamp = serde_json::from_str("1459799926.480").unwrap();
        assert_eq!(t, Timestamp(1_459_799_926_480));
        let ms: Timestamp = serde_json::from_str("1622282661795").unwrap();
        assert_eq!(ms, Timestamp(1_622_282_661_795));
    }

    #[test]
    fn blobs_are_base64_in_json() {
        assert_eq!(serde_json::to_string(&Blob(Bytes::from_static(b"hello"))).unwrap(), "\"aGVsbG8=\"");
        let b: Blob = serde_json::from_str("\"aGVsbG8=\"").unwrap();
        assert_eq!(&b.0[..], b"hello");
    }
}

#[cfg(test)]
mod arn_tests {
    use super::*;

    #[test]
    fn arn_members_keep_their_model_names() {
        let v: StreamRef =
            serde_json::from_str(r#"{"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}"#)
                .unwrap();
        assert!(v.stream_arn.is_some());
        let v: ResourceArnInput = serde_json::from_str(r#"{"ResourceARN": "x"}"#).unwrap();
        assert_eq!(v.resource_arn, "x");
        let v: CreateStreamInput = serde_json::from_str(
            r#"{"StreamName": "s", "MaxRecordSizeInKiB": 2048, "WarmThroughputMiBps": 5}"#,
        )
        .unwrap();
        assert_eq!((v.max_record_size_in_ki_b, v.warm_throughput_mi_bps), (Some(2048), Some(5)));
    }
}
