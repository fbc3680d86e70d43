// Load generation: plain node:http clients with keep-alive agents. The very same code drives every
// target (fake upstream directly, the floor pass-through, the proxy), so the client's own cost is the
// same on each path and cancels out of the differences.
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';

export function makeAgent(concurrency) {
  return new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'lifo' });
}

const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer test-poe-key' };

/**
 * One POST; resolves when the whole response body has arrived.
 * `onData(buf, nowMs)` sees each body chunk as it arrives; the result has status, TTFB and total in ms.
 */
export function post(base, agent, body, onData) {
  const u = new URL('/v1/chat/completions', base);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = 0;
    let bytes = 0;
    const req = http.request(
      { hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { ...HEADERS, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.on('data', (buf) => {
          const t = performance.now();
          if (!first) first = t;
          bytes += buf.length;
          onData?.(buf, t);
        });
        res.on('end', () => resolve({ status: res.statusCode, ttfbMs: first - t0, totalMs: performance.now() - t0, bytes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `total` requests from `concurrency` closed-loop workers; per-request latencies in ms. Non-200 answers are counted. */
export async function closedLoop(base, { body, concurrency, total, agent = makeAgent(concurrency) }) {
  const latencies = [];
  let errors = 0;
  let issued = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (issued < total) {
      issued++;
      const r = await post(base, agent, body);
      if (r.status !== 200) errors++;
      latencies.push(r.totalMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, errors, elapsedMs: performance.now() - t0 };
}

/** Counts SSE data events in a byte stream (split across chunks), without parsing JSON. */
export function eventCounter() {
  let tail = '';
  let events = 0;
  return {
    push(buf) {
      const s = tail + buf.toString('latin1');
      let i = 0;
      for (;;) {
        const j = s.indexOf('\n\n', i);
        if (j < 0) break;
        if (s.startsWith('data: ', i)) events++;
        i = j + 2;
      }
      tail = s.slice(i);
    },
    get events() {
      return events;
    },
  };
}

/** Extracts the fake's monotonic stamps (µs) from SSE content as it arrives; returns per-chunk delays in ms. */
export function stampReader() {
  let tail = '';
  const delays = [];
  const re = /(\d{16}) /g;
  return {
    push(buf) {
      const now = process.hrtime.bigint() / 1000n;
      const s = tail + buf.toString('utf8');
      const cut = s.lastIndexOf('\n\n');
      const done = cut >= 0 ? s.slice(0, cut) : '';
      tail = cut >= 0 ? s.slice(cut + 2) : s;
      for (const m of done.matchAll(re)) delays.push(Number(now - BigInt(m[1])) / 1000);
    },
    delays,
  };
}
