// Smoke test: the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis, pinned in package-lock.json)
// against the kinesin binary. The Kinesis client sends every call over HTTP/2 (NodeHttp2Handler;
// against an http:// endpoint that is h2c with prior knowledge), and SubscribeToShard's event
// stream rides the same handler. KINESIN_BIN names the binary (default: ../../target/release/kinesin).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  ListShardsCommand,
  RegisterStreamConsumerCommand,
  DeregisterStreamConsumerCommand,
  SubscribeToShardCommand,
  DeleteStreamCommand,
  ResourceNotFoundException,
} from "@aws-sdk/client-kinesis";
import { startKinesin } from "./kinesin.mjs";

const SUBSCRIBE_TIMEOUT_MS = 30_000;

let server;
let client;

before(async () => {
  let endpoint;
  ({ server, endpoint } = await startKinesin());
  client = new KinesisClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDKINESINTEST", secretAccessKey: "secret" },
    maxAttempts: 1,
  });
});

after(() => {
  client?.destroy();
  server?.kill("SIGKILL");
});

async function createStream(name, shards = 1) {
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  const { StreamDescriptionSummary: s } = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  assert.equal(s.StreamStatus, "ACTIVE");
  return s.StreamARN;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

test("PutRecord / PutRecords / GetShardIterator / GetRecords round trip, ListShards", async () => {
  const name = "js-round-trip";
  await createStream(name, 2);

  const shards = await client.send(new ListShardsCommand({ StreamName: name }));
  assert.deepEqual(shards.Shards.map((s) => s.ShardId), ["shardId-000000000000", "shardId-000000000001"]);

  const sent = new Map(); // sequence number -> data
  const one = await client.send(new PutRecordCommand({ StreamName: name, PartitionKey: "pk", Data: enc.encode("one") }));
  assert.match(one.ShardId, /^shardId-00000000000[01]$/);
  sent.set(one.SequenceNumber, { shard: one.ShardId, data: "one" });
  const records = Array.from({ length: 50 }, (_, i) => ({ PartitionKey: `pk-${i}`, Data: enc.encode(`r-${i}`) }));
  const many = await client.send(new PutRecordsCommand({ StreamName: name, Records: records }));
  assert.equal(many.FailedRecordCount ?? 0, 0);
  assert.equal(many.Records.length, 50);
  many.Records.forEach((r, i) => sent.set(r.SequenceNumber, { shard: r.ShardId, data: `r-${i}` }));

  const got = new Map();
  for (const shard of shards.Shards) {
    let { ShardIterator: it } = await client.send(new GetShardIteratorCommand({
      StreamName: name, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON",
    }));
    for (;;) {
      const out = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 20 }));
      for (const r of out.Records) {
        assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
        got.set(r.SequenceNumber, { shard: shard.ShardId, data: dec.decode(r.Data) });
      }
      it = out.NextShardIterator;
      if (out.Records.length === 0) break;
    }
  }
  assert.deepEqual(got, sent);

  await client.send(new DeleteStreamCommand({ StreamName: name }));
});

test("a missing stream is a typed ResourceNotFoundException", async () => {
  await assert.rejects(
    client.send(new DescribeStreamSummaryCommand({ StreamName: "js-missing" })),
    (e) => {
      assert.ok(e instanceof ResourceNotFoundException, `${e.name}: ${e.message}`);
      assert.equal(e.name, "ResourceNotFoundException");
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.match(e.message, /js-missing/);
      return true;
    },
  );
  await assert.rejects(
    client.send(new PutRecordCommand({ StreamName: "js-missing", PartitionKey: "pk", Data: enc.encode("x") })),
    ResourceNotFoundException,
  );
});

test("SubscribeToShard delivers every record over HTTP/2 (h2c)", { timeout: SUBSCRIBE_TIMEOUT_MS }, async () => {
  const name = "js-efo";
  const arn = await createStream(name, 1);
  const { Consumer: consumer } = await client.send(new RegisterStreamConsumerCommand({
    StreamARN: arn, ConsumerName: "js-consumer",
  }));
  assert.equal(consumer.ConsumerStatus, "ACTIVE");

  const records = Array.from({ length: 20 }, (_, i) => ({ PartitionKey: `pk-${i}`, Data: enc.encode(`e-${i}`) }));
  const put = await client.send(new PutRecordsCommand({ StreamName: name, Records: records }));
  const want = put.Records.map((r, i) => [r.SequenceNumber, `e-${i}`]);

  const out = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumer.ConsumerARN,
    ShardId: "shardId-000000000000",
    StartingPosition: { Type: "TRIM_HORIZON" },
  }));
  const got = [];
  let live;
  for await (const event of out.EventStream) {
      assert.ok(event.SubscribeToShardEvent, `unexpected event ${JSON.stringify(Object.keys(event))}`);
      const e = event.SubscribeToShardEvent;
      for (const r of e.Records) got.push([r.SequenceNumber, dec.decode(r.Data)]);
      if (got.length === want.length && live === undefined) {
        // Past the last record delivered (AWS: resuming AT or AFTER it repeats nothing).
        assert.ok(BigInt(e.ContinuationSequenceNumber) > BigInt(want.at(-1)[0]));
        // A record put while subscribed is pushed too.
        live = await client.send(new PutRecordCommand({ StreamName: name, PartitionKey: "pk", Data: enc.encode("live") }));
        want.push([live.SequenceNumber, "live"]);
      }
      if (got.length >= want.length && live !== undefined) break;
  }
  assert.deepEqual(got, want);

  await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumer.ConsumerARN }));
  await client.send(new DeleteStreamCommand({ StreamName: name }));
});
