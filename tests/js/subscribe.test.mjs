// Registered consumers and SubscribeToShard through the AWS SDK for JavaScript v3.
//
// The JS SDK sends every Kinesis call over HTTP/2; on an http:// endpoint that is h2c with
// prior knowledge, which sluice serves on its plain port.
//
// Run:  SLUICE_ENDPOINT=http://127.0.0.1:4567 node --test tests/js/subscribe.test.mjs
// (tests/python/test_js_sdk.py runs it against the Python suite's server.)

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

const ENDPOINT = process.env.SLUICE_ENDPOINT;
if (!ENDPOINT) {
  throw new Error("set SLUICE_ENDPOINT to the server, e.g. http://127.0.0.1:4567");
}
const ACCOUNT = "000000000000";
const WAIT_MS = 20_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const client = new KinesisClient({
  endpoint: ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: "a", secretAccessKey: "b" },
  maxAttempts: 3,
});

const stream = `js-efo-${randomBytes(6).toString("hex")}`;
let streamARN;
let shardIds;
const consumers = {}; // name -> ARN
const open = []; // every subscription, closed in after()

async function until(what, fn, timeoutMs = WAIT_MS, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

// One SubscribeToShard call; its events are read in the background into `events`.
async function subscribe(consumerARN, shardId, startingPosition) {
  const abort = new AbortController();
  const res = await client.send(
    new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: startingPosition }),
    { abortSignal: abort.signal },
  );
  assert.equal(res.$metadata.httpStatusCode, 200);
  const sub = {
    shardId,
    events: [],
    error: null,
    ended: false,
    closing: false,
    records() {
      return this.events.flatMap((e) => e.Records);
    },
    async waitRecords(n, timeoutMs = WAIT_MS) {
      await until(
        `${n} records on ${shardId} (have ${this.records().length})`,
        () => {
          if (this.records().length >= n) return true;
          if (this.ended) {
            throw new Error(`subscription on ${shardId} ended after ${this.records().length}/${n} records: ${this.error}`);
          }
          return false;
        },
        timeoutMs,
        20,
      );
      return this.records();
    },
    async close() {
      if (this.ended) return;
      this.closing = true;
      abort.abort();
      await until(`subscription on ${shardId} to stop`, () => this.ended, 10_000, 20).catch(() => {});
    },
  };
  sub.done = (async () => {
    try {
      for await (const ev of res.EventStream) {
        if (ev.SubscribeToShardEvent) sub.events.push(ev.SubscribeToShardEvent);
        if (sub.closing) break;
      }
    } catch (e) {
      if (!sub.closing) sub.error = e;
    } finally {
      sub.ended = true;
    }
  })();
  open.push(sub);
  return sub;
}

// SubscribeToShard, retrying while AWS's 5 s rule answers ResourceInUseException.
async function subscribeWhenFree(consumerARN, shardId, startingPosition, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await subscribe(consumerARN, shardId, startingPosition);
    } catch (e) {
      if (e.name !== "ResourceInUseException" || Date.now() > deadline) throw e;
      assert.match(e.message, /^Another active subscription exists for this consumer: /);
      await sleep(250);
    }
  }
}

async function putRecords(entries) {
  const res = await client.send(
    new PutRecordsCommand({
      StreamName: stream,
      Records: entries.map(([key, data]) => ({ PartitionKey: key, Data: data })),
    }),
  );
  assert.equal(res.FailedRecordCount ?? 0, 0);
  return res.Records.map((r, i) => ({
    ShardId: r.ShardId,
    SequenceNumber: r.SequenceNumber,
    PartitionKey: entries[i][0],
    Data: entries[i][1],
  }));
}

function batch(prefix, n) {
  return Array.from({ length: n }, (_, i) => [`key-${i % 17}`, new TextEncoder().encode(`${prefix}-${i}`)]);
}

const forShard = (put, shardId) =>
  put.filter((r) => r.ShardId === shardId).map((r) => [r.SequenceNumber, r.PartitionKey, Buffer.from(r.Data).toString("hex")]);
const seen = (records) =>
  records.map((r) => [r.SequenceNumber, r.PartitionKey, Buffer.from(r.Data).toString("hex")]);

before(async () => {
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
  const summary = await until("stream ACTIVE", async () => {
    const s = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
    return s.StreamStatus === "ACTIVE" && s;
  });
  streamARN = summary.StreamARN;
  assert.equal(streamARN, `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`);
  shardIds = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards.map((s) => s.ShardId);
  assert.deepEqual(shardIds, ["shardId-000000000000", "shardId-000000000001"]);
});

after(async () => {
  await Promise.all(open.map((s) => s.close()));
  try {
    await client.send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }));
  } finally {
    client.destroy();
  }
});

let fanOut; // name -> shardId -> subscription, from the fan-out test
let allPut = [];

