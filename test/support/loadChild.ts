/**
 * The proxy alone in a child process for the load test, so its memory can be measured without the
 * fake upstream and the client in the same heap. Forked with --expose-gc and an IPC channel:
 * it sends {url} once listening, and answers {mem: n} with process.memoryUsage() taken after a full GC,
 * once n requests have finished (ledger entry recorded: their points settled in the background).
 */
import { makeConfig } from '../../src/core/store/config';
import { consoleLogger } from '../../src/core/log';
import { buildEngine } from '../../src/core/proxy';
import { ProxyServer } from '../../src/core/http/server';

async function main(): Promise<void> {
  const overrides = JSON.parse(process.env.LOAD_CHILD_CONFIG ?? '{}');
  const config = makeConfig({ port: 0, ...overrides });
  const built = await buildEngine({
    config,
    bundledModelsFile: config.modelsFile ?? '',
    getApiKey: () => process.env.LOAD_CHILD_POE_KEY,
    logger: consoleLogger('warn'),
  });
  const server = new ProxyServer(built.engine);
  await server.listen();
  let finished = 0;
  let waiting: { n: number; resolve: () => void } | undefined;
  built.engine.onDidFinishRequest(() => {
    finished += 1;
    if (waiting && finished >= waiting.n) waiting.resolve();
  });
  const finishedAtLeast = (n: number): Promise<void> => (finished >= n ? Promise.resolve() : new Promise((resolve) => (waiting = { n, resolve })));
  process.on('message', async (msg: { mem: number } | 'stop') => {
    if (typeof msg === 'object' && typeof msg.mem === 'number') {
      await finishedAtLeast(msg.mem);
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ mem: process.memoryUsage() });
    } else if (msg === 'stop') {
      void server
        .close()
        .then(() => built.dispose())
        .then(() => process.exit(0));
    }
  });
  process.send!({ url: server.url });
}

void main().catch((err) => {
  process.stderr.write(`load child: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
