"""AddTagsToStream / RemoveTagsFromStream / ListTagsForStream and TagResource / UntagResource / ListTagsForResource."""

import re

import pytest

from kutil import (
    ACCOUNT,
    NAME_PATTERN,
    assert_error,
    assert_validation,
    echo,
    expect_client_error,
    not_found_msg,
    stream_arn,
    unique_name,
    v_max,
    v_max_len,
    v_min,
    v_min_len,
    v_null,
    v_pattern,
)

# Captured from AWS in 2020; AWS has since admitted ':' in tags, so a ' :' in the list is accepted too.
INVALID_CHARS = re.compile(
    r"^Some tags contain invalid characters\. Valid characters: Unicode letters, digits, white space, "
    r"_ \. / = \+ - % @( :)?\.$"
)


def tags_of(kinesis, name, **kw):
    return kinesis.list_tags_for_stream(StreamName=name, **kw)


def test_list_tags_empty(raw, make_stream):
    name = make_stream(1)
    r = raw.call("ListTagsForStream", {"StreamName": name})
    assert r.status == 200
    assert r.json == {"Tags": [], "HasMoreTags": False}
    r = raw.call("ListTagsForStream", {"StreamName": name, "ExclusiveStartTagKey": "a", "Limit": 1})
    assert r.json == {"Tags": [], "HasMoreTags": False}


def test_add_overwrite_remove(kinesis, make_stream):
    name = make_stream(1)
    kinesis.add_tags_to_stream(StreamName=name, Tags={"a": "a", "ü0 _.": "a", "/=+-@": "a", "b": "ü0 _./=+-@", "c": ""})
    tags = tags_of(kinesis, name)["Tags"]
    for t in [
        {"Key": "a", "Value": "a"},
        {"Key": "ü0 _.", "Value": "a"},
        {"Key": "/=+-@", "Value": "a"},
        {"Key": "b", "Value": "ü0 _./=+-@"},
        {"Key": "c", "Value": ""},
    ]:
        assert t in tags
    kinesis.add_tags_to_stream(StreamName=name, Tags={"a": "b"})
    tags = tags_of(kinesis, name)["Tags"]
    assert {"Key": "a", "Value": "b"} in tags and len(tags) == 5
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["ü0 _.", "/=+-@", "missing"])
    tags = tags_of(kinesis, name)["Tags"]
    assert sorted(t["Key"] for t in tags) == ["a", "b", "c"]


def test_remove_returns_empty_body(raw, make_stream):
    name = make_stream(1)
    r = raw.call("RemoveTagsFromStream", {"StreamName": name, "TagKeys": ["nope"]})
    assert r.status == 200 and r.text == ""


def test_list_tags_sorted_and_paginated(kinesis, make_stream):
    name = make_stream(1)
    keys = ["a", " ", "ÿ", "_", "/", "=", "+", "Zb", "0", "@"]
    kinesis.add_tags_to_stream(StreamName=name, Tags={k: ("b" if k == "a" else "z" if k == "Zb" else "a") for k in keys})
    r = tags_of(kinesis, name)
    assert [t["Key"] for t in r["Tags"]] == [" ", "+", "/", "0", "=", "@", "Zb", "_", "a", "ÿ"]
    assert r["HasMoreTags"] is False
    r = tags_of(kinesis, name, ExclusiveStartTagKey="@", Limit=2)
    assert r["Tags"] == [{"Key": "Zb", "Value": "z"}, {"Key": "_", "Value": "a"}]
    assert r["HasMoreTags"] is True
    r = tags_of(kinesis, name, ExclusiveStartTagKey="Za$Z%*(*&@,,.,,")
    assert [t["Key"] for t in r["Tags"]] == ["Zb", "_", "a", "ÿ"]
    assert r["HasMoreTags"] is False
    # walk all pages of one
    seen, start = [], None
    while True:
        kw = {"Limit": 1}
        if start:
            kw["ExclusiveStartTagKey"] = start
        r = tags_of(kinesis, name, **kw)
        seen += [t["Key"] for t in r["Tags"]]
        if not r["HasMoreTags"]:
            break
        start = r["Tags"][-1]["Key"]
    assert seen == [" ", "+", "/", "0", "=", "@", "Zb", "_", "a", "ÿ"]


