//! The typed request: one variant per operation the service serves, decoded once from the body
//! the model has checked. The service's one entry point (`Service::handle`) takes a [`Request`]
//! and never sees the JSON.
//!
//! Both encodings decode through the same path: a JSON body is parsed into a value tree, a CBOR
//! body is decoded into the same tree (`cbor::decode`, its epoch-millisecond timestamps turned
//! into the JSON form), `model::check_input` checks it, and [`Request::from_value`] builds the
//! typed input. The one-pass PutRecords path ([`Request::put_records_fast`]) builds the same
//! `Request::PutRecords`.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ErrorKind};
use crate::ids::INVALID_ARGUMENT_PREFIX;
use crate::operation::Op;
use crate::ops::*;

/// One request to the service. Operations of the model that kinesin does not implement decode to
/// [`Request::NotImplemented`], answered as such.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    CreateStream(CreateStreamInput),
    DeleteStream(DeleteStreamInput),
    DescribeStream(DescribeStreamInput),
    DescribeStreamSummary(StreamRef),
    ListStreams(ListStreamsInput),
    ListShards(ListShardsInput),
    IncreaseStreamRetentionPeriod(RetentionInput),
    DecreaseStreamRetentionPeriod(RetentionInput),
    AddTagsToStream(AddTagsToStreamInput),
    RemoveTagsFromStream(RemoveTagsFromStreamInput),
    ListTagsForStream(ListTagsForStreamInput),
    TagResource(TagResourceInput),
    UntagResource(UntagResourceInput),
    ListTagsForResource(ResourceArnInput),
    DescribeLimits,
    DescribeAccountSettings,
    UpdateAccountSettings(UpdateAccountSettingsInput),
    UpdateMaxRecordSize(UpdateMaxRecordSizeInput),
    EnableEnhancedMonitoring(EnhancedMonitoringInput),
    DisableEnhancedMonitoring(EnhancedMonitoringInput),
    PutResourcePolicy(PutResourcePolicyInput),
    GetResourcePolicy(ResourceArnInput),
    DeleteResourcePolicy(ResourceArnInput),
    PutRecord(PutRecordInput),
    PutRecords(PutRecordsInput),
    GetShardIterator(GetShardIteratorInput),
    GetRecords(GetRecordsInput),
    SplitShard(SplitShardInput),
    MergeShards(MergeShardsInput),
    UpdateShardCount(UpdateShardCountInput),
    UpdateStreamMode(UpdateStreamModeInput),
    UpdateStreamWarmThroughput(UpdateStreamWarmThroughputInput),
    RegisterStreamConsumer(RegisterStreamConsumerInput),
    DeregisterStreamConsumer(ConsumerRef),
    DescribeStreamConsumer(ConsumerRef),
    ListStreamConsumers(ListStreamConsumersInput),
    StartStreamEncryption(StreamEncryptionInput),
    StopStreamEncryption(StreamEncryptionInput),
    SubscribeToShard(SubscribeToShardInput),
    /// An operation of the model kinesin does not serve (channels, queues, ...).
    NotImplemented(Op),
}

fn input<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix(INVALID_ARGUMENT_PREFIX) {
            Some(m) => ApiError::invalid_argument(m),
            None => ApiError::new(ErrorKind::Serialization, message),
        }
    })
}

