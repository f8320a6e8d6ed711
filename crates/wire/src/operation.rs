//! The operation set of the Kinesis API, defined once: every operation of the model
//! (`model/kinesis.json`) with its wire name, its plane, whether it only reads, its control-plane
//! rate limit and the kind of resource it is authorized on. The server's routing, authentication,
//! authorization, audit trail and request metrics and the service's dispatch and limits all read
//! this table; a test holds it equal to the model's operation list (and to AWS's planes).

/// Which plane an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    /// Stream and account management: committed to the metadata store (an fsync), audited by
    /// default, run where blocking is allowed.
    Control,
    /// Reads and writes of records: never blocks a runtime worker on the stream table, audited
    /// only with `--audit-data-plane`.
    Data,
}

/// What an operation is authorized on (IAM's resource of the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// The stream named by StreamARN or StreamName:
    /// `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`.
    Stream,
    /// The stream or consumer named by ResourceARN (tag and policy operations).
    ResourceArn,
    /// The consumer named by ConsumerARN, or by StreamARN and ConsumerName.
    Consumer,
    /// The stream the ShardIterator reads.
    IteratorStream,
    /// `*`: the action has no resource type on AWS.
    Any,
}

/// What the table says of one operation.
struct Spec {
    plane: Plane,
    read_only: bool,
    control_rate_per_sec: Option<u32>,
    resource: ResourceKind,
}

macro_rules! operations {
    ($($op:ident: $plane:ident, $access:ident, $rate:expr, $resource:ident;)*) => {
        /// One operation of the Kinesis API. The variants are in the order of their names, so
        /// `op as usize` indexes [`Op::ALL`] and a name can be found by binary search.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $($op,)*
        }

        impl Op {
            /// Every operation, sorted by name.
            pub const ALL: &'static [Op] = &[$(Op::$op,)*];

            /// The operation's name, as in `X-Amz-Target: Kinesis_20131202.<name>`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Op::$op => stringify!($op),)*
                }
            }

            /// The operation named `name`; `None` for a name the model does not have.
            pub fn from_name(name: &str) -> Option<Op> {
                match name {
                    $(stringify!($op) => Some(Op::$op),)*
                    _ => None,
                }
            }

            const fn spec(self) -> Spec {
                match self {
                    $(Op::$op => Spec {
                        plane: Plane::$plane,
                        read_only: operations!(@access $access),
                        control_rate_per_sec: $rate,
                        resource: ResourceKind::$resource,
                    },)*
                }
            }
        }
    };
    (@access read) => { true };
    (@access write) => { false };
}

// The rates are AWS's documented per-account limits of the control-plane operations
// (reference §3.8; the API reference of each operation); `None`: not rate limited by kinesin.
// Read-only is CloudTrail's `readOnly`: Describe*, List*, Get* and SubscribeToShard.
//
// The queue and channel operations are not served (they answer that kinesin does not implement
// them); the queue record operations, which AWS's model puts on the data plane, are kept on the
// control plane, as kinesin has always treated them: audited by default.
operations! {
    AcknowledgeDeadLetterQueueRecords:      Control, write, None,       Any;
    AcknowledgeQueueRecords:                Control, write, None,       Any;
    AddTagsToStream:                        Control, write, Some(5),    Stream;
    CreateChannel:                          Control, write, None,       Any;
    CreateQueue:                            Control, write, None,       Any;
    CreateStream:                           Control, write, Some(5),    Stream;
    DecreaseStreamRetentionPeriod:          Control, write, Some(5),    Stream;
    DeleteChannel:                          Control, write, None,       Any;
    DeleteQueue:                            Control, write, None,       Any;
    DeleteResourcePolicy:                   Control, write, Some(5),    ResourceArn;
    DeleteStream:                           Control, write, Some(5),    Stream;
    DeregisterStreamConsumer:               Control, write, None,       Consumer;
    DescribeAccountSettings:                Control, read,  Some(5),    Any;
    DescribeChannel:                        Control, read,  None,       Any;
    DescribeLimits:                         Control, read,  Some(1),    Any;
    DescribeQueue:                          Control, read,  None,       Any;
    DescribeStream:                         Control, read,  Some(10),   Stream;
    DescribeStreamConsumer:                 Control, read,  None,       Consumer;
    DescribeStreamSummary:                  Control, read,  Some(20),   Stream;
    DisableEnhancedMonitoring:              Control, write, None,       Stream;
    EnableEnhancedMonitoring:               Control, write, None,       Stream;
    GetRecords:                             Data,    read,  None,       IteratorStream;
    GetResourcePolicy:                      Control, read,  Some(5),    ResourceArn;
    GetShardIterator:                       Data,    read,  None,       Stream;
    IncreaseStreamRetentionPeriod:          Control, write, Some(5),    Stream;
    ListChannels:                           Control, read,  None,       Any;
    ListQueues:                             Control, read,  None,       Any;
    ListShards:                             Control, read,  Some(1000), Stream;
    ListStreamConsumers:                    Control, read,  None,       Stream;
    ListStreams:                            Control, read,  Some(5),    Any;
    ListTagsForResource:                    Control, read,  Some(5),    ResourceArn;
    ListTagsForStream:                      Control, read,  Some(5),    Stream;
    MergeShards:                            Control, write, Some(5),    Stream;
    PutRecord:                              Data,    write, None,       Stream;
    PutRecords:                             Data,    write, None,       Stream;
    PutResourcePolicy:                      Control, write, Some(5),    ResourceArn;
    ReceiveDeadLetterQueueRecords:          Control, write, None,       Any;
    ReceiveQueueRecords:                    Control, write, None,       Any;
    RegisterStreamConsumer:                 Control, write, None,       Stream;
    RemoveTagsFromStream:                   Control, write, Some(5),    Stream;
    RestoreDeadLetterQueueRecords:          Control, write, None,       Any;
    SplitShard:                             Control, write, Some(5),    Stream;
    StartStreamEncryption:                  Control, write, None,       Stream;
    StopStreamEncryption:                   Control, write, None,       Stream;
    SubscribeToShard:                       Data,    read,  None,       Consumer;
    TagResource:                            Control, write, Some(5),    ResourceArn;
    UntagResource:                          Control, write, Some(5),    ResourceArn;
    UpdateAccountSettings:                  Control, write, Some(5),    Any;
    UpdateChannel:                          Control, write, None,       Any;
    UpdateDeadLetterQueueRecordsVisibility: Control, write, None,       Any;
    UpdateMaxRecordSize:                    Control, write, Some(5),    Stream;
    UpdateQueue:                            Control, write, None,       Any;
    UpdateQueueRecordsVisibility:           Control, write, None,       Any;
    UpdateShardCount:                       Control, write, Some(10),   Stream;
    UpdateStreamMode:                       Control, write, Some(5),    Stream;
    UpdateStreamRecordDistributionStrategy: Control, write, None,       Stream;
    UpdateStreamWarmThroughput:             Control, write, Some(5),    Stream;
}

