// A web page's producer and consumer through the AWS SDK for JavaScript v3, run in a browser
// by tests/python/test_browser.py: the page (served from another origin than sluice) turns
// click events into Kinesis records, writes them with PutRecords and PutRecord, reads them
// back with GetShardIterator + GetRecords, then makes a call that fails (DescribeStream of a
// missing stream). Every call is cross-origin, so the browser sends CORS preflights.
//
// Bundled for the browser at test time:
//   node_modules/.bin/esbuild browser/clicks.mjs --bundle --platform=browser --format=iife --outfile=clicks.js
// The page's query string says where sluice is: ?endpoint=http://127.0.0.1:4567&stream=NAME&missing=NAME
// The outcome is written as JSON into <pre id="result"> (and document.title becomes "done"),
// and POSTed to the page's own server at the path in `report`, if given.

import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";

const params = new URLSearchParams(location.search);
const client = new KinesisClient({
  endpoint: params.get("endpoint"),
  region: "us-east-1",
  // sluice accepts any credentials when it has no access keys configured.
  credentials: { accessKeyId: "AKIDBROWSERTEST", secretAccessKey: "browser-test-secret" },
  maxAttempts: 1,
});
const stream = params.get("stream");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function errorInfo(e) {
  return {
    name: e?.name ?? String(e),
    message: e?.message ?? "",
    status: e?.$metadata?.httpStatusCode ?? null,
    requestId: e?.$metadata?.requestId ?? null,
  };
}

// Click events on the page's buttons, as the records a click tracker would send.
function collectClicks(n) {
  const clicks = [];
  document.addEventListener("click", (ev) => {
    clicks.push({
      type: ev.type,
      target: ev.target.id,
      x: ev.clientX,
      y: ev.clientY,
      seq: clicks.length,
      page: location.pathname,
    });
  });
  const buttons = [...document.querySelectorAll("button")];
  for (let i = 0; i < n; i++) {
    const b = buttons[i % buttons.length];
    b.dispatchEvent(new MouseEvent("click", { bubbles: true, clientX: 10 + i, clientY: 20 + 2 * i }));
  }
  return clicks;
}

async function produceAndConsume() {
  const clicks = collectClicks(6);
  const record = (c) => ({ Data: encoder.encode(JSON.stringify(c)), PartitionKey: "session-1" });
  const requestIds = [];
  // The first five in one PutRecords call, the last with PutRecord.
  const batch = await client.send(
    new PutRecordsCommand({ StreamName: stream, Records: clicks.slice(0, 5).map(record) }),
  );
  requestIds.push(batch.$metadata.requestId);
  if (batch.FailedRecordCount) throw new Error(`PutRecords: ${batch.FailedRecordCount} failed`);
  const single = await client.send(new PutRecordCommand({ StreamName: stream, ...record(clicks[5]) }));
  requestIds.push(single.$metadata.requestId);
  const put = [...batch.Records, single].map((r) => ({ shardId: r.ShardId, sequenceNumber: r.SequenceNumber }));

  const { ShardIterator } = await client.send(
    new GetShardIteratorCommand({ StreamName: stream, ShardId: put[0].shardId, ShardIteratorType: "TRIM_HORIZON" }),
  );
  const read = [];
  let iterator = ShardIterator;
  for (let calls = 0; calls < 20 && iterator && read.length < clicks.length; calls++) {
    const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
    requestIds.push(page.$metadata.requestId);
    for (const r of page.Records) {
      read.push({
        sequenceNumber: r.SequenceNumber,
        partitionKey: r.PartitionKey,
        data: JSON.parse(decoder.decode(r.Data)),
        arrival: r.ApproximateArrivalTimestamp instanceof Date,
      });
    }
    iterator = page.NextShardIterator;
  }
  return { clicks, put, read, requestIds };
}

async function main() {
  const result = { origin: location.origin };
  try {
    Object.assign(result, await produceAndConsume());
  } catch (e) {
    result.error = errorInfo(e);
  }
  // A call that fails on the server: the browser only lets the SDK see the AWS error if the
  // error answer carries Access-Control-Allow-Origin too.
  try {
    await client.send(new DescribeStreamCommand({ StreamName: params.get("missing") }));
    result.missing = { name: "no error" };
  } catch (e) {
    result.missing = errorInfo(e);
  }
  document.getElementById("result").textContent = JSON.stringify(result);
  document.title = "done";
  // The test waits for this: the same result, posted to the page's own server.
  const report = params.get("report");
  if (report) await fetch(report, { method: "POST", body: JSON.stringify(result) });
}

main();
