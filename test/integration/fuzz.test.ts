/**
 * Fuzz: thousands of generated malformed requests (bad JSON, wrong types, huge fields, odd headers,
 * invalid UTF-8). Every one must get a 4xx OpenAI-shaped JSON error, nothing may reach Poe, nothing may
 * crash or reject unhandled, and the proxy must still serve afterwards.
 * Reproducible: a seeded PRNG (FUZZ_SEED, FUZZ_COUNT override the defaults).
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as net from 'node:net';
import { FakePoe } from '../support/fake/server';
import { startProxy, TEST_FAKE_MODELS, type TestProxy } from '../support/proxyHarness';
import { openAiError, postChat, rawRequest, type RawResponse } from '../support/rawClient';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const MAX_BODY = 256 * 1024;

/** mulberry32: tiny, fast, good enough to make cases reproducible from a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

class Gen {
  constructor(private readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  str(max: number): string {
    const alphabet = 'abcXYZ019 _-./:"\\\'{}[],\n\t\u00e9\u4e2d\ud83d\ude00\u0000\u001f\u2028';
    let s = '';
    const n = this.int(max + 1);
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  /** A valid request body, as a starting point for mutations. */
  valid(): Record<string, unknown> {
    return {
      model: this.pick(['GPT-4.1', 'claude-sonnet', 'Small-Bot']),
      messages: [{ role: 'user', content: this.str(40) || 'hi' }],
      ...(this.int(2) ? { stream: true } : {}),
    };
  }
  /** A JSON value whose kind differs from every kind in `not`. */
  wrong(not: string[]): unknown {
    const options: Array<[string, () => unknown]> = [
      ['string', () => this.str(20)],
      ['number', () => this.pick([-1, 0, 1.5, 1e308, -0.0001, 42])],
      ['boolean', () => this.int(2) === 0],
      ['array', () => [this.str(5), 1]],
      ['object', () => ({ [this.str(5) || 'k']: this.str(5) })],
    ];
    return this.pick(options.filter(([k]) => !not.includes(k)))[1]();
  }
}

/** Fields the validator types, with the kinds it accepts (see src/core/exchange/validate.ts). */
const TYPED_FIELDS: Record<string, string[]> = {
  stream: ['boolean'],
  max_tokens: ['integer'],
  max_completion_tokens: ['integer'],
  temperature: ['number'],
  top_p: ['number'],
  n: ['integer'],
  stop: ['string', 'array'],
  tools: ['array'],
  tool_choice: ['string', 'object'],
  parallel_tool_calls: ['boolean'],
  stream_options: ['object'],
  response_format: ['object'],
  presence_penalty: ['number'],
  frequency_penalty: ['number'],
  seed: ['integer'],
  user: ['string'],
  logit_bias: ['object'],
};

const JSON_HEADERS = { 'content-type': 'application/json' };