impl Op {
    pub const fn plane(self) -> Plane {
        self.spec().plane
    }

    pub const fn is_data_plane(self) -> bool {
        matches!(self.spec().plane, Plane::Data)
    }

    /// CloudTrail's `readOnly`: the operation changes nothing.
    pub const fn is_read_only(self) -> bool {
        self.spec().read_only
    }

    /// Calls per second per account (a bucket holding one second of them); `None` for the
    /// operations kinesin does not rate limit per account (the data plane is limited per shard).
    pub const fn control_rate_per_sec(self) -> Option<u32> {
        self.spec().control_rate_per_sec
    }

    /// The kind of resource the operation is authorized on.
    pub const fn resource(self) -> ResourceKind {
        self.spec().resource
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations of the model with AWS's plane (`None` where the model gives none).
    fn model_operations() -> Vec<(String, Option<String>)> {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../model/kinesis.json")).unwrap();
        let ops = doc["operations"].as_object().unwrap();
        ops.iter().map(|(name, op)| (name.clone(), op["plane"].as_str().map(str::to_string))).collect()
    }

    #[test]
    fn the_table_is_the_models_operation_set() {
        let mut model: Vec<String> = model_operations().into_iter().map(|(n, _)| n).collect();
        model.sort();
        let table: Vec<String> = Op::ALL.iter().map(|op| op.name().to_string()).collect();
        assert_eq!(table, model, "crates/wire/src/operation.rs must list exactly the model's operations");
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
            assert_eq!(Op::from_name(op.name()), Some(*op));
            assert!(crate::model::model().has_operation(op.name()));
        }
        assert_eq!(Op::from_name("Nope"), None);
        assert_eq!(Op::from_name("putrecords"), None);
    }

    #[test]
    fn planes_are_aws_planes() {
        // Not served by kinesin, and audited as control-plane calls (see the table).
        let kept_on_control = [
            "AcknowledgeDeadLetterQueueRecords",
            "AcknowledgeQueueRecords",
            "ReceiveDeadLetterQueueRecords",
            "ReceiveQueueRecords",
            "RestoreDeadLetterQueueRecords",
            "UpdateDeadLetterQueueRecordsVisibility",
            "UpdateQueueRecordsVisibility",
        ];
        for (name, plane) in model_operations() {
            let op = Op::from_name(&name).unwrap();
            let ours = match op.plane() {
                Plane::Control => "control",
                Plane::Data => "data",
            };
            if kept_on_control.contains(&name.as_str()) {
                assert_eq!((ours, plane.as_deref()), ("control", Some("data")), "{name}");
            } else {
                assert_eq!(Some(ours), plane.as_deref(), "{name}");
            }
        }
    }

    #[test]
    fn read_only_is_cloudtrails() {
        for op in Op::ALL {
            let n = op.name();
            let by_name = n.starts_with("Describe") || n.starts_with("List") || n.starts_with("Get");
            assert_eq!(op.is_read_only(), by_name || *op == Op::SubscribeToShard, "{n}");
        }
    }

    #[test]
    fn only_the_control_plane_has_account_rates() {
        for op in Op::ALL {
            if op.is_data_plane() {
                assert_eq!(op.control_rate_per_sec(), None, "{op}");
            }
        }
        assert_eq!(Op::ListShards.control_rate_per_sec(), Some(1000));
        assert_eq!(Op::DescribeLimits.control_rate_per_sec(), Some(1));
    }
}
