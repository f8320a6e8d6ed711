// The AWS SDK for JavaScript v3 against a kinesin started with --credentials: every request's
// SigV4 signature is verified. The SDK is configured the normal way (static credentials, with and
// without a session token) and sends every call over HTTP/2 (h2c with prior knowledge). Correctly
// signed calls — control plane, data plane and SubscribeToShard — are accepted; a wrong secret is
// InvalidSignatureException, an unknown access key UnrecognizedClientException.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  ListStreamsCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
  KinesisServiceException,
} from "@aws-sdk/client-kinesis";
import { startKinesin } from "./kinesin.mjs";

const ADMIN = { accessKeyId: "AKIAJSADMIN", secretAccessKey: "js-admin-secret" };
const SESSION = { accessKeyId: "ASIAJSSESSION", secretAccessKey: "js-session-secret", sessionToken: "js-session-token" };

let server;
let endpoint;
let dir;
const clients = [];

function kinesis(credentials) {
  const c = new KinesisClient({ endpoint, region: "us-east-1", credentials, maxAttempts: 1 });
  clients.push(c);
  return c;
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "kinesin-js-sigv4-"));
  const file = path.join(dir, "credentials.toml");
  writeFileSync(file, `
[[principal]]
arn = "arn:aws:iam::000000000000:user/js-admin"
access_key_id = "${ADMIN.accessKeyId}"
secret_access_key = "${ADMIN.secretAccessKey}"

[[principal]]
arn = "arn:aws:sts::000000000000:assumed-role/js/session"
access_key_id = "${SESSION.accessKeyId}"
secret_access_key = "${SESSION.secretAccessKey}"
session_token = "${SESSION.sessionToken}"
`);
  ({ server, endpoint } = await startKinesin(["--credentials", file]));
});

after(() => {
  for (const c of clients) c.destroy();
  server?.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const enc = new TextEncoder();
const dec = new TextDecoder();

test("with --credentials, signed calls are accepted and bad signatures rejected", { timeout: 30_000 }, async () => {
  const admin = kinesis(ADMIN);
  const session = kinesis(SESSION);
  const name = "js-signed";

  await admin.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
  const { StreamDescriptionSummary: s } = await session.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  assert.equal(s.StreamStatus, "ACTIVE");

  // Data plane with both principals.
  const sent = [];
  for (const [i, c] of [admin, session].entries()) {
    const put = await c.send(new PutRecordCommand({ StreamName: name, PartitionKey: `pk-${i}`, Data: enc.encode(`signed-${i}`) }));
    sent.push([put.SequenceNumber, `signed-${i}`]);
  }
  for (const c of [admin, session]) {
    const { ShardIterator } = await c.send(new GetShardIteratorCommand({
      StreamName: name, ShardId: "shardId-000000000000", ShardIteratorType: "TRIM_HORIZON",
    }));
    const out = await c.send(new GetRecordsCommand({ ShardIterator }));
    assert.deepEqual(out.Records.map((r) => [r.SequenceNumber, dec.decode(r.Data)]), sent);
  }

  // One SubscribeToShard event, signed by the session principal.
  const { Consumer: consumer } = await admin.send(new RegisterStreamConsumerCommand({ StreamARN: s.StreamARN, ConsumerName: "js-signed" }));
  const sub = await session.send(new SubscribeToShardCommand({
    ConsumerARN: consumer.ConsumerARN, ShardId: "shardId-000000000000", StartingPosition: { Type: "TRIM_HORIZON" },
  }));
  const got = [];
  for await (const event of sub.EventStream) {
    assert.ok(event.SubscribeToShardEvent, `unexpected event ${JSON.stringify(Object.keys(event))}`);
    for (const r of event.SubscribeToShardEvent.Records) got.push([r.SequenceNumber, dec.decode(r.Data)]);
    if (got.length >= sent.length) break;
  }
  assert.deepEqual(got, sent);

  // Rejections, as the SDK's generic service exception with AWS's error code.
  const rejected = (code) => (e) => {
    assert.ok(e instanceof KinesisServiceException, `${e.name}: ${e.message}`);
    assert.equal(e.name, code);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return true;
  };
  const cases = [
    [{ ...ADMIN, secretAccessKey: "wrong-secret" }, "InvalidSignatureException"],
    [{ ...SESSION, secretAccessKey: "wrong-secret" }, "InvalidSignatureException"],
    [{ accessKeyId: "AKIAJSUNKNOWN", secretAccessKey: "whatever" }, "UnrecognizedClientException"],
    [{ ...SESSION, sessionToken: "another-token" }, "UnrecognizedClientException"],
  ];
  for (const [credentials, code] of cases) {
    const c = kinesis(credentials);
    await assert.rejects(c.send(new ListStreamsCommand({})), rejected(code));
    await assert.rejects(
      c.send(new PutRecordCommand({ StreamName: name, PartitionKey: "pk", Data: enc.encode("x") })),
      rejected(code),
    );
  }
});
