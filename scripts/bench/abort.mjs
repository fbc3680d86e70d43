// Section 9: how fast a client that disconnects mid-stream stops the Poe request (points must not keep
// burning): from the client destroying its socket to the fake upstream seeing its request closed. The
// client and the fake share this process, so one clock times both ends; the proxy runs as shipped (cli.js).
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startProxy } from './relay.mjs';
import { median } from './stats.mjs';

const CHUNKS = 500;
const BODY = { model: 'GPT-4.1', messages: [{ role: 'user', content: 'long' }], stream: true };

export async function abortRun(build, resultsDir, { runs = 15 } = {}) {
  // The integration tests' client (test/support/rawClient.ts): a streaming chat, paused once its first bytes arrived.
  const { FakePoe, openStream } = createRequire(import.meta.url)(build.support);
  const fake = await FakePoe.start({ balance: 1e12 });
  // 5 s of content: a request the proxy failed to stop would run to its end.
  fake.reply = () => ({ chunks: Array.from({ length: CHUNKS }, (_, i) => `w${i} `), chunkDelayMs: 10 });
  const proxy = await startProxy(build.cli, fake.url, {}, path.join(resultsDir, 'proxy-abort.log'));
  try {
    const samples = [];
    for (let i = 0; i < runs; i++) {
      const { req, res } = await openStream(proxy.url, BODY);
      const aborted = fake.waitForAbort(5000);
      const t0 = performance.now();
      res.destroy();
      req.destroy();
      const rec = await aborted;
      samples.push(performance.now() - t0);
      if (rec.completed || rec.chunksSent >= CHUNKS) throw new Error('abort bench: the upstream stream ran to its end');
    }
    return { runs, medianMs: median(samples), maxMs: Math.max(...samples) };
  } finally {
    const exited = new Promise((r) => proxy.child.once('exit', r));
    proxy.child.kill('SIGTERM');
    await fake.close();
    await exited;
    rmSync(proxy.dataDir, { recursive: true, force: true });
  }
}
