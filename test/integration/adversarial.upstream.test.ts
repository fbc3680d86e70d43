/**
 * Adversarial review, a hostile or broken upstream: odd statuses and redirects, huge or endless
 * events, a stream of nothing but comments, and the framing the client asked for. Every dialect.
 */
import { strict as assert } from 'node:assert';
import type { ConfigOverrides } from '../../src/core/store/config';
import type { FakePoe } from '../support/fake/server';
import { startProxy, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, openAiError, postChat, rawExchange, rawRequest, sseData } from '../support/rawClient';
import { chatBody, ENDPOINTS, messagesBody } from '../support/dialectRequests';
import { sseHead, startScriptedPoe, type ScriptedPoe } from '../support/scriptedPoe';

/** A short, complete, well-formed stream in each dialect. */
function goodStream(endpoint: string, text = 'ok'): string {
  if (endpoint === 'messages') {
    const ev = (type: string, d: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...d })}\n\n`;
    return (
      ev('message_start', { message: { id: 'm', usage: { input_tokens: 1, output_tokens: 0 } } }) +
      ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }) +
      ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 1 } }) +
      ev('message_stop', {})
    );
  }
  if (endpoint === 'responses') {
    const ev = (type: string, d: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...d })}\n\n`;
    return (
      ev('response.output_text.delta', { sequence_number: 0, delta: text }) +
      ev('response.completed', { sequence_number: 1, response: { usage: { input_tokens: 1, output_tokens: 1 } } })
    );
  }
  const c = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'GPT-4.1', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  return c({ content: text }, null) + c({}, 'stop') + 'data: [DONE]\n\n';
}

