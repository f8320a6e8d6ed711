//! Which resource an operation acts on, for authorization and the audit trail, and the resource
//! policy that applies to it. The kind of resource is the operation table's
//! (`kinesin_wire::operation::Op::resource`); this module finds the resource of that kind:
//!
//! - Stream operations (StreamName or StreamARN; CreateStream included): the stream's ARN,
//!   `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`, built from the name when only the name is given.
//! - Tag and policy operations on a ResourceARN: that ARN (stream or consumer).
//!
//! Only members of the operation's input name its resource: validation drops any other member
//! unread, so the service never acts on it (a ResourceARN beside PutRecord's StreamName names
//! nothing).
//! - SubscribeToShard, DescribeStreamConsumer and DeregisterStreamConsumer: the consumer's ARN,
//!   `.../stream/NAME/consumer/CNAME:CREATION_SECONDS`; when the call names the consumer by
//!   StreamARN and ConsumerName, the ARN of the registered consumer of that name (or
//!   `.../consumer/CNAME:*` when there is none — the call then fails as not found, if allowed).
//! - RegisterStreamConsumer and ListStreamConsumers: the stream's ARN.
//! - GetRecords: the ARN of the stream its (sealed) ShardIterator reads; `*` when the iterator
//!   does not open (the call then fails as an invalid iterator, if allowed).
//! - ListStreams, DescribeLimits, DescribeAccountSettings, UpdateAccountSettings: `*` — these
//!   actions have no resource type on AWS, so only a statement whose Resource matches `*`
//!   (e.g. `"Resource": "*"`) covers them.
//!
//! **Order: authorization before most of validation.** The server authenticates, checks the
//! JSON types, then validates only the members that name the resource ([`NAMING_MEMBERS`]),
//! authorizes, and validates the rest. A principal without the permission gets
//! `AccessDeniedException` without paying for (or learning from) the validation of records,
//! tags or policies; the resource it is refused on is always well formed and bounded, so the
//! policy match and the denial message stay small. A malformed name is still the AWS answer,
//! `ValidationException`, for every caller (AWS validates before it authorizes): the one
//! difference from AWS is that a request both unauthorized and malformed elsewhere than in its
//! names gets `AccessDeniedException` where AWS would answer `ValidationException`.

use serde_json::Value;

use kinesin_service::Service;
use kinesin_wire::ids::StreamArn;
use kinesin_wire::model::model;
use kinesin_wire::operation::{Op, ResourceKind};
use kinesin_wire::policy::{Kind, Policy};

/// The members [`resource`] reads. They are validated before authorization.
pub(crate) const NAMING_MEMBERS: &[&str] =
    &["StreamName", "StreamARN", "ConsumerName", "ConsumerARN", "ResourceARN", "ShardIterator"];

/// The resource `op` acts on, per the table above (the kind is the operation table's,
/// [`Op::resource`]). `body` has passed the type check and the validation of
/// [`NAMING_MEMBERS`] (the rest of it is unvalidated).
pub(crate) async fn resource(op: Op, body: &Value, service: &Service) -> String {
    // Only the operation's own members: validation drops the others unread, so the service
    // never acts on them, and a resource named there would authorize a call on another.
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && model().input_has_member(op.name(), name))
    };
    let cfg = service.config();
    let stream = || -> Option<String> {
        field("StreamARN").map(str::to_string).or_else(|| {
            field("StreamName").map(|n| StreamArn::new(&cfg.region, &cfg.account_id, n).to_string())
        })
    };
    let resolved = match op.resource() {
        ResourceKind::Any => None,
        ResourceKind::Consumer => match (field("ConsumerARN"), stream(), field("ConsumerName")) {
            (Some(arn), _, _) => Some(arn.to_string()),
            (None, Some(stream), Some(name)) => Some(
                service
                    .consumer_arn(&stream, name)
                    .await
                    .unwrap_or_else(|| format!("{stream}/consumer/{name}:*")),
            ),
            _ => None,
        },
        ResourceKind::IteratorStream => match field("ShardIterator") {
            Some(it) => service.iterator_stream_arn(it).await,
            None => None,
        },
        ResourceKind::Stream => stream(),
        ResourceKind::ResourceArn => field("ResourceARN").map(str::to_string),
    };
    resolved.unwrap_or_else(|| "*".to_string())
}

/// The policy attached to `resource` (streams only: kinesin keeps no consumer policies), parsed.
/// A stored document that no longer parses grants nothing and is logged.
pub(crate) async fn resource_policy(resource: &str, service: &Service) -> Option<Policy> {
    if resource == "*" || resource.contains("/consumer/") {
        return None;
    }
    let text = service.resource_policy(resource).await?;
    match Policy::parse(&text, Kind::Resource) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(resource, error = %e, "the stream's resource policy does not parse; it grants nothing");
            None
        }
    }
}

/// PutResourcePolicy's document must be one kinesin can evaluate; the error is AWS's
/// InvalidArgumentException wording for a malformed policy.
pub(crate) fn check_put_policy(body: &Value) -> Result<(), String> {
    let Some(text) = body.get("Policy").and_then(Value::as_str) else {
        return Ok(());
    };
    Policy::parse(text, Kind::Resource).map(|_| ()).map_err(|e| format!("Invalid policy document: {e}."))
}