function makeCase(g: Gen): Case {
  const post = (kind: string, body: string | Buffer, headers: Record<string, string> = JSON_HEADERS): Case => ({
    kind,
    method: 'POST',
    path: g.pick(['/v1/chat/completions', '/chat/completions', '/v1/chat/completions/']),
    headers,
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  });
  switch (g.int(9)) {
    case 0: {
      // Broken JSON text: truncations, stray characters, JavaScript-isms.
      const text = JSON.stringify(g.valid());
      const broken = g.pick([
        () => text.slice(0, 1 + g.int(text.length - 1)),
        () => {
          const i = g.int(text.length);
          return text.slice(0, i) + g.pick(['{', '}', ',', ':', '"', ']', "'", '\\', '\u0000']) + text.slice(i);
        },
        () => text.replace('}', ',}'),
        () => text.replace(/"/g, "'"),
        () => `// comment\n${text}`,
        () => text.replace(':', ': NaN, "x":'),
        () => '',
        () => '   \n\t',
        () => `${text}${text}`,
      ])();
      let isJson = true;
      try {
        JSON.parse(broken);
      } catch {
        isJson = false;
      }
      return isJson ? post('bad-json', '{') : post('bad-json', broken);
    }
    case 1: {
      // A body that is JSON but not an object.
      return post('not-object', g.pick(['null', '[]', '[{"model":"GPT-4.1"}]', '"GPT-4.1"', '123', 'true', '-0', '1e999']));
    }
    case 2: {
      // model of the wrong type, empty, or missing.
      const body = g.valid();
      const v = g.pick([() => undefined, () => '', () => '   ', () => null, () => g.wrong(['string'])])();
      if (v === undefined) delete body.model;
      else body.model = v;
      return post('bad-model', JSON.stringify(body));
    }
    case 3: {
      // messages of the wrong shape.
      const body = g.valid();
      body.messages = g.pick<() => unknown>([
        () => undefined,
        () => g.wrong(['array']),
        () => [],
        () => [null],
        () => [g.wrong(['object'])],
        () => [{ content: 'no role' }],
        () => [{ role: g.wrong(['string']), content: 'x' }],
        () => [{ role: 'user', content: g.wrong(['string', 'array']) }],
        () => [{ role: 'user', content: [g.wrong(['object'])] }],
        () => [{ role: 'user', content: [{ text: 'no type' }] }],
        () => [{ role: 'user', content: [{ type: 5 }] }],
        () => [{ role: 'assistant', content: 'x', tool_calls: g.wrong(['array']) }],
        () => [...Array.from({ length: 1 + g.int(50) }, () => ({ role: 'user', content: 'ok' })), { role: 'user', content: 7 }],
      ])();
      if (body.messages === undefined) delete body.messages;
      return post('bad-messages', JSON.stringify(body));
    }
    case 4: {
      // A typed optional field with the wrong type or out of range.
      const body = g.valid();
      const field = g.pick(Object.keys(TYPED_FIELDS));
      const kinds = TYPED_FIELDS[field];
      let v = g.wrong(kinds.map((k) => (k === 'integer' ? 'number' : k)));
      if (kinds.includes('integer') && g.int(2) === 0) v = g.pick([0.5, 2.25, -1.5]);
      if ((field === 'max_tokens' || field === 'max_completion_tokens') && g.int(3) === 0) v = g.pick([0, -1, -100]);
      body[field] = v;
      return post(`bad-field`, JSON.stringify(body));
    }
    case 5: {
      // Huge: a body over the limit, or huge values in fields that must be refused anyway.
      const body = g.valid();
      const which = g.int(4);
      if (which === 0) body.messages = [{ role: 'user', content: 'x'.repeat(MAX_BODY + g.int(MAX_BODY)) }];
      else if (which === 1) body.model = `no-such-model-${'m'.repeat(g.int(200_000))}`;
      else if (which === 3) body.temperature = 'x'.repeat(100_000);
      else {
        // Deeply nested arrays (JSON.stringify itself cannot produce this): parser depth must not crash anything.
        const depth = g.pick([1_000, 50_000, 120_000]);
        body.model = '@@';
        return post('huge', JSON.stringify(body).replace('"@@"', '['.repeat(depth) + ']'.repeat(depth)));
      }
      return post('huge', JSON.stringify(body));
    }
    case 6: {
      // Invalid UTF-8 inside otherwise valid JSON.
      const text = JSON.stringify(g.valid());
      const bad = g.pick([[0xff], [0xc3, 0x28], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
      const at = text.indexOf('"content":"') + 11;
      const body = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
      return post('invalid-utf8', body);
    }
    case 7: {
      // Odd headers on a valid body: each of these alone must be refused.
      const body = JSON.stringify(g.valid());
      const [kind, headers] = g.pick<[string, Record<string, string>]>([
        ['no-content-type', {}],
        [
          'content-type',
          {
            'content-type': g.pick([
              'text/plain',
              'application/x-www-form-urlencoded',
              'multipart/form-data; boundary=zz',
              'application/jsonx',
              'json',
              'text/json',
              '*/*',
              'application/x-json',
            ]),
          },
        ],
        [
          'origin',
          { ...JSON_HEADERS, origin: g.pick(['https://evil.example', 'null', 'http://127.0.0.1:1', `file://${g.str(10).replace(/[^\x21-\x7e]/g, '')}`]) },
        ],
        ['sec-fetch-site', { ...JSON_HEADERS, 'sec-fetch-site': g.pick(['cross-site', 'same-site']) }],
        ['host', { ...JSON_HEADERS, host: g.pick(['evil.example', 'localhost', '127.0.0.1:1', '[::1]', 'attacker.127.0.0.1.nip.io']) }],
      ]);
      return post(kind, body, { ...headers, 'x-junk': g.str(200).replace(/[^\x20-\x7e]/g, '') });
    }
    default: {
      // Wrong method or route, with junk.
      const method = g.pick(['GET', 'PUT', 'DELETE', 'PATCH']);
      const path = g.pick([
        '/v1/chat/completions',
        '/v1/models',
        '/v1/nothing',
        '/',
        `/v1/${encodeURIComponent(g.str(30).replace(/[\ud800-\udfff]/g, ''))}`,
        '/v1/chat/completions/extra',
      ]);
      const needsBody = method !== 'GET';
      if (method === 'GET' && path === '/v1/models') return { kind: 'route', method: 'POST', path, headers: JSON_HEADERS, body: Buffer.from('{}') };
      return { kind: 'route', method, path, headers: needsBody ? JSON_HEADERS : {}, body: needsBody ? Buffer.from(g.str(50)) : undefined };
    }
  }
}

describe('fuzz: malformed requests', function () {
  this.timeout(120_000);
  let fake: FakePoe;
  let proxy: TestProxy;
  const unexpected: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unexpected.push(e);

  before(async () => {
    fake = await FakePoe.start({ models: TEST_FAKE_MODELS });
    proxy = await startProxy(fake, { maxBodyBytes: MAX_BODY });
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await proxy.close();
    await fake.close();
  });

  it(`answers ${COUNT} generated malformed requests with 4xx JSON errors (seed ${SEED})`, async () => {
    const g = new Gen(prng(SEED));
    const cases = Array.from({ length: COUNT }, () => makeCase(g));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const failures: string[] = [];
    const byStatus = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const i = next++;
        const c = cases[i];
        let r: RawResponse;
        try {
          r = await rawRequest(proxy.url, { method: c.method, path: c.path, headers: c.headers, body: c.body, agent });
        } catch (err) {
          failures.push(`#${i} ${c.kind}: transport error ${(err as Error).message}`);
          continue;
        }
        const err = openAiError(r.body);
        const key = `${r.status} ${err?.code ?? '?'}`;
        byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
        if (r.status < 400 || r.status > 499 || !err || !/application\/json/.test(String(r.headers['content-type']))) {
          failures.push(`#${i} ${c.kind} ${c.method} ${c.path}: ${r.status} ${r.body.slice(0, 200)}`);
        }
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
    const summary = [...byStatus.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k}×${n}`)
      .join(', ');
    console.log(`      fuzz seed ${SEED}: ${COUNT} requests in ${Date.now() - t0} ms — ${summary}`);
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${COUNT} cases were not a 4xx JSON error`);
    assert.equal(fake.chatRequests().length, 0, 'no malformed request reached Poe');
    assert.deepEqual(unexpected, [], 'no unhandled rejection or exception');
    const kinds = new Set(cases.map((c) => c.kind));
    for (const k of ['bad-json', 'not-object', 'bad-model', 'bad-messages', 'bad-field', 'huge', 'invalid-utf8', 'content-type', 'origin', 'host', 'route'])
      assert.ok(kinds.has(k), `generated ${k} cases`);
    assert.ok(byStatus.size >= 8, 'a variety of errors');
  });

  it('answers malformed HTTP itself (garbage request lines, bad headers, broken chunking, smuggling) with a 4xx JSON error', async () => {
    const g = new Gen(prng(SEED + 1));
    const port = Number(new URL(proxy.url).port);
    const host = `127.0.0.1:${port}`;
    const body = JSON.stringify({ model: 'GPT-4.1', messages: [{ role: 'user', content: 'x' }] });
    const garbage = (): string =>
      Array.from({ length: 1 + g.int(40) }, () => String.fromCharCode(1 + g.int(126)))
        .join('')
        .replace(/[\r\n]/g, '');
    const cases: Array<[string, string | Buffer]> = [];
    for (let i = 0; i < 200; i++) {
      cases.push(
        g.pick<() => [string, string | Buffer]>([
          () => ['request line', `${garbage()}\r\n\r\n`],
          () => ['method', `${g.pick(['G@T', 'POST\x01', '', 'GET GET'])} /v1/models HTTP/1.1\r\nHost: ${host}\r\n\r\n`],
          () => ['version', `GET /v1/models HTTP/${g.pick(['9.9', '1', 'x', '1.1.1'])}\r\nHost: ${host}\r\n\r\n`],
          () => ['header name', `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\n${g.pick(['X A', 'X\x01A', '(x)', ' lead', 'x\x7f'])}: v\r\n\r\n`],
          () => [
            'header value',
            Buffer.concat([
              Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nX-V: a`),
              Buffer.from([g.pick([0x00, 0x01, 0x0b, 0x7f])]),
              Buffer.from(`b\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
            ]),
          ],
          () => [
            'content-length',
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${g.pick(['abc', '-1', '1 2', '0x10', '99999999999999999999'])}\r\n\r\n${body}`,
          ],
          () => [
            'chunked',
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${g.pick(['zz', '-5', '5;\x01', 'ffffffffffffffffff'])}\r\n${body}\r\n0\r\n\r\n`,
          ],
          () => [
            'smuggling',
            `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: ${g.pick(['chunked', 'gzip, chunked', ' chunked'])}\r\n\r\n${body}`,
          ],
          () => ['two hosts', `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\n\r\n`],
        ])(),
      );
    }
    const failures: string[] = [];
    const seen = new Map<string, number>();
    for (const [kind, bytes] of cases) {
      const answer = await new Promise<string>((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const parts: Buffer[] = [];
        const timer = setTimeout(() => sock.destroy(), 3000);
        sock.on('data', (c: Buffer) => parts.push(c));
        sock.on('error', () => undefined);
        sock.on('close', () => {
          clearTimeout(timer);
          resolve(Buffer.concat(parts).toString('utf8'));
        });
        sock.write(bytes);
        sock.end();
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
      const json = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      const key = `${kind} ${status}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (!(status >= 400 && status < 500) || !openAiError(json))
        failures.push(`${kind} ${JSON.stringify(bytes.toString().slice(0, 120))} → ${JSON.stringify(answer.slice(0, 200))}`);
    }
    console.log(`      malformed HTTP: ${cases.length} cases — ${[...seen.entries()].map(([k, n]) => `${k}×${n}`).join(', ')}`);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} malformed HTTP requests were not answered with a 4xx JSON error`);
    assert.equal(fake.chatRequests().length, 0);
  });

  it('still serves normal requests afterwards', async () => {
    const r = await postChat(proxy.url, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'after the storm' }] });
    assert.equal(r.status, 200, r.body);
    assert.ok(JSON.parse(r.body).choices[0].message.content.startsWith('Echo: after the storm'));
    assert.equal((await rawRequest(proxy.url, { path: '/health' })).status, 200);
  });
});