impl Request {
    /// The request `op` makes with `body`, a value tree `model::check_input` has checked. A
    /// required member missing (only possible if the check was skipped) or of the wrong type
    /// is a SerializationException; an ARN that matches the model's pattern but does not parse
    /// is an InvalidArgumentException, in AWS's words.
    pub fn from_value(op: Op, body: Value) -> Result<Request, ApiError> {
        Ok(match op {
            Op::CreateStream => Request::CreateStream(input(body)?),
            Op::DeleteStream => Request::DeleteStream(input(body)?),
            Op::DescribeStream => Request::DescribeStream(input(body)?),
            Op::DescribeStreamSummary => Request::DescribeStreamSummary(input(body)?),
            Op::ListStreams => Request::ListStreams(input(body)?),
            Op::ListShards => Request::ListShards(input(body)?),
            Op::IncreaseStreamRetentionPeriod => Request::IncreaseStreamRetentionPeriod(input(body)?),
            Op::DecreaseStreamRetentionPeriod => Request::DecreaseStreamRetentionPeriod(input(body)?),
            Op::AddTagsToStream => Request::AddTagsToStream(input(body)?),
            Op::RemoveTagsFromStream => Request::RemoveTagsFromStream(input(body)?),
            Op::ListTagsForStream => Request::ListTagsForStream(input(body)?),
            Op::TagResource => Request::TagResource(input(body)?),
            Op::UntagResource => Request::UntagResource(input(body)?),
            Op::ListTagsForResource => Request::ListTagsForResource(input(body)?),
            Op::DescribeLimits => Request::DescribeLimits,
            Op::DescribeAccountSettings => Request::DescribeAccountSettings,
            Op::UpdateAccountSettings => Request::UpdateAccountSettings(input(body)?),
            Op::UpdateMaxRecordSize => Request::UpdateMaxRecordSize(input(body)?),
            Op::EnableEnhancedMonitoring => Request::EnableEnhancedMonitoring(input(body)?),
            Op::DisableEnhancedMonitoring => Request::DisableEnhancedMonitoring(input(body)?),
            Op::PutResourcePolicy => Request::PutResourcePolicy(input(body)?),
            Op::GetResourcePolicy => Request::GetResourcePolicy(input(body)?),
            Op::DeleteResourcePolicy => Request::DeleteResourcePolicy(input(body)?),
            Op::PutRecord => Request::PutRecord(input(body)?),
            Op::PutRecords => Request::PutRecords(input(body)?),
            Op::GetShardIterator => Request::GetShardIterator(input(body)?),
            Op::GetRecords => Request::GetRecords(input(body)?),
            Op::SplitShard => Request::SplitShard(input(body)?),
            Op::MergeShards => Request::MergeShards(input(body)?),
            Op::UpdateShardCount => Request::UpdateShardCount(input(body)?),
            Op::UpdateStreamMode => Request::UpdateStreamMode(input(body)?),
            Op::UpdateStreamWarmThroughput => Request::UpdateStreamWarmThroughput(input(body)?),
            Op::RegisterStreamConsumer => Request::RegisterStreamConsumer(input(body)?),
            Op::DeregisterStreamConsumer => Request::DeregisterStreamConsumer(input(body)?),
            Op::DescribeStreamConsumer => Request::DescribeStreamConsumer(input(body)?),
            Op::ListStreamConsumers => Request::ListStreamConsumers(input(body)?),
            Op::StartStreamEncryption => Request::StartStreamEncryption(input(body)?),
            Op::StopStreamEncryption => Request::StopStreamEncryption(input(body)?),
            Op::SubscribeToShard => Request::SubscribeToShard(input(body)?),
            Op::UpdateStreamRecordDistributionStrategy
            | Op::AcknowledgeDeadLetterQueueRecords
            | Op::AcknowledgeQueueRecords
            | Op::CreateChannel
            | Op::CreateQueue
            | Op::DeleteChannel
            | Op::DeleteQueue
            | Op::DescribeChannel
            | Op::DescribeQueue
            | Op::ListChannels
            | Op::ListQueues
            | Op::ReceiveDeadLetterQueueRecords
            | Op::ReceiveQueueRecords
            | Op::RestoreDeadLetterQueueRecords
            | Op::UpdateChannel
            | Op::UpdateDeadLetterQueueRecordsVisibility
            | Op::UpdateQueue
            | Op::UpdateQueueRecordsVisibility => Request::NotImplemented(op),
        })
    }

    /// PutRecords from a JSON body on the one-pass path (`fast`), or `None` when the general
    /// path must decide. What it builds equals what [`Request::from_value`] builds.
    pub fn put_records_fast(body: &[u8]) -> Option<Request> {
        crate::fast::put_records_json(body).map(Request::PutRecords)
    }

