/**
 * The security gate end to end: only the user's own tools may spend their Poe points. Raw HTTP so the
 * tests can send what a browser, a rebinding page or a slowloris client would.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConfigOverrides } from '../../src/core/store/config';
import { consoleLogger } from '../../src/core/log';
import { FakePoe } from '../support/fake/server';
import { fakePoeHooks, startProxy, TEST_FAKE_MODELS, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, openAiError, postChat, rawExchange, rawRequest, sleep, type RawResponse } from '../support/rawClient';

const ask = (text: string, extra: Record<string, unknown> = {}) => ({ model: 'GPT-4.1', messages: [{ role: 'user', content: text }], ...extra });
const POE_KEY = 'test-poe-key';

function assertError(r: RawResponse, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  const err = openAiError(r.body);
  assert.ok(err, `OpenAI-shaped error: ${r.body}`);
  assert.equal(err.code, code);
  assert.match(String(r.headers['content-type']), /application\/json/);
}

function corsHeaders(r: RawResponse): string[] {
  return Object.keys(r.headers).filter((h) => h.startsWith('access-control-'));
}

describe('security', function () {
  let fake: FakePoe;
  let proxy: TestProxy | undefined;

  fakePoeHooks({ setFake: (f) => (fake = f), currentProxy: () => proxy });
  afterEach(() => {
    proxy = undefined;
  });

  const start = async (overrides: ConfigOverrides = {}, opts: Parameters<typeof startProxy>[2] = {}): Promise<TestProxy> => {
    proxy = await startProxy(fake, overrides, opts);
    return proxy;
  };

  describe('binding', () => {
    it('listens on 127.0.0.1 by default', async () => {
      const p = await start({ host: undefined });
      assert.equal(p.server.address?.address, '127.0.0.1');
    });

    it('refuses a non-loopback bind without an access key, binds with one and warns', async () => {
      await assert.rejects(startProxy(fake, { host: '0.0.0.0' }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'access_key_required');
        assert.match(e.message, /PROXY_API_KEY/);
        return true;
      });
      const lines: string[] = [];
      const p = await start({ host: '0.0.0.0', accessKey: 'pp-local-key-123456' }, { logger: consoleLogger('warn', (l) => lines.push(l)) });
      assert.equal(p.server.address?.address, '0.0.0.0');
      assert.ok(
        lines.some((l) => /\[warn\].*reachable from the network/.test(l)),
        lines.join('\n'),
      );
    });

    describe('headless CLI', function () {
      this.timeout(20_000);
      const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
      const run = (env: Record<string, string>, untilListening: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> =>
        new Promise((resolve) => {
          const child = spawn(process.execPath, [cli], {
            env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', POINTS_CUTOFF: '0', DATA_DIR: fakeDataDir(), ...env },
            cwd: fakeDataDir(),
          });
          let stdout = '';
          let stderr = '';
          let signalled = false;
          child.stdout.on('data', (c) => {
            stdout += c;
            // One SIGTERM, once the proxy announced itself: a second one would force an exit (130).
            if (untilListening && !signalled && /listening on/.test(stdout)) {
              signalled = true;
              child.kill('SIGTERM');
            }
          });
          child.stderr.on('data', (c) => (stderr += c));
          // 'close', not 'exit': only then has everything the child wrote been read.
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        });

      it('exits non-zero with a clear message for HOST=0.0.0.0 without PROXY_API_KEY', async () => {
        const r = await run({ HOST: '0.0.0.0', POE_API_KEY: 'poe-secret-abcdef123' }, false);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Refusing to listen on 0\.0\.0\.0/);
        assert.match(r.stderr, /PROXY_API_KEY/);
        assert.ok(!r.stderr.includes('poe-secret-abcdef123') && !r.stdout.includes('poe-secret-abcdef123'));
      });

      it('listens on HOST=0.0.0.0 with PROXY_API_KEY, warns, and never prints either key', async () => {
        const r = await run({ HOST: '0.0.0.0', PROXY_API_KEY: 'pp-access-key-987654', POE_API_KEY: 'poe-secret-abcdef123', LOG_LEVEL: 'debug' }, true);
        assert.match(r.stdout, /listening on http:\/\/0\.0\.0\.0:\d+/);
        assert.match(r.stderr, /\[warn\].*reachable from the network; every request must carry the access key/);
        for (const secret of ['pp-access-key-987654', 'poe-secret-abcdef123']) assert.ok(!(r.stdout + r.stderr).includes(secret), `${secret} printed`);
        assert.equal(r.code, 0, 'SIGTERM stops it cleanly');
      });
    });
  });

  describe('DNS rebinding (Host)', () => {
    it('accepts the loopback names with our port and configured extras', async () => {
      const p = await start({ allowedHosts: ['proxy.lan:9999'] });
      const port = p.server.address!.port;
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'proxy.lan:9999']) {
        assert.equal((await rawRequest(p.url, { path: '/v1/models', headers: { host } })).status, 200, host);
      }
    });

    it('answers a foreign, wrong-port or missing Host with 403, on every route, without calling Poe', async () => {
      const p = await start();
      const port = p.server.address!.port;
      for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, 'localhost', `127.0.0.1.nip.io:${port}`]) {
        for (const route of ['/health', '/v1/models']) assertError(await rawRequest(p.url, { path: route, headers: { host } }), 403, 'host_not_allowed');
        assertError(await postChat(p.url, ask('x'), { headers: { host } }), 403, 'host_not_allowed');
      }
      // HTTP/1.1 without a Host header at all, and HTTP/1.0 with an empty one.
      for (const head of ['GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n', 'GET /v1/models HTTP/1.0\r\nHost:\r\n\r\n']) {
        const raw = await rawExchange(port, (s) => s.write(head));
        assert.match(raw, /^HTTP\/1\.[01] 403/, raw);
        assert.match(raw, /"code":"host_not_allowed"/);
      }
      assert.equal(fake.chatRequests().length, 0);
    });
  });

  describe('cross-site requests', () => {
    it('refuses any Origin not on the allow list and Sec-Fetch-Site: cross-site, with no CORS headers', async () => {
      const p = await start();
      for (const origin of ['https://evil.example', 'null', 'http://localhost:3000', p.url]) {
        const r = await postChat(p.url, ask('x'), { headers: { origin } });
        assertError(r, 403, 'origin_not_allowed');
        assert.deepEqual(corsHeaders(r), []);
        const pre = await rawRequest(p.url, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
        });
        assert.equal(pre.status, 403, 'a preflight is never approved');
        assert.deepEqual(corsHeaders(pre), []);
      }
      assertError(await postChat(p.url, ask('x'), { headers: { 'sec-fetch-site': 'cross-site' } }), 403, 'cross_site_request');
      assertError(await rawRequest(p.url, { path: '/v1/models', headers: { 'sec-fetch-site': 'cross-site' } }), 403, 'cross_site_request');
      assert.equal(fake.chatRequests().length, 0);
    });

    it('sends no CORS headers by default, and allows a configured origin', async () => {
      const plain = await start();
      const r = await postChat(plain.url, ask('x'), { headers: { 'sec-fetch-site': 'none' } });
      assert.equal(r.status, 200);
      assert.deepEqual(corsHeaders(r), []);
      await plain.close();
      proxy = undefined;
      const p = await start({ allowedOrigins: ['vscode-webview://mine'] });
      const ok = await postChat(p.url, ask('x'), { headers: { origin: 'vscode-webview://mine' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], 'vscode-webview://mine');
      assert.match(
        String(ok.headers['access-control-expose-headers']),
        /x-poe-points, x-poe-points-estimated, x-poe-balance/,
        'the page may read the cost headers',
      );
      const pre = await rawRequest(p.url, {
        method: 'OPTIONS',
        headers: { origin: 'vscode-webview://mine', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-poe-proxy-footer' },
      });
      assert.match(String(pre.headers['access-control-allow-headers']), /x-poe-proxy-footer/, 'and may turn the footer off');
      assertError(await postChat(p.url, ask('x'), { headers: { origin: 'vscode-webview://other' } }), 403, 'origin_not_allowed');
    });

    it('requires application/json for POST bodies (415), so a form post cannot skip the preflight', async () => {
      const p = await start();
      const body = JSON.stringify(ask('x'));
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', '']) {
        const headers: Record<string, string> = type ? { 'content-type': type } : {};
        assertError(await rawRequest(p.url, { method: 'POST', body, headers }), 415, 'unsupported_media_type');
      }
      assert.equal((await rawRequest(p.url, { method: 'POST', body, headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 200);
      assert.equal(fake.chatRequests().length, 1);
    });
  });

  describe('local access key', () => {
    const KEY = 'pp-local-access-key-0123456789';

    it('is required as Bearer or x-api-key and never forwarded to Poe', async () => {
      const p = await start({ accessKey: KEY });
      assertError(await postChat(p.url, ask('x')), 401, 'invalid_access_key');
      assertError(await postChat(p.url, ask('x'), { headers: { authorization: 'Bearer wrong-key' } }), 401, 'invalid_access_key');
      assertError(await postChat(p.url, ask('x'), { headers: { 'x-api-key': `${KEY}x` } }), 401, 'invalid_access_key');
      assertError(await rawRequest(p.url, { path: '/v1/models' }), 401, 'invalid_access_key');
      assert.equal(fake.chatRequests().length, 0);
      assert.equal((await postChat(p.url, ask('bearer'), { headers: { authorization: `Bearer ${KEY}` } })).status, 200);
      assert.equal((await postChat(p.url, ask('x-api-key'), { headers: { 'x-api-key': KEY } })).status, 200);
      const sdk = await p.client({ apiKey: KEY }).chat.completions.create({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'sdk' }] });
      assert.ok(sdk.choices[0].message.content?.startsWith('Echo: sdk'));
      for (const rec of fake.requests) {
        const sent = JSON.stringify(rec.headers) + rec.rawBody;
        assert.ok(!sent.includes(KEY), `access key forwarded to Poe in ${rec.method} ${rec.path}`);
        if (rec.path === '/v1/chat/completions') assert.equal(rec.headers.authorization, `Bearer ${POE_KEY}`);
      }
    });
  });

  describe('limits and timeouts', () => {
    it('answers a body over the limit with 413 (declared or streamed) and keeps serving', async () => {
      const p = await start({ maxBodyBytes: 4096 });
      const big = JSON.stringify(ask('y'.repeat(5000)));
      assertError(await rawRequest(p.url, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } }), 413, 'body_too_large');
      // Chunked, no content-length: the cap applies while reading.
      const chunked = await new Promise<RawResponse>((resolve, reject) => {
        const u = new URL(p.url);
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            path: '/v1/chat/completions',
            method: 'POST',
            headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          },
          (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        );
        req.on('error', reject);
        for (let i = 0; i < 5; i++) req.write(big.slice(i * 1000, (i + 1) * 1000));
        req.end(big.slice(5000));
      });
      assertError(chunked, 413, 'body_too_large');
      assert.equal((await postChat(p.url, ask('small'))).status, 200);
      assert.equal(fake.chatRequests().length, 1);
    });

    it('answers a body that does not arrive in time with 408 and frees the connection (slowloris)', async () => {
      const p = await start({ bodyTimeoutMs: 300 });
      const port = p.server.address!.port;
      const raw = await rawExchange(port, (s) =>
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`),
      );
      assert.match(raw, /^HTTP\/1\.1 408/, raw);
      assert.match(raw, /"code":"body_timeout"/);
      assert.equal((await postChat(p.url, ask('after'))).status, 200);
    });

    it('closes a connection whose headers do not arrive in time with 408, even while header lines keep trickling in (slowloris)', async () => {
      const p = await start({ headersTimeoutMs: 500 });
      const port = p.server.address!.port;
      // The client would trickle a header line every 100 ms for 5 s: the proxy must cut it off while it is still sending.
      const LINES = 50;
      let sent = 0;
      const raw = await rawExchange(port, async (s) => {
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
        for (; sent < LINES && !s.destroyed; sent++) {
          await sleep(100);
          if (!s.destroyed) s.write(`X-Slow-${sent}: a\r\n`);
        }
      });
      assert.match(raw, /^HTTP\/1\.1 408/, raw);
      assert.ok(sent < LINES, 'cut off while header lines were still arriving');
    });

    it('answers oversized headers with 431', async () => {
      const p = await start();
      const port = p.server.address!.port;
      const raw = await rawExchange(port, (s) => s.write(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`));
      assert.match(raw, /^HTTP\/1\.1 431/, raw);
      assert.match(raw, /"type":"invalid_request_error"/);
    });
  });

  describe('secrets in errors, logs and the ledger', () => {
    const ACCESS = 'pp-access-key-for-the-log-test-42';
    const LONG_POE_KEY = 'poe-sk-Zx81Qq0LongSecretValue';

    it('never echoes the Poe key or the access key, even when Poe quotes the key back', async () => {
      const keyed = await FakePoe.start({ models: TEST_FAKE_MODELS, apiKey: LONG_POE_KEY });
      const lines: string[] = [];
      const p = await startProxy(
        keyed,
        { accessKey: ACCESS, upstreamRetries: 1 },
        { apiKey: LONG_POE_KEY, logger: consoleLogger('debug', (l) => lines.push(l)) },
      );
      const bodies: string[] = [];
      const auth = { authorization: `Bearer ${ACCESS}` };
      try {
        keyed.enqueueFault(
          { kind: 'status', status: 401, message: `Incorrect API key provided: ${LONG_POE_KEY}. Authorization: Bearer ${LONG_POE_KEY}` },
          { times: 3 },
        );
        bodies.push((await postChat(p.url, ask('x'), { headers: auth })).body);
        keyed.clearFaults();
        keyed.enqueueFault({ kind: 'status', status: 400, message: `bad request for key ${LONG_POE_KEY}` }, { times: 6 });
        bodies.push((await postChat(p.url, ask('x', { stream: true }), { headers: auth })).body);
        keyed.clearFaults();
        keyed.enqueueFault({ kind: 'error-mid-stream', afterChunks: 1, message: `stream failed for ${LONG_POE_KEY}` });
        bodies.push((await postChat(p.url, ask('a b c', { stream: true }), { headers: auth })).body);
        bodies.push((await postChat(p.url, ask('x'), { headers: { authorization: `Bearer ${ACCESS}-wrong` } })).body);
        bodies.push((await postChat(p.url, ask('ok'), { headers: auth })).body);
        const entries = await ledgerEntries(p, 4);
        assert.ok(entries.length >= 4);
        const ledgerText = readdirSync(p.dataDir)
          .filter((f) => f.startsWith('ledger'))
          .map((f) => readFileSync(path.join(p.dataDir, f), 'utf8'))
          .join('');
        assert.ok(
          bodies.some((b) => /Incorrect API key provided/.test(b)),
          'the 401 message itself is still relayed',
        );
        assert.ok(bodies.some((b) => /stream failed for/.test(b)));
        for (const [what, text] of [
          ['responses', bodies.join('\n')],
          ['logs', lines.join('\n')],
          ['ledger', ledgerText],
        ] as const) {
          assert.ok(!text.includes(LONG_POE_KEY), `Poe key in ${what}: ${text.slice(0, 2000)}`);
          assert.ok(!text.includes(ACCESS), `access key in ${what}`);
        }
        assert.ok(lines.length > 0, 'something was logged');
      } finally {
        await p.close();
        await keyed.close();
      }
    });
  });
});

let dataDirForCli: string | undefined;
function fakeDataDir(): string {
  dataDirForCli ??= mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-cli-'));
  return dataDirForCli;
}