def test_tag_limit_50(kinesis, make_stream):
    name = make_stream(1)
    kinesis.add_tags_to_stream(StreamName=name, Tags={f"k{i:02d}": "v" for i in range(50)})
    expect_client_error(
        kinesis.add_tags_to_stream,
        "InvalidArgumentException",
        f"Failed to add tags to stream {name} under account {ACCOUNT} because a given stream cannot have more "
        "than 50 tags associated with it.",
        StreamName=name,
        Tags={"one-too-many": "v"},
    )
    # overwriting an existing key is still fine at the limit
    kinesis.add_tags_to_stream(StreamName=name, Tags={"k00": "new"})
    assert len(tags_of(kinesis, name, Limit=50)["Tags"]) == 50


@pytest.mark.parametrize("bad", ["abc;def", "abc\tdef", "abc\ndef", "abc,def"])
def test_add_tags_invalid_characters(kinesis, make_stream, bad):
    name = make_stream(1)
    expect_client_error(kinesis.add_tags_to_stream, "InvalidArgumentException", INVALID_CHARS, StreamName=name,
                        Tags={bad: "1"})
    expect_client_error(kinesis.add_tags_to_stream, "InvalidArgumentException", INVALID_CHARS, StreamName=name,
                        Tags={"a": bad})


def test_add_tags_percent(kinesis, make_stream):
    name = make_stream(1)
    expect_client_error(
        kinesis.add_tags_to_stream,
        "InvalidArgumentException",
        re.compile(
            "^"
            + re.escape(
                f"Failed to add tags to stream {name} under account {ACCOUNT} because some tags contained illegal "
                "characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'"
            )
            + "(,':')?\\.$"
        ),
        StreamName=name,
        Tags={"abc%def": "1"},
    )


@pytest.mark.parametrize("bad", ["abc;def", "abc,def"])
def test_remove_tags_invalid_characters(kinesis, make_stream, bad):
    name = make_stream(1)
    expect_client_error(kinesis.remove_tags_from_stream, "InvalidArgumentException", INVALID_CHARS, StreamName=name,
                        TagKeys=[bad])


def test_tags_not_found(kinesis):
    name = unique_name("nf")
    msg = not_found_msg(name)
    expect_client_error(kinesis.add_tags_to_stream, "ResourceNotFoundException", msg, StreamName=name, Tags={"a": "b"})
    expect_client_error(kinesis.remove_tags_from_stream, "ResourceNotFoundException", msg, StreamName=name,
                        TagKeys=["a"])
    expect_client_error(kinesis.list_tags_for_stream, "ResourceNotFoundException", msg, StreamName=name,
                        ExclusiveStartTagKey="a", Limit=1)