    /// The operation this request calls.
    pub fn op(&self) -> Op {
        match self {
            Request::CreateStream(_) => Op::CreateStream,
            Request::DeleteStream(_) => Op::DeleteStream,
            Request::DescribeStream(_) => Op::DescribeStream,
            Request::DescribeStreamSummary(_) => Op::DescribeStreamSummary,
            Request::ListStreams(_) => Op::ListStreams,
            Request::ListShards(_) => Op::ListShards,
            Request::IncreaseStreamRetentionPeriod(_) => Op::IncreaseStreamRetentionPeriod,
            Request::DecreaseStreamRetentionPeriod(_) => Op::DecreaseStreamRetentionPeriod,
            Request::AddTagsToStream(_) => Op::AddTagsToStream,
            Request::RemoveTagsFromStream(_) => Op::RemoveTagsFromStream,
            Request::ListTagsForStream(_) => Op::ListTagsForStream,
            Request::TagResource(_) => Op::TagResource,
            Request::UntagResource(_) => Op::UntagResource,
            Request::ListTagsForResource(_) => Op::ListTagsForResource,
            Request::DescribeLimits => Op::DescribeLimits,
            Request::DescribeAccountSettings => Op::DescribeAccountSettings,
            Request::UpdateAccountSettings(_) => Op::UpdateAccountSettings,
            Request::UpdateMaxRecordSize(_) => Op::UpdateMaxRecordSize,
            Request::EnableEnhancedMonitoring(_) => Op::EnableEnhancedMonitoring,
            Request::DisableEnhancedMonitoring(_) => Op::DisableEnhancedMonitoring,
            Request::PutResourcePolicy(_) => Op::PutResourcePolicy,
            Request::GetResourcePolicy(_) => Op::GetResourcePolicy,
            Request::DeleteResourcePolicy(_) => Op::DeleteResourcePolicy,
            Request::PutRecord(_) => Op::PutRecord,
            Request::PutRecords(_) => Op::PutRecords,
            Request::GetShardIterator(_) => Op::GetShardIterator,
            Request::GetRecords(_) => Op::GetRecords,
            Request::SplitShard(_) => Op::SplitShard,
            Request::MergeShards(_) => Op::MergeShards,
            Request::UpdateShardCount(_) => Op::UpdateShardCount,
            Request::UpdateStreamMode(_) => Op::UpdateStreamMode,
            Request::UpdateStreamWarmThroughput(_) => Op::UpdateStreamWarmThroughput,
            Request::RegisterStreamConsumer(_) => Op::RegisterStreamConsumer,
            Request::DeregisterStreamConsumer(_) => Op::DeregisterStreamConsumer,
            Request::DescribeStreamConsumer(_) => Op::DescribeStreamConsumer,
            Request::ListStreamConsumers(_) => Op::ListStreamConsumers,
            Request::StartStreamEncryption(_) => Op::StartStreamEncryption,
            Request::StopStreamEncryption(_) => Op::StopStreamEncryption,
            Request::SubscribeToShard(_) => Op::SubscribeToShard,
            Request::NotImplemented(op) => *op,
        }
    }

