/**
 * The engine (src/core/engine.ts) apart from any socket of its own, and the HTTP front end's route
 * dialects: the upstream agent is released on dispose even when nothing ever listened, the registry is
 * stored once, and an error takes the shape of the route that was chosen.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Engine } from '../../src/core/engine';
import { ProxyError } from '../../src/core/http/errors';
import { errorBody, ProxyServer, shutdownFrame } from '../../src/core/http/server';
import { silentLogger } from '../../src/core/log';
import { makeConfig, type ConfigOverrides } from '../../src/core/store/config';
import { ModelRegistry } from '../../src/core/store/registry';
import type { TokenCounter } from '../../src/core/tokens';
import { SseParser } from '../../src/core/poe/sse';

const MODELS = 'models:\n  text:\n    - poe_name: GPT-4.1\n      base: 10\n      per_1k_tokens: 1\n';
const estimateTokens: TokenCounter = {
  count: async (texts) => texts.map((t) => Math.ceil(t.length / 4)),
  countOne: async (t) => Math.ceil(t.length / 4),
  warm: () => undefined,
  dispose: async () => undefined,
};

function engine(overrides: ConfigOverrides = {}, tokens: TokenCounter = estimateTokens): Engine {
  return new Engine({
    config: makeConfig({ port: 0, rateLimit: { requestsPerMinute: 0, maxConcurrent: 0 }, ...overrides }),
    registry: ModelRegistry.parse(MODELS),
    getApiKey: () => 'poe-key',
    logger: silentLogger,
    tokens,
  });
}

/** A loopback stand-in for Poe that keeps connections alive and reports when one closes. */
async function keepAliveUpstream(): Promise<{ url: string; opened: Promise<Socket>; close(): Promise<void> }> {
  let resolveOpened: (s: Socket) => void = () => undefined;
  const opened = new Promise<Socket>((r) => (resolveOpened = r));
  const server = http.createServer({ keepAlive: true }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"current_point_balance":1}');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => resolveOpened(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    opened,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('engine', () => {
  it('dispose releases the upstream agent even when no front end ever listened', async () => {
    const up = await keepAliveUpstream();
    try {
      const e = engine({ poeBaseUrl: up.url });
      new ProxyServer(e); // a front end that never listens (close() would return early)
      const r = await e.upstream.getJson('/usage/current_balance', AbortSignal.timeout(5_000));
      assert.equal(r.status, 200);
      const socket = await up.opened;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      assert.equal(socket.destroyed, false, 'the agent keeps the connection alive');
      e.dispose();
      await closed; // without dispose the kept-alive connection stays open for a minute
      e.dispose(); // idempotent
    } finally {
      await up.close();
    }
  });

  it('stores the registry once: reconfigure reaches the services of the next request, in process or over HTTP', async () => {
    const e = engine();
    const next = ModelRegistry.parse(MODELS.replace('GPT-4.1', 'Other-Bot'));
    const before = e.services();
    e.reconfigure(makeConfig({ ...e.config, contextLimit: 1234 }), next);
    assert.equal(e.registry, next);
    assert.equal(e.services().registry, next);
    assert.equal(e.inProcessServices().registry, next);
    assert.equal(e.services().config.contextLimit, 1234);
    assert.notEqual(before.registry, next, 'a request already running keeps what it started with');
    e.dispose();
  });

  it('admit refuses over the rate limit, records the refusal for every listener, and releases slots', () => {
    const e = engine({ rateLimit: { requestsPerMinute: 0, maxConcurrent: 1 } });
    const seen: string[] = [];
    e.onDidFinishRequest((entry) => seen.push(`${entry.status} ${entry.httpStatus} ${entry.endpoint} ${entry.client}`));
    const release = e.admit('127.0.0.1', 'messages', 'claude-code');
    assert.throws(
      () => e.admit('127.0.0.1', 'messages', 'claude-code'),
      (err: unknown) => err instanceof ProxyError && err.status === 429,
    );
    assert.deepEqual(seen, ['rate_limited 429 messages claude-code']);
    release();
    e.admit('127.0.0.1', 'chat')();
    e.dispose();
  });
});

describe('route dialects', () => {
  const err = new ProxyError(503, 'The Poe proxy is shutting down; retry the request.', 'api_error', 'proxy_shutdown');

  it("shapes errors as the route's clients read them", () => {
    assert.deepEqual(errorBody('anthropic', err), { type: 'error', error: { type: 'api_error', message: err.message } });
    for (const d of ['openai', 'responses'] as const) assert.deepEqual(errorBody(d, err), err.toBody(), d);
  });

  it("ends a stream cut by shutdown with the dialect's own error event", () => {
    const events = (d: 'openai' | 'anthropic' | 'responses') => new SseParser().push(shutdownFrame(d));
    const openai = events('openai');
    assert.deepEqual(
      openai.map((e) => e.data),
      [JSON.stringify(err.toBody()), '[DONE]'],
    );
    const [anthropic] = events('anthropic');
    assert.equal(anthropic.event, 'error');
    assert.equal(JSON.parse(anthropic.data).error.type, 'api_error');
    const [responses] = events('responses');
    assert.equal(responses.event, 'error');
    assert.equal(JSON.parse(responses.data).code, 'proxy_shutdown');
  });

  it("an internal error inside a route's handler gets that route's shape", async () => {
    const failing: TokenCounter = {
      ...estimateTokens,
      countOne: () => Promise.reject(new Error('tokenizer exploded')),
      count: () => Promise.reject(new Error('tokenizer exploded')),
    };
    const e = engine({}, failing);
    const server = new ProxyServer(e);
    const { port } = await server.listen();
    try {
      const post = (path: string, headers: Record<string, string> = {}) =>
        fetch(`http://127.0.0.1:${port}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'count me' }] }),
        });
      const anthropic = await post('/v1/messages/count_tokens', { 'anthropic-version': '2023-06-01' });
      assert.equal(anthropic.status, 500);
      const body = (await anthropic.json()) as { type?: string; error?: { type?: string; message?: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error?.type, 'api_error');
      assert.match(body.error?.message ?? '', /tokenizer exploded/);
      // The same failure on the wrong method of that route: still the route's (Anthropic) shape.
      const wrongMethod = await fetch(`http://127.0.0.1:${port}/v1/messages`);
      assert.equal(wrongMethod.status, 405);
      assert.equal(((await wrongMethod.json()) as { type?: string }).type, 'error');
      // GET /v1/models picks its dialect per request.
      const models = await fetch(`http://127.0.0.1:${port}/v1/models`, { method: 'DELETE', headers: { 'anthropic-version': '2023-06-01' } });
      assert.equal(models.status, 405);
      assert.equal(((await models.json()) as { type?: string }).type, 'error');
      const openai = await fetch(`http://127.0.0.1:${port}/v1/models`, { method: 'DELETE' });
      assert.equal(((await openai.json()) as { error?: { code?: string } }).error?.code, 'method_not_allowed');
    } finally {
      await server.close(0);
      e.dispose();
    }
  });
});