function drainedOrClosed(res: import('node:http').ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

describe('adversarial: hostile or broken upstream', function () {
  let poe: ScriptedPoe;
  let trap: ScriptedPoe;
  let proxy: TestProxy | undefined;

  before(async () => {
    poe = await startScriptedPoe();
    trap = await startScriptedPoe((_req, res) => void res.end('{}'));
  });
  after(async () => {
    await poe.close();
    await trap.close();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const start = async (overrides: ConfigOverrides = {}): Promise<TestProxy> => {
    proxy = await startProxy({ url: poe.url } as FakePoe, { upstreamRetries: 0, ...overrides });
    return proxy;
  };

  describe('unexpected statuses and redirects (item 8)', () => {
    for (const status of [301, 302, 303, 307, 308, 304, 204, 201, 299]) {
      for (const ep of ENDPOINTS) {
        it(`${status} on ${ep.name}: a JSON 502 naming it, no redirect followed`, async () => {
          const p = await start();
          trap.requests.length = 0;
          poe.handle((_req, res) => {
            res.writeHead(status, { location: `${trap.url}/v1/steal`, 'content-type': 'application/json' });
            res.end(status === 304 || status === 204 ? undefined : '{"error":{"message":"moved"}}');
          });
          const r = await postChat(p.url, ep.body(false), { path: ep.path });
          assert.equal(r.status, 502, r.body);
          assert.match(String(r.headers['content-type']), /application\/json/);
          assert.match(r.body, new RegExp(`HTTP status ${status}`));
          assert.equal(trap.requests.length, 0, 'the redirect target got nothing (least of all the key)');
          const [entry] = await ledgerEntries(p, 1);
          assert.equal(entry.httpStatus, 502);
        });
      }
    }

    it("a 4xx or 5xx from Poe keeps its status, with Poe's message (held)", async () => {
      const p = await start();
      for (const status of [400, 401, 402, 404, 418, 500, 503]) {
        poe.handle((_req, res) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: `poe says ${status}` } }));
        });
        const r = await postChat(p.url, chatBody(false));
        assert.equal(r.status, status);
        assert.match(openAiError(r.body)!.message, new RegExp(`poe says ${status}`));
      }
    });
  });

  describe('one huge event (item 7)', () => {
    /** Streams `bytes` of one unfinished event in 16 KB chunks, respecting backpressure. */
    async function floodOneEvent(res: import('node:http').ServerResponse, prefix: string, bytes: number, line = 'a'.repeat(16 * 1024)): Promise<void> {
      sseHead(res);
      res.write(prefix);
      for (let sent = 0; sent < bytes && !res.destroyed; sent += line.length) {
        if (!res.write(line)) await drainedOrClosed(res);
      }
      res.end();
    }

    for (const ep of ENDPOINTS) {
      it(`${ep.name}: an event above the cap fails that request alone with a clear error; /health answers meanwhile`, async function () {
        this.timeout(60_000);
        const p = await start();
        let healthDuringAttack: number | undefined;
        poe.handle(async (_req, res) => {
          const health = rawRequest(p.url, { path: '/health' }).then((h) => (healthDuringAttack = h.status));
          await floodOneEvent(res, ep.name === 'chat' ? 'data: ' : 'event: x\ndata: ', 20 * 1024 * 1024);
          await health;
        });
        const r = await postChat(p.url, ep.body(true), { path: ep.path });
        assert.equal(r.status, 200);
        assert.ok(r.body.length < 1024 * 1024, `the huge event is not relayed (${r.body.length} bytes)`);
        assert.match(r.body, /larger than 16 MiB/);
        assert.equal(healthDuringAttack, 200);
        const [entry] = await ledgerEntries(p, 1);
        assert.equal(entry.status, 'error');
        assert.match(entry.error ?? '', /larger than 16 MiB/);
      });
    }

    it('messages: endless comment lines without a blank line are capped too (the aligner held them all)', async function () {
      this.timeout(60_000);
      const p = await start();
      poe.handle((_req, res) => floodOneEvent(res, '', 20 * 1024 * 1024, `: ${'x'.repeat(1000)}\n`.repeat(16)));
      const r = await postChat(p.url, messagesBody(true), { path: '/v1/messages' });
      assert.ok(r.body.length < 1024 * 1024, `${r.body.length} bytes relayed`);
      assert.match(r.body, /event: error\n.*larger than 16 MiB/);
    });

    it('a large but legal event (2 MiB of text) still goes through whole (held)', async () => {
      const p = await start();
      const big = 'b'.repeat(2 * 1024 * 1024);
      poe.handle((_req, res) => {
        sseHead(res);
        const s = goodStream('messages', big);
        for (let i = 0; i < s.length; i += 16 * 1024) res.write(s.slice(i, i + 16 * 1024));
        res.end();
      });
      const r = await postChat(p.url, messagesBody(true), { path: '/v1/messages' });
      assert.ok(r.body.includes(big));
      assert.doesNotMatch(r.body, /event: error/);
    });
  });

  describe('keep-alive pings whatever Poe sends that is not content (item 9)', () => {
    for (const ep of ENDPOINTS) {
      it(`${ep.name}: Poe sending only comments still gets the client pings`, async () => {
        const p = await start({ keepAliveIntervalMs: 100 });
        poe.handle(async (_req, res) => {
          sseHead(res);
          // Chat drops comments; the Anthropic/Responses relay holds comment lines that end no event.
          const comment = ep.name === 'chat' ? ': keep-alive\n\n' : ': keep-alive\n';
          for (let i = 0; i < 16; i++) {
            res.write(comment);
            await new Promise((r) => setTimeout(r, 40));
          }
          res.end((ep.name === 'chat' ? '' : '\n') + goodStream(ep.name));
        });
        const r = await postChat(p.url, ep.body(true), { path: ep.path });
        assert.equal(r.status, 200);
        const beforeContent = r.body.slice(0, r.body.search(/data: /));
        assert.match(beforeContent, /: ping\n\n/, `pings in ~640 ms of comments at a 100 ms interval: ${JSON.stringify(r.body.slice(0, 300))}`);
      });
    }
  });

  describe('Connection: close on streamed answers (item 10)', () => {
    for (const ep of ENDPOINTS) {
      it(`${ep.name}: the proxy closes the connection after the stream and does not announce keep-alive`, async () => {
        const p = await start();
        poe.handle((_req, res) => {
          sseHead(res);
          res.end(goodStream(ep.name));
        });
        const body = JSON.stringify(ep.body(true));
        const raw = await rawExchange(
          p.server.address!.port,
          (sock) =>
            sock.write(
              `POST ${ep.path} HTTP/1.1\r\nHost: 127.0.0.1:${p.server.address!.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
            ),
          10_000,
        );
        const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
        assert.match(head, /^http\/1.1 200/);
        assert.doesNotMatch(head, /connection: keep-alive/);
        assert.match(head, /connection: close/);
      });
    }

    it('without Connection: close the socket is kept for the next request (held)', async () => {
      const p = await start();
      poe.handle((_req, res) => {
        sseHead(res);
        res.end(goodStream('chat'));
      });
      const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
      const ports = new Set<number>();
      for (let i = 0; i < 2; i++) {
        const r = await rawRequest(p.url, {
          method: 'POST',
          body: JSON.stringify(chatBody(true)),
          headers: { 'content-type': 'application/json' },
          agent,
          onResponse: (res) => ports.add(res.socket.localPort!),
        });
        assert.equal(sseData(r.body).at(-1), '[DONE]');
      }
      agent.destroy();
      assert.equal(ports.size, 1, 'one socket served both');
    });
  });

  describe('implausible usage from Poe (beyond the list)', () => {
    const USAGES = [
      { name: 'negative', n: -1_000_000 },
      { name: 'absurdly large', n: 1e15 },
      { name: 'fractional', n: 12.5 },
    ];
    /** A JSON answer in each dialect reporting `n` input and output tokens. */
    function answerWithUsage(endpoint: string, n: number): unknown {
      if (endpoint === 'messages')
        return {
          id: 'm',
          type: 'message',
          role: 'assistant',
          content: [{ type: 'text', text: 'ok' }],
          usage: { input_tokens: n, output_tokens: n, cache_read_input_tokens: n },
        };
      if (endpoint === 'responses')
        return {
          id: 'r',
          object: 'response',
          output: [{ type: 'message', content: [{ type: 'output_text', text: 'ok' }] }],
          usage: { input_tokens: n, output_tokens: n },
        };
      return {
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: 'GPT-4.1',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: n, completion_tokens: n, total_tokens: 2 * n },
      };
    }

    for (const u of USAGES) {
      for (const ep of ENDPOINTS) {
        it(`${ep.name}: ${u.name} token counts are estimated, not booked`, async () => {
          const p = await start({ footer: false });
          poe.handle((_req, res) => {
            const text = JSON.stringify(answerWithUsage(ep.name, u.n));
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(text);
          });
          const r = await postChat(p.url, ep.body(false), { path: ep.path });
          assert.equal(r.status, 200, r.body);
          const [entry] = await ledgerEntries(p, 1);
          for (const [k, v] of [
            ['tokensIn', entry.tokensIn],
            ['tokensOut', entry.tokensOut],
            ['points', entry.points],
          ] as const) {
            assert.ok(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 1_000_000, `${k} = ${v}`);
          }
        });
      }
    }
  });
});