test("register two consumers", { timeout: 30_000 }, async () => {
  for (const name of ["js-analytics", "js-archiver"]) {
    const { Consumer } = await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamARN, ConsumerName: name }));
    assert.equal(Consumer.ConsumerName, name);
    assert.equal(Consumer.ConsumerStatus, "CREATING");
    assert.ok(Consumer.ConsumerCreationTimestamp instanceof Date);
    const secs = Math.floor(Consumer.ConsumerCreationTimestamp.getTime() / 1000);
    assert.equal(Consumer.ConsumerARN, `${streamARN}/consumer/${name}:${secs}`);
    const desc = await until(`${name} ACTIVE`, async () => {
      const d = (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer.ConsumerARN }))).ConsumerDescription;
      return d.ConsumerStatus === "ACTIVE" && d;
    });
    assert.equal(desc.StreamARN, streamARN);
    consumers[name] = Consumer.ConsumerARN;
  }
  const summary = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
  assert.equal(summary.ConsumerCount, 2);
});

test("each consumer gets every record of each shard, in order", { timeout: 60_000 }, async () => {
  allPut = await putRecords(batch("before", 100));
  assert.equal(allPut.length, 100);
  for (const s of shardIds) assert.ok(forShard(allPut, s).length > 0, `no records on ${s}`);

  fanOut = {};
  for (const [name, arn] of Object.entries(consumers)) {
    fanOut[name] = {};
    for (const shardId of shardIds) {
      fanOut[name][shardId] = await subscribe(arn, shardId, { Type: "TRIM_HORIZON" });
    }
  }
  for (const name of Object.keys(consumers)) {
    for (const shardId of shardIds) {
      const want = forShard(allPut, shardId);
      const got = await fanOut[name][shardId].waitRecords(want.length);
      assert.deepEqual(seen(got), want, `${name} on ${shardId}`);
    }
  }

  // Written while subscribed: pushed to both consumers.
  const live = await putRecords(batch("live", 50));
  allPut = allPut.concat(live);
  for (const name of Object.keys(consumers)) {
    for (const shardId of shardIds) {
      const sub = fanOut[name][shardId];
      const want = forShard(allPut, shardId);
      const got = await sub.waitRecords(want.length);
      assert.deepEqual(seen(got), want, `${name} on ${shardId}`);
      for (const r of got) assert.ok(r.ApproximateArrivalTimestamp instanceof Date);
      for (const e of sub.events) {
        assert.match(e.ContinuationSequenceNumber, /^(0|[1-9]\d{0,128})$/);
        assert.ok(e.MillisBehindLatest >= 0);
        assert.ok(!e.ChildShards || e.ChildShards.length === 0);
      }
      const withRecords = sub.events.filter((e) => e.Records.length > 0);
      assert.equal(withRecords.at(-1).ContinuationSequenceNumber, got.at(-1).SequenceNumber);
      assert.equal(sub.error, null);
    }
  }
});

test("a second subscription within 5 s is ResourceInUseException", { timeout: 30_000 }, async () => {
  const arn = consumers["js-analytics"];
  const shardId = shardIds[0];
  await assert.rejects(
    subscribe(arn, shardId, { Type: "LATEST" }),
    (e) => {
      assert.equal(e.name, "ResourceInUseException");
      assert.equal(e.$metadata?.httpStatusCode, 400);
      assert.equal(
        e.message,
        `Another active subscription exists for this consumer: ${ACCOUNT}:${stream}:${shardId}:js-analytics`,
      );
      return true;
    },
  );
  // The existing subscription is unharmed.
  const sub = fanOut["js-analytics"][shardId];
  assert.equal(sub.ended, false);
  assert.equal(sub.error, null);
});

test("resubscribing after the last ContinuationSequenceNumber loses and duplicates nothing", { timeout: 60_000 }, async () => {
  const arn = consumers["js-analytics"];
  const shardId = shardIds[0];
  const old = fanOut["js-analytics"][shardId];
  const continuation = old.events.at(-1).ContinuationSequenceNumber;
  assert.equal(continuation, old.records().at(-1).SequenceNumber);
  await old.close();

  // Written while this consumer has no subscription on the shard.
  const gap = await putRecords(batch("gap", 60));
  const want = forShard(gap, shardId);
  assert.ok(want.length > 0);

  // AWS refuses a new subscription within 5 s of the last one; retry until it is free.
  const sub = await subscribeWhenFree(arn, shardId, { Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: continuation });
  const got = await sub.waitRecords(want.length);
  await sleep(300); // a duplicate would show up about now
  assert.deepEqual(seen(sub.records()), want);
  assert.deepEqual(seen(got), want);

  // The other consumer, never interrupted, saw everything once.
  const other = fanOut["js-archiver"][shardId];
  const everything = forShard(allPut.concat(gap), shardId);
  assert.deepEqual(seen(await other.waitRecords(everything.length)), everything);
});