    /// The stream the request names by StreamName, or else by StreamARN (for messages that
    /// name it, e.g. a control-plane rate limit); `None` when it names none.
    pub fn stream_name(&self) -> Option<&str> {
        macro_rules! named {
            ($r:expr) => {
                $r.stream_name.as_deref().or_else(|| $r.stream_arn.as_ref().map(|a| a.name()))
            };
        }
        match self {
            Request::CreateStream(r) => Some(&r.stream_name),
            Request::DeleteStream(r) => named!(r),
            Request::DescribeStream(r) => named!(r),
            Request::DescribeStreamSummary(r) => named!(r),
            Request::ListShards(r) => named!(r),
            Request::IncreaseStreamRetentionPeriod(r) | Request::DecreaseStreamRetentionPeriod(r) => {
                named!(r)
            }
            Request::AddTagsToStream(r) => named!(r),
            Request::RemoveTagsFromStream(r) => named!(r),
            Request::ListTagsForStream(r) => named!(r),
            Request::EnableEnhancedMonitoring(r) | Request::DisableEnhancedMonitoring(r) => named!(r),
            Request::PutRecord(r) => named!(r),
            Request::PutRecords(r) => named!(r),
            Request::GetShardIterator(r) => named!(r),
            Request::SplitShard(r) => named!(r),
            Request::MergeShards(r) => named!(r),
            Request::UpdateShardCount(r) => named!(r),
            Request::UpdateStreamWarmThroughput(r) => named!(r),
            Request::StartStreamEncryption(r) | Request::StopStreamEncryption(r) => named!(r),
            Request::UpdateMaxRecordSize(r) => r.stream_arn.as_ref().map(|a| a.name()),
            Request::UpdateStreamMode(r) => Some(r.stream_arn.name()),
            Request::RegisterStreamConsumer(r) => Some(r.stream_arn.name()),
            Request::ListStreamConsumers(r) => Some(r.stream_arn.name()),
            Request::DeregisterStreamConsumer(r) | Request::DescribeStreamConsumer(r) => {
                r.stream_arn.as_ref().map(|a| a.name())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConsumerArn, StreamArn, StreamName};
    use crate::model::model;

    /// A JSON body as the server decodes it: parse, check, build.
    fn from_json(op: Op, body: &str) -> Result<Request, ApiError> {
        let mut v: Value = serde_json::from_str(body).unwrap();
        model().check_input(op.name(), &mut v)?;
        Request::from_value(op, v)
    }

    /// The same request sent as CBOR (timestamps in epoch milliseconds, as CBOR clients send
    /// them): decode, turn timestamps into the JSON form, check, build.
    fn from_cbor(op: Op, body: &str) -> Result<Request, ApiError> {
        let mut v: Value = serde_json::from_str(body).unwrap();
        model().for_each_timestamp(op.name(), &mut v, &mut |t: &mut Value| {
            *t = Value::from((t.as_f64().unwrap() * 1000.0) as i64);
        });
        let bytes = crate::cbor::to_vec(&v).unwrap();
        let mut v = crate::cbor::decode(&bytes).unwrap();
        model().for_each_timestamp(op.name(), &mut v, &mut crate::cbor::millis_to_seconds);
        model().check_input(op.name(), &mut v)?;
        Request::from_value(op, v)
    }

    #[test]
    fn a_missing_required_member_does_not_decode() {
        // Unchecked bodies (a caller that skipped the model): never a default "" or 0.
        for (op, body) in [
            (Op::CreateStream, r#"{"ShardCount": 1}"#),
            (Op::GetShardIterator, r#"{"StreamName": "s", "ShardId": "shardId-000000000000"}"#),
            (Op::GetShardIterator, r#"{"StreamName": "s", "ShardIteratorType": "LATEST"}"#),
            (Op::PutRecord, r#"{"StreamName": "s", "PartitionKey": "k"}"#),
            (Op::PutRecords, r#"{"StreamName": "s"}"#),
            (Op::SplitShard, r#"{"StreamName": "s", "ShardToSplit": "shardId-000000000000"}"#),
            (Op::RegisterStreamConsumer, r#"{"ConsumerName": "c"}"#),
            (Op::SubscribeToShard, r#"{"ShardId": "shardId-000000000000"}"#),
            (Op::GetRecords, r#"{}"#),
        ] {
            let e = Request::from_value(op, serde_json::from_str(body).unwrap()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Serialization, "{op:?} {body}: {e}");
            assert!(e.message.as_deref().unwrap_or("").contains("missing field"), "{op:?}: {e}");
        }
    }

    #[test]
    fn an_iterator_type_outside_the_enum_does_not_decode() {
        let body = r#"{"StreamName": "s", "ShardId": "0", "ShardIteratorType": "SOMEWHERE"}"#;
        let e = Request::from_value(Op::GetShardIterator, serde_json::from_str(body).unwrap()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Serialization);
    }

    #[test]
    fn json_and_cbor_decode_to_equal_requests() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
        let consumer = format!("{arn}/consumer/c:1700000000");
        let cases: Vec<(Op, String)> = vec![
            (Op::CreateStream, r#"{"StreamName":"s","ShardCount":2,"Tags":{"k":"v"}}"#.into()),
            (Op::PutRecord, r#"{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k","ExplicitHashKey":"7"}"#.into()),
            (
                Op::PutRecords,
                format!(r#"{{"StreamARN":"{arn}","Records":[{{"Data":"AA==","PartitionKey":"a"}},{{"Data":"","PartitionKey":"b"}}]}}"#),
            ),
            (
                Op::GetShardIterator,
                r#"{"StreamName":"s","ShardId":"shardId-000000000001","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1700000000.5}"#.into(),
            ),
            (Op::SplitShard, r#"{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"5"}"#.into()),
            (
                Op::SubscribeToShard,
                format!(r#"{{"ConsumerARN":"{consumer}","ShardId":"shardId-000000000000","StartingPosition":{{"Type":"TRIM_HORIZON"}}}}"#),
            ),
            (Op::ListShards, r#"{"StreamName":"s","ShardFilter":{"Type":"AT_LATEST"}}"#.into()),
            (Op::DescribeLimits, "{}".into()),
        ];
        for (op, body) in cases {
            let j = from_json(op, &body).unwrap_or_else(|e| panic!("{op:?} JSON: {e}"));
            let c = from_cbor(op, &body).unwrap_or_else(|e| panic!("{op:?} CBOR: {e}"));
            assert_eq!(j, c, "{op:?}");
            assert_eq!(j.op(), op);
        }
    }

    #[test]
    fn the_fast_path_builds_the_general_paths_request() {
        let body =
            r#"{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"1"}]}"#;
        let fast = Request::put_records_fast(body.as_bytes()).unwrap();
        assert_eq!(fast, from_json(Op::PutRecords, body).unwrap());
    }

    #[test]
    fn names_and_arns_arrive_parsed() {
        let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders";
        let r = from_json(Op::DescribeStreamSummary, &format!(r#"{{"StreamARN":"{arn}"}}"#)).unwrap();
        let Request::DescribeStreamSummary(r) = &r else { panic!("{r:?}") };
        assert_eq!(r.stream_arn, StreamArn::parse(arn));
        assert_eq!(r.stream_arn.as_ref().unwrap().region(), "eu-west-1");
        let r = from_json(Op::DescribeStreamSummary, r#"{"StreamName":"orders"}"#).unwrap();
        assert_eq!(r.stream_name(), Some("orders"));
        let Request::DescribeStreamSummary(r) = r else { unreachable!() };
        assert_eq!(r.stream_name, StreamName::parse("orders"));
        let c = format!("{arn}/consumer/billing:1700000000");
        let r = from_json(Op::DescribeStreamConsumer, &format!(r#"{{"ConsumerARN":"{c}"}}"#)).unwrap();
        let Request::DescribeStreamConsumer(r) = r else { unreachable!() };
        assert_eq!(r.consumer_arn.unwrap(), ConsumerArn::parse(&c).unwrap());
    }

    #[test]
    fn an_arn_that_matches_the_pattern_but_does_not_parse_is_an_invalid_argument() {
        let bad = "arn:aws:kinesis:us-east-1:000000000000:stream/a/b";
        let e = from_json(Op::DescribeStreamSummary, &format!(r#"{{"StreamARN":"{bad}"}}"#)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(e.message.unwrap(), StreamArn::malformed(bad));
    }

    #[test]
    fn operations_kinesin_does_not_serve_decode_as_not_implemented() {
        let r = Request::from_value(Op::ListChannels, serde_json::json!({})).unwrap();
        assert_eq!(r, Request::NotImplemented(Op::ListChannels));
        assert_eq!(r.op(), Op::ListChannels);
    }
}
