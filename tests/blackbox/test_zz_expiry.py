"""Iterator and NextToken expiry (300 s). The tokens are issued when the session starts (see
conftest.early_tokens), so this file, which runs last, waits only for what is left of the 5 minutes.
Set KINESIN_BLACKBOX_FAST=1 to skip it during quick local runs."""

import os
import re
import time

import pytest

from kutil import assert_error

pytestmark = pytest.mark.skipif(os.environ.get("KINESIN_BLACKBOX_FAST") == "1", reason="KINESIN_BLACKBOX_FAST=1")

UTC_TIME = r"\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}"


def wait_until_expired(early):
    assert early["error"] is None, f"setup at session start failed: {early['error']}"
    remaining = early["issued"] + 302 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def test_iterator_expires_after_five_minutes(raw, early_tokens):
    wait_until_expired(early_tokens)
    r = raw.call("GetRecords", {"ShardIterator": early_tokens["iterator"]})
    assert_error(
        r,
        "ExpiredIteratorException",
        re.compile(
            rf"^Iterator expired\. The iterator was created at time {UTC_TIME} while right now it is {UTC_TIME} "
            r"which is further in the future than the tolerated delay of 300000 milliseconds\.$"
        ),
    )


def test_list_shards_next_token_expires(raw, early_tokens):
    wait_until_expired(early_tokens)
    assert early_tokens["list_shards_token"], "ListShards(MaxResults=1) on a 2-shard stream returned no NextToken"
    r = raw.call("ListShards", {"NextToken": early_tokens["list_shards_token"]})
    assert_error(r, "ExpiredNextTokenException")


def test_fresh_iterator_still_reads_after_expiry_of_old_one(kinesis, early_tokens):
    wait_until_expired(early_tokens)
    it = kinesis.get_shard_iterator(StreamName=early_tokens["stream"], ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == [b"x"]
