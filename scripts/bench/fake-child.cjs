// The fake Poe upstream in its own process (so its CPU is not counted against the proxy or the client).
// argv[2]: the bench support bundle. Sends {url} to the parent over IPC.
//
// A request can steer the reply with an extra body field the proxy passes through untouched:
//   bench: { chunks: N, delayMs: D, stamp: true }
// N pieces of content, D ms apart; with `stamp`, every piece carries the monotonic time (µs) at which the
// fake wrote it, so the client can measure how long each chunk spent in between (per-chunk delay).
const http = require('node:http');
const { FakePoe } = require(process.argv[2]);

const STAMP = '@@TS@@';
// The fake pre-renders its SSE frames; the stamp is filled in at the moment each frame is written.
const write = http.ServerResponse.prototype.write;
http.ServerResponse.prototype.write = function (chunk, ...rest) {
  if (typeof chunk === 'string' && chunk.includes(STAMP)) chunk = chunk.replace(STAMP, String(process.hrtime.bigint() / 1000n).padStart(16, '0'));
  return write.call(this, chunk, ...rest);
};

(async () => {
  const fake = await FakePoe.start({ balance: 1e12 });
  const defaultReply = fake.reply;
  fake.reply = (body, rec) => {
    const b = body && body.bench;
    if (!b || !b.chunks) return defaultReply(body, rec);
    const piece = b.stamp ? `${STAMP} ` : 'tok ';
    return { chunks: new Array(b.chunks).fill(piece), chunkDelayMs: b.delayMs || 0, usage: { prompt_tokens: 20, completion_tokens: b.chunks } };
  };
  // The fake remembers every request and points entry; keep that bounded so a long bench does not
  // slow the fake down (its points_history sorts all entries on every call).
  setInterval(() => {
    fake.requests.length = 0;
    if (fake.points.length > 400) fake.points.splice(0, fake.points.length - 400);
  }, 500).unref();
  process.send({ url: fake.url });
  process.on('disconnect', () => process.exit(0));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
