"""TagResource / UntagResource / ListTagsForResource with a consumer ARN as ResourceARN.

AWS tags stream consumers as resources of their own (RegisterStreamConsumer also takes Tags).
Pins that kinesin did not answer ResourceNotFoundException for every consumer ARN any more: a
consumer's tags are its own (not the stream's), survive in the stream document, start from the
Tags given at registration, obey the 50-tag limit, and vanish with the consumer; an unknown or
deregistered consumer is ResourceNotFoundException.
"""
import pytest
from botocore.exceptions import ClientError

from kutil import stream_arn, unique_name


def tags_of(kinesis, arn):
    return {t["Key"]: t["Value"] for t in kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]}


@pytest.fixture
def consumer(kinesis):
    name = unique_name("ctag")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = stream_arn(name)
    c = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="tagged", Tags={"origin": "register"})
    yield arn, c["Consumer"]["ConsumerARN"]
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def test_consumer_tags_round_trip_apart_from_the_stream(kinesis, consumer):
    stream, arn = consumer
    assert tags_of(kinesis, arn) == {"origin": "register"}
    kinesis.tag_resource(ResourceARN=arn, Tags={"team": "a", "env": "prod"})
    kinesis.tag_resource(ResourceARN=arn, Tags={"team": "b"})
    assert tags_of(kinesis, arn) == {"origin": "register", "team": "b", "env": "prod"}
    # The stream's tags are its own.
    assert tags_of(kinesis, stream) == {}
    kinesis.tag_resource(ResourceARN=stream, Tags={"stream-only": "1"})
    assert "stream-only" not in tags_of(kinesis, arn)
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["env", "origin", "absent"])
    assert tags_of(kinesis, arn) == {"team": "b"}
    assert tags_of(kinesis, stream) == {"stream-only": "1"}


def test_consumer_tag_limit_50(kinesis, consumer):
    _, arn = consumer
    kinesis.tag_resource(ResourceARN=arn, Tags={f"k{i}": "v" for i in range(49)})
    assert len(tags_of(kinesis, arn)) == 50
    with pytest.raises(ClientError) as e:
        kinesis.tag_resource(ResourceARN=arn, Tags={"one-more": "v"})
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "50" in e.value.response["Error"]["Message"]
    assert len(tags_of(kinesis, arn)) == 50
    # Overwriting an existing key is not a new tag.
    kinesis.tag_resource(ResourceARN=arn, Tags={"k0": "w"})
    assert tags_of(kinesis, arn)["k0"] == "w"


def test_consumer_tags_invalid_characters(kinesis, consumer):
    _, arn = consumer
    with pytest.raises(ClientError) as e:
        kinesis.tag_resource(ResourceARN=arn, Tags={"bad#key": "v"})
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"


def test_unknown_and_deregistered_consumer_is_not_found(kinesis, consumer):
    stream, arn = consumer
    ghost = f"{stream}/consumer/ghost:1700000000"
    for call, args in [
        (kinesis.tag_resource, {"Tags": {"a": "b"}}),
        (kinesis.untag_resource, {"TagKeys": ["a"]}),
        (kinesis.list_tags_for_resource, {}),
    ]:
        with pytest.raises(ClientError) as e:
            call(ResourceARN=ghost, **args)
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException", call
    kinesis.tag_resource(ResourceARN=arn, Tags={"a": "b"})
    kinesis.deregister_stream_consumer(ConsumerARN=arn)
    with pytest.raises(ClientError) as e:
        kinesis.list_tags_for_resource(ResourceARN=arn)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_reregistered_consumer_gets_a_new_arn_and_no_old_tags(kinesis, consumer):
    """Regression: with instant deregistration (--delete-stream-ms 0) a consumer registered again
    under the same name within the same second got the old ARN back, so the old ARN (and its
    tags' owner) silently named the new consumer."""
    stream, arn = consumer
    kinesis.tag_resource(ResourceARN=arn, Tags={"a": "b"})
    kinesis.deregister_stream_consumer(ConsumerARN=arn)
    c = kinesis.register_stream_consumer(StreamARN=stream, ConsumerName="tagged")["Consumer"]
    assert c["ConsumerARN"] != arn
    assert tags_of(kinesis, c["ConsumerARN"]) == {}
    with pytest.raises(ClientError) as e:
        kinesis.describe_stream_consumer(ConsumerARN=arn)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
