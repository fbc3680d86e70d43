/**
 * Starts a real ProxyServer on a random loopback port in front of a FakePoe, for integration tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { makeConfig, type ConfigOverrides, type ProxyConfig } from '../../src/core/store/config';
import { Ledger } from '../../src/core/store/ledger';
import { silentLogger, type Logger } from '../../src/core/log';
import { ModelRegistry } from '../../src/core/store/registry';
import { ProxyServer } from '../../src/core/http/server';
import { Engine } from '../../src/core/engine';
import { createTokenCounter, type TokenCounter } from '../../src/core/tokens';
import { strict as assert } from 'node:assert';
import { DEFAULT_MODELS, FakePoe } from './fake/server';

/** Models the fake serves for these tests: its defaults plus the test registry's extras (and a lowercase id for the ladder). */
export const TEST_FAKE_MODELS = [...DEFAULT_MODELS, 'Small-Bot', 'gpt-4.1'];

export const TEST_MODELS_YAML = `
defaults:
  text_max_tokens: 200000
models:
  text:
    - poe_name: GPT-4.1
      base: 226
      per_1k_tokens: 60
      max_tokens: 1000000
      tools: true
    - poe_name: Claude-Sonnet-4.5
      base: 300
      per_1k_tokens: 90
      max_tokens: 200000
      aliases: [claude-sonnet]
    - poe_name: Gemini-2.5-Pro
      base: 100
      per_1k_tokens: 20
      max_tokens: 1000000
    - poe_name: Small-Bot
      base: 5
      per_1k_tokens: 1
      max_tokens: 4000
  image:
    - poe_name: GPT-Image-1
      base: 1500
`;

let sharedTokens: TokenCounter | undefined;
/** One tokenizer worker for the whole test run (it takes ~0.5 s to load). */
export function testTokens(): TokenCounter {
  sharedTokens ??= createTokenCounter();
  return sharedTokens;
}

export interface TestProxy {
  server: ProxyServer;
  /** The services the server runs on (in-process requests, spend, corrections). */
  engine: Engine;
  url: string;
  config: ProxyConfig;
  ledger: Ledger;
  dataDir: string;
  client(opts?: { apiKey?: string; maxRetries?: number }): OpenAI;
  close(): Promise<void>;
}

export async function startProxy(
  fake: FakePoe,
  overrides: ConfigOverrides = {},
  opts: { apiKey?: string | null; logger?: Logger; yaml?: string } = {},
): Promise<TestProxy> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-test-'));
  const config = makeConfig({
    port: 0,
    poeBaseUrl: fake.url,
    pointsCutoff: 0,
    pointsWaitMs: 300,
    retryBaseDelayMs: 5,
    rateLimit: { requestsPerMinute: 0, maxConcurrent: 0 },
    dataDir,
    ...overrides,
  });
  const registry = ModelRegistry.parse(opts.yaml ?? TEST_MODELS_YAML, 'test-models.yaml');
  const ledger = new Ledger({ dir: config.dataDir, retentionMonths: config.ledgerRetentionMonths });
  const apiKey = opts.apiKey === undefined ? 'test-poe-key' : (opts.apiKey ?? undefined);
  const engine = new Engine({ config, registry, getApiKey: () => apiKey, logger: opts.logger ?? silentLogger, tokens: testTokens(), ledger });
  const server = new ProxyServer(engine);
  const addr = await server.listen();
  const url = `http://127.0.0.1:${addr.port}`;
  return {
    server,
    engine,
    url,
    config,
    ledger,
    dataDir,
    client: (o = {}) => new OpenAI({ baseURL: `${url}/v1`, apiKey: o.apiKey ?? 'anything', maxRetries: o.maxRetries ?? 0 }),
    async close() {
      await server.close(200);
      engine.dispose();
      await ledger.flush();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The mocha hooks the integration suites share: one FakePoe for the whole suite (serving
 * TEST_FAKE_MODELS), reset before each test; with `setProxy`, a fresh default proxy in front of it
 * before each test. The proxy `currentProxy` returns is closed after each test (close is idempotent).
 * `failOnUnhandledRejection` fails a test that left an unhandled promise rejection behind.
 */
export function fakePoeHooks(opts: {
  setFake(fake: FakePoe): void;
  currentProxy(): TestProxy | undefined;
  setProxy?(proxy: TestProxy): void;
  failOnUnhandledRejection?: boolean;
}): void {
  let fake: FakePoe;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  before(async () => {
    fake = await FakePoe.start({ models: TEST_FAKE_MODELS });
    opts.setFake(fake);
    if (opts.failOnUnhandledRejection) process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await fake.close();
  });
  beforeEach(async () => {
    fake.reset();
    if (opts.setProxy) opts.setProxy(await startProxy(fake));
  });
  afterEach(async () => {
    await opts.currentProxy()?.close();
    assert.deepEqual(unhandled.splice(0), [], 'no unhandled rejection');
  });
}

// Root hook when loaded by mocha (the bench imports this file outside mocha).
if (typeof after === 'function') {
  after(async () => {
    await sharedTokens?.dispose();
  });
}
