/**
 * Adversarial review, a hostile local client or web page: oversized strings that would flood the log
 * and the ledger, uploads cut short, and the browser-facing gate (which held: kept as regressions).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, statSync } from 'node:fs';
import * as net from 'node:net';
import * as nodePath from 'node:path';
import { consoleLogger } from '../../src/core/log';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, type TestProxy } from '../support/proxyHarness';
import { postChat, rawRequest } from '../support/rawClient';
import { waitFor } from '../support/wait';

const ask = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('adversarial: hostile local input', function () {
  let fake: FakePoe;
  let proxy: TestProxy | undefined;
  const lines: string[] = [];

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });
  /** Requests that would cost points (the balance and history lookups are free). */
  const generations = (): number => fake.requests.filter((r) => r.path.startsWith('/v1/')).length;
  beforeEach(async () => {
    lines.length = 0;
    proxy = await startProxy(fake, {}, { logger: consoleLogger('debug', (l) => lines.push(l)) });
  });

  describe('client-supplied strings are capped before they are logged or stored (item 11)', () => {
    const huge = 'M'.repeat(6 * 1024 * 1024);

    for (const path of ['/v1/chat/completions', '/v1/messages', '/v1/responses']) {
      it(`${path}: a 6 MB unknown model name is neither a 6 MB ledger line nor a 6 MB log line`, async () => {
        const body = path === '/v1/responses' ? { model: huge, input: 'hi' } : path === '/v1/messages' ? { ...ask(huge), max_tokens: 10 } : ask(huge);
        const r = await postChat(proxy!.url, body, { path, headers: { 'x-request-id': 'R'.repeat(12_000), 'user-agent': 'U'.repeat(12_000) } });
        assert.equal(r.status, 404);
        assert.ok(r.body.length < 10_000, `the error quotes a capped name (${r.body.length} bytes)`);
        // Whether the ledger keeps it as an entry or as a refusal summary, what reaches the disk is small.
        await proxy!.ledger.flush();
        for (const e of await proxy!.ledger.read()) assert.ok(JSON.stringify(e).length < 2_000, `ledger entry of ${JSON.stringify(e).length} chars`);
        const onDisk = readdirSync(proxy!.dataDir, { recursive: true })
          .map((f) => nodePath.join(proxy!.dataDir, String(f)))
          .filter((f) => statSync(f).isFile())
          .reduce((n, f) => n + statSync(f).size, 0);
        assert.ok(onDisk < 20_000, `${onDisk} bytes in the data directory`);
        for (const l of lines) assert.ok(l.length < 10_000, `log line of ${l.length} chars`);
      });
    }

    it('every log line is capped, whatever wrote it', () => {
      const out: string[] = [];
      consoleLogger('debug', (l) => out.push(l)).info('x'.repeat(1_000_000));
      assert.ok(out[0].length < 10_000);
      assert.match(out[0], /more characters\)$/);
    });
  });

  describe('a client that disconnects mid-upload (item 15)', () => {
    it('is one debug line, no error and no stack trace', async () => {
      const port = proxy!.server.address!.port;
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"GPT-4.1",`,
      );
      await waitFor('the request in the proxy, its body half read', () => proxy!.server.activeRequests > 0);
      sock.destroy();
      await waitFor('the debug line', () => lines.some((l) => l.includes('[debug]') && /before the request body was complete/.test(l)));
      // Let anything else the abort causes be logged too.
      const health = await rawRequest(proxy!.url, { path: '/health' });
      assert.equal(health.status, 200);
      const loud = lines.filter((l) => /\[(error|warn)\]/.test(l) || /\n\s+at /.test(l));
      assert.deepEqual(loud, []);
      assert.equal(lines.filter((l) => /request body was complete/.test(l)).length, 1);
    });
  });

  describe('the browser-facing gate (held; regressions)', () => {
    const body = JSON.stringify(ask('GPT-4.1'));
    const post = (headers: Record<string, string>) =>
      rawRequest(proxy!.url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

    for (const host of ['evil.example', 'evil.example:80', '127.0.0.1.evil.example', 'localhost.evil.example', '127.0.0.1:1@evil.example', '0x7f000001']) {
      it(`DNS rebinding: Host ${host} is refused and nothing reaches Poe`, async () => {
        const before = generations();
        const r = await post({ host });
        assert.equal(r.status, 403, r.body);
        assert.equal(generations(), before);
      });
    }

    it('Origin null, a cross-site Origin and cross-site fetch metadata are refused', async () => {
      const before = generations();
      for (const headers of [{ origin: 'null' }, { origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }] as Array<Record<string, string>>) {
        const r = await post(headers);
        assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.body}`);
      }
      assert.equal(generations(), before);
    });

    it('a text/plain body (a "simple" CORS request) is refused', async () => {
      const before = generations();
      const r = await rawRequest(proxy!.url, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
      assert.equal(r.status, 415, r.body);
      assert.equal(generations(), before);
    });

    it('Content-Length with Transfer-Encoding (smuggling) is refused by the parser', async () => {
      const port = proxy!.server.address!.port;
      const raw = await new Promise<string>((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const parts: Buffer[] = [];
        sock.on('data', (c: Buffer) => parts.push(c));
        sock.on('error', () => undefined);
        sock.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
        sock.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        );
      });
      assert.match(raw, /^HTTP\/1.1 400/);
      assert.ok(!raw.includes('"name"'), 'the smuggled request was not answered');
    });
  });
});
