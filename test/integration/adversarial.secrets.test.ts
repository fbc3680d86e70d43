/**
 * Adversarial review, secrets: whatever Poe sends back (an error event, an error body, a JSON answer)
 * and whatever the dialect, the Poe key never reaches a client, a log line or the ledger.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { consoleLogger } from '../../src/core/log';
import type { FakePoe } from '../support/fake/server';
import { startProxy, type TestProxy } from '../support/proxyHarness';
import { ledgerEntries, postChat } from '../support/rawClient';
import { chatBody, ENDPOINTS } from '../support/dialectRequests';
import { sseHead, startScriptedPoe, type ScriptedPoe } from '../support/scriptedPoe';

const POE_KEY = 'sk-poe-SECRET-0123456789abcdef';
const ACCESS_KEY = 'pp-local-SECRET-9876543210';

/** What a hostile Poe answers on each endpoint: a stream whose error event quotes the key. */
function errorEventQuotingKey(endpoint: string): string {
  const msg = `invalid key ${POE_KEY} (Authorization: Bearer ${POE_KEY})`;
  if (endpoint === 'messages') {
    return `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { usage: { input_tokens: 3, output_tokens: 0 } } })}\n\nevent: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message: msg } })}\n\n`;
  }
  if (endpoint === 'responses') {
    return `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', sequence_number: 0, response: {} })}\n\nevent: error\ndata: ${JSON.stringify({ type: 'error', sequence_number: 1, code: 'x', message: msg })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message: msg } })}\n\n`;
}

/** A JSON answer (200) that quotes the key somewhere in Poe's own text. */
function jsonQuotingKey(endpoint: string): unknown {
  const text = `your key is ${POE_KEY}`;
  if (endpoint === 'messages')
    return { id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'text', text }], usage: { input_tokens: 1, output_tokens: 1 } };
  if (endpoint === 'responses')
    return {
      id: 'resp_1',
      object: 'response',
      output: [{ type: 'message', content: [{ type: 'output_text', text }] }],
      usage: { input_tokens: 1, output_tokens: 1 },
    };
  return {
    id: 'c1',
    object: 'chat.completion',
    created: 1,
    model: 'GPT-4.1',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}

describe('adversarial: secrets on every path (item 1)', function () {
  let poe: ScriptedPoe;
  let proxy: TestProxy | undefined;
  const logLines: string[] = [];

  before(async () => {
    poe = await startScriptedPoe();
  });
  after(() => poe.close());
  beforeEach(async () => {
    logLines.length = 0;
    proxy = await startProxy(
      { url: poe.url } as FakePoe,
      { upstreamRetries: 0, accessKey: ACCESS_KEY },
      { apiKey: POE_KEY, logger: consoleLogger('debug', (l) => logLines.push(l)) },
    );
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const auth = { authorization: `Bearer ${ACCESS_KEY}` };

  /** The ledger files as raw text, after the request's entry was written. */
  async function ledgerText(): Promise<string> {
    await ledgerEntries(proxy!, 1);
    await proxy!.ledger.flush();
    return readdirSync(proxy!.dataDir)
      .filter((f) => f.includes('ledger'))
      .map((f) => readFileSync(path.join(proxy!.dataDir, f), 'utf8'))
      .join('\n');
  }

  function assertNoSecret(where: string, text: string): void {
    assert.ok(!text.includes(POE_KEY), `${where} carries the Poe key: ${text.slice(0, 400)}`);
    assert.ok(!text.includes(ACCESS_KEY), `${where} carries the access key`);
  }

  for (const ep of ENDPOINTS) {
    it(`${ep.name}, streamed: an error event quoting the key reaches neither client, ledger nor log`, async () => {
      poe.handle((_req, res) => {
        sseHead(res);
        res.end(errorEventQuotingKey(ep.name));
      });
      const r = await postChat(proxy!.url, ep.body(true), { path: ep.path, headers: auth });
      assert.equal(r.status, 200);
      assert.match(r.body, /\[redacted\]/, 'the error still reaches the client, redacted');
      assertNoSecret('the client stream', r.body);
      assertNoSecret('the ledger', await ledgerText());
      assertNoSecret('the log', logLines.join('\n'));
    });

    it(`${ep.name}, JSON: a 200 answer quoting the key is redacted`, async () => {
      poe.handle((_req, res) => {
        const text = JSON.stringify(jsonQuotingKey(ep.name));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
      const r = await postChat(proxy!.url, ep.body(false), { path: ep.path, headers: auth });
      assert.equal(r.status, 200, r.body);
      assertNoSecret('the client answer', r.body);
      assert.match(r.body, /\[redacted\]/);
      assertNoSecret('the ledger', await ledgerText());
    });

    it(`${ep.name}: an upstream error status whose body quotes the key (held before the review)`, async () => {
      poe.handle((_req, res) => {
        const text = JSON.stringify({ error: { message: `bad key ${POE_KEY}; access ${ACCESS_KEY}` } });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(text);
      });
      const r = await postChat(proxy!.url, ep.body(ep.name !== 'chat'), { path: ep.path, headers: auth });
      assert.equal(r.status, 401, r.body);
      assertNoSecret('the client error', r.body);
      assertNoSecret('the ledger', await ledgerText());
      assertNoSecret('the log', logLines.join('\n'));
    });
  }

  it("the key Poe receives is the Poe key, and never the client's access key (held)", async () => {
    poe.handle((_req, res) => {
      const text = JSON.stringify(jsonQuotingKey('chat'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    });
    await postChat(proxy!.url, chatBody(false), { headers: auth });
    const seen = poe.requests.at(-1)!;
    assert.equal(seen.headers.authorization, `Bearer ${POE_KEY}`);
    assert.ok(!JSON.stringify(seen.headers).includes(ACCESS_KEY));
  });
});
