//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their corpus
//! (`tests/fuzz_corpus.rs`): each takes arbitrary bytes and runs one decoder the way the server
//! does. They must never panic, whatever the bytes; their results are thrown away.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::model;
use crate::ops;
use crate::policy::{Kind, Policy};
use crate::sigv4::{self, Presented};

/// Every operation of the service model, in the model's order, so that one input byte picks one.
pub const OPERATIONS: &[&str] = &[
    "AddTagsToStream",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeLimits",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateMaxRecordSize",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamWarmThroughput",
];

/// An `Authorization` header (first line), `X-Amz-Date` (second line) and security token
/// (third line, if any): parsed and checked as the server does, then the canonical request and
/// the signature are computed and compared.
pub fn sigv4_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let auth = lines.next().unwrap_or("");
    let date = lines.next().unwrap_or("20240102T030405Z");
    let token = lines.next();
    let date = sigv4::http_date_to_amz(date).unwrap_or_else(|| date.to_string());
    let presented = Presented::from_header(auth, &date, token);
    verify_presented(&presented, "");
}

/// A query string with a query-string signature (`X-Amz-Algorithm=...&X-Amz-Credential=...`).
pub fn sigv4_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let presented = Presented::from_query(&query);
    verify_presented(&presented, &query);
}

fn verify_presented(presented: &Presented, query: &str) {
    let now = sigv4::parse_amz_date("20240102T030405Z").unwrap_or(0);
    let Ok(credential) = presented.check("us-east-1", "kinesis", now) else {
        return;
    };
    let headers = [("host", "localhost:4567"), ("x-amz-date", presented.amz_date.as_str())];
    let canonical = sigv4::canonical_request(
        "POST",
        "/",
        query,
        &headers,
        &presented.signed_headers,
        &sigv4::sha256_hex(b"{}"),
        presented.form == sigv4::Form::Query,
    );
    let to_sign = sigv4::string_to_sign(&presented.amz_date, &Presented::scope(&credential), &canonical);
    let key = sigv4::signing_key("secret", credential.date, credential.region, credential.service);
    let _ = sigv4::verify(&key, &to_sign, &presented.signature);
}

/// First byte: the operation (index into [`OPERATIONS`]); the rest: a JSON body. Parsed, validated
/// against the model and decoded into the operation's typed input, as the server does.
pub fn json_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let op = OPERATIONS[pick as usize % OPERATIONS.len()];
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    validate_and_decode(op, value);
}

/// First byte: the operation; the rest: a CBOR body (the Java SDKs' encoding), decoded to the
/// same value tree, then validated and decoded as [`json_request`] does.
pub fn cbor_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let op = OPERATIONS[pick as usize % OPERATIONS.len()];
    let Ok(mut value) = crate::cbor::decode(body) else {
        return;
    };
    if !value.is_object() {
        return;
    }
    model().for_each_timestamp(op, &mut value, &mut crate::cbor::millis_to_seconds);
    validate_and_decode(op, value);
}

/// A policy document, parsed as an identity and as a resource policy, then evaluated.
pub fn policy_document(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for kind in [Kind::Identity, Kind::Resource] {
        if let Ok(p) = Policy::parse(&text, kind) {
            let req = crate::policy::Request {
                principal_arn: "arn:aws:iam::000000000000:user/u",
                action: "kinesis:PutRecord",
                resource: "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            };
            let (identity, resource) = match kind {
                Kind::Identity => (vec![p], None),
                Kind::Resource => (vec![], Some(p)),
            };
            let d = crate::policy::evaluate(&identity, false, resource.as_ref(), &req);
            let _ = d.message(&req);
        }
    }
}

fn validate_and_decode(op: &str, mut value: Value) {
    if !value.is_object() || !model().has_operation(op) {
        return;
    }
    if model().check_input(op, &mut value).is_err() {
        return;
    }
    fn decode<T: DeserializeOwned>(v: Value) {
        let _ = serde_json::from_value::<T>(v);
    }
    match op {
        "CreateStream" => decode::<ops::CreateStreamInput>(value),
        "DeleteStream" => decode::<ops::DeleteStreamInput>(value),
        "DescribeStream" => decode::<ops::DescribeStreamInput>(value),
        "ListStreams" => decode::<ops::ListStreamsInput>(value),
        "ListShards" => decode::<ops::ListShardsInput>(value),
        "PutRecord" => decode::<ops::PutRecordInput>(value),
        "PutRecords" => decode::<ops::PutRecordsInput>(value),
        "GetShardIterator" => decode::<ops::GetShardIteratorInput>(value),
        "GetRecords" => decode::<ops::GetRecordsInput>(value),
        "IncreaseStreamRetentionPeriod" | "DecreaseStreamRetentionPeriod" => {
            decode::<ops::RetentionInput>(value)
        }
        "AddTagsToStream" => decode::<ops::AddTagsToStreamInput>(value),
        "RemoveTagsFromStream" => decode::<ops::RemoveTagsFromStreamInput>(value),
        "ListTagsForStream" => decode::<ops::ListTagsForStreamInput>(value),
        "TagResource" => decode::<ops::TagResourceInput>(value),
        "UntagResource" => decode::<ops::UntagResourceInput>(value),
        "PutResourcePolicy" => decode::<ops::PutResourcePolicyInput>(value),
        "UpdateAccountSettings" => decode::<ops::UpdateAccountSettingsInput>(value),
        "UpdateMaxRecordSize" => decode::<ops::UpdateMaxRecordSizeInput>(value),
        "UpdateStreamWarmThroughput" => decode::<ops::UpdateStreamWarmThroughputInput>(value),
        "RegisterStreamConsumer" => decode::<ops::RegisterStreamConsumerInput>(value),
        "ListStreamConsumers" => decode::<ops::ListStreamConsumersInput>(value),
        "SubscribeToShard" => decode::<ops::SubscribeToShardInput>(value),
        "EnableEnhancedMonitoring" | "DisableEnhancedMonitoring" => {
            decode::<ops::EnhancedMonitoringInput>(value)
        }
        "DescribeStreamSummary" => decode::<ops::StreamRef>(value),
        "GetResourcePolicy" | "DeleteResourcePolicy" | "ListTagsForResource" => {
            decode::<ops::ResourceArnInput>(value)
        }
        "DescribeStreamConsumer" | "DeregisterStreamConsumer" => decode::<ops::ConsumerRef>(value),
        _ => {}
    }
}