def test_tags_by_arn(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    kinesis.add_tags_to_stream(StreamARN=arn, Tags={"x": "1"})
    assert kinesis.list_tags_for_stream(StreamARN=arn)["Tags"] == [{"Key": "x", "Value": "1"}]
    kinesis.remove_tags_from_stream(StreamARN=arn, TagKeys=["x"])
    assert kinesis.list_tags_for_stream(StreamARN=arn)["Tags"] == []


def test_add_tags_validation(raw):
    assert_validation(raw.call("AddTagsToStream", {}), [v_null("tags")])
    assert_validation(
        raw.call("AddTagsToStream", {"StreamName": "", "Tags": {}}),
        [v_min_len("{}", "tags"), v_pattern("", "streamName", NAME_PATTERN), v_min_len("", "streamName")],
    )
    name = "a" * 129
    assert_validation(raw.call("AddTagsToStream", {"StreamName": name, "Tags": {"a;b": "b"}}),
                      [v_max_len(name, "streamName", 128)])


def test_add_tags_validation_long_key_and_value(raw):
    key = "k" * 129
    r = raw.call("AddTagsToStream", {"StreamName": "x", "Tags": {key: "3"}})
    assert_validation(
        r,
        [
            f"Value '{{{key}=3}}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: "
            "[Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
        ],
    )
    val = "v" * 257
    r = raw.call("AddTagsToStream", {"StreamName": "x", "Tags": {"c": val}})
    assert_validation(
        r,
        [
            f"Value '{echo('{c=' + val + '}')}' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: "
            "[Member must have length less than or equal to 256, Member must have length greater than or equal to 0]"
        ],
    )


def test_add_tags_validation_too_many_in_request(raw):
    tags = {f"k{i}": "v" for i in range(201)}
    r = raw.call("AddTagsToStream", {"StreamName": "x", "Tags": tags})
    assert_validation(
        r,
        [re.compile(r"Value '\{[^']*… \(\d+ bytes\)' at 'tags' failed to satisfy constraint: "
                    r"Member must have length less than or equal to 200")],
    )


def test_remove_tags_validation(raw):
    assert_validation(raw.call("RemoveTagsFromStream", {}), [v_null("tagKeys")])
    assert_validation(
        raw.call("RemoveTagsFromStream", {"StreamName": "", "TagKeys": []}),
        [v_min_len("[]", "tagKeys"), v_pattern("", "streamName", NAME_PATTERN), v_min_len("", "streamName")],
    )
    key = "a" * 129
    assert_validation(
        raw.call("RemoveTagsFromStream", {"StreamName": "x", "TagKeys": ["a", key, "b"]}),
        [
            f"Value '[a, {key}, b]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: "
            "[Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
        ],
    )
    keys = [str(i) for i in range(1, 52)]
    assert_validation(
        raw.call("RemoveTagsFromStream", {"StreamName": "x", "TagKeys": keys}),
        [f"Value '[{', '.join(keys)}]' at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"],
    )


def test_list_tags_validation(raw):
    assert_validation(
        raw.call("ListTagsForStream", {"StreamName": "", "ExclusiveStartTagKey": "", "Limit": 0}),
        [
            v_min("0", "limit", 1),
            v_min_len("", "exclusiveStartTagKey"),
            v_pattern("", "streamName", NAME_PATTERN),
            v_min_len("", "streamName"),
        ],
    )
    name = "a" * 129
    assert_validation(
        raw.call("ListTagsForStream", {"StreamName": name, "ExclusiveStartTagKey": name, "Limit": 100}),
        [v_max("100", "limit", 50), v_max_len(name, "exclusiveStartTagKey", 128), v_max_len(name, "streamName", 128)],
    )


# ---------------------------------------------------------- TagResource family


def test_tag_resource_roundtrip(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    kinesis.tag_resource(ResourceARN=arn, Tags={"team": "a", "env": "prod"})
    got = kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert sorted(got, key=lambda t: t["Key"]) == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}]
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["team", "unknown"])
    assert kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_tag_resource_shares_store_with_stream_tags(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    kinesis.add_tags_to_stream(StreamName=name, Tags={"legacy": "1"})
    kinesis.tag_resource(ResourceARN=arn, Tags={"modern": "2"})
    assert {t["Key"] for t in kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]} == {"legacy", "modern"}
    assert {t["Key"] for t in kinesis.list_tags_for_stream(StreamName=name)["Tags"]} == {"legacy", "modern"}


def test_tag_resource_empty_bodies(raw, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    r = raw.call("TagResource", {"ResourceARN": arn, "Tags": {"a": "b"}})
    assert r.status == 200 and r.text == "", r
    r = raw.call("UntagResource", {"ResourceARN": arn, "TagKeys": ["a"]})
    assert r.status == 200 and r.text == "", r
    r = raw.call("ListTagsForResource", {"ResourceARN": arn})
    assert r.status == 200 and r.json["Tags"] == [], r


def test_tag_resource_not_found(kinesis):
    arn = stream_arn(unique_name("nf"))
    expect_client_error(kinesis.tag_resource, "ResourceNotFoundException", ResourceARN=arn, Tags={"a": "b"})
    expect_client_error(kinesis.untag_resource, "ResourceNotFoundException", ResourceARN=arn, TagKeys=["a"])
    expect_client_error(kinesis.list_tags_for_resource, "ResourceNotFoundException", ResourceARN=arn)


def test_tag_resource_limit_50(kinesis, make_stream):
    name = make_stream(1)
    arn = stream_arn(name)
    kinesis.tag_resource(ResourceARN=arn, Tags={f"k{i}": "v" for i in range(50)})
    expect_client_error(kinesis.tag_resource, "InvalidArgumentException", ResourceARN=arn, Tags={"extra": "v"})


def test_tag_resource_validation(raw):
    assert_validation(raw.call("TagResource", {}), [v_null("tags"), v_null("resourceARN")])
    assert_validation(raw.call("UntagResource", {}), [v_null("tagKeys"), v_null("resourceARN")])
    assert_validation(raw.call("ListTagsForResource", {}), [v_null("resourceARN")])
    r = raw.call("ListTagsForResource", {"ResourceARN": "arn:aws:sqs:us-east-1:000000000000:queue"})
    assert_error(r, "ValidationException")
    assert "resourceARN" in r.message and "regular expression pattern" in r.message
