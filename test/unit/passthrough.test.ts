/**
 * The pure parts of the Anthropic and Responses passthroughs: event alignment, the beta filter, the
 * Claude rule, error shapes, usage reading and the paused streams.
 */
import { strict as assert } from 'node:assert';
import { anthropicDialect, anthropicErrorBody, anthropicMessageStream, filterBetas, isClaudeModel } from '../../src/core/exchange/anthropic';
import { ProxyError } from '../../src/core/http/errors';
import { silentLogger } from '../../src/core/log';
import type { RelayState } from '../../src/core/exchange/passthrough';
import type { ModelEntry } from '../../src/core/store/registry';
import { EventAligner, wholeEventsLength } from '../../src/core/exchange/relay';
import { responsesDialect, responsesMessageStream } from '../../src/core/exchange/responses';
import { SseParser } from '../../src/core/poe/sse';

const model = (id: string): ModelEntry => ({ id, modality: 'text', base: 0, per1kTokens: 0, aliases: [] });
const fresh = (): RelayState => ({ text: '', completed: false });

function feed(dialect: typeof responsesDialect, stream: string): RelayState {
  const state = fresh();
  for (const ev of new SseParser().push(stream)) {
    const data = JSON.parse(ev.data);
    dialect.onEvent(data.type ?? ev.event, data, state);
  }
  return state;
}

describe('passthrough relay', () => {
  it('forwards only whole events, whatever the chunking, and loses no byte', () => {
    const text = 'event: a\ndata: {"x":1}\n\nevent: b\r\ndata: {"y":"é"}\r\n\r\ndata: last';
    const bytes = Buffer.from(text);
    for (const size of [1, 2, 3, 7, 13, bytes.length]) {
      const aligner = new EventAligner();
      const out: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) {
        const ready = aligner.push(bytes.subarray(i, i + size));
        if (ready) {
          assert.ok(/\n\r?\n$/.test(ready.toString('latin1')), `chunk size ${size}: a write ends on an event boundary`);
          out.push(ready);
        }
      }
      out.push(aligner.end()!);
      assert.equal(Buffer.concat(out).toString(), `${text}\n\n`, `chunk size ${size}`);
    }
    assert.equal(wholeEventsLength(Buffer.from('data: partial')), 0);
  });
});

describe('Anthropic dialect', () => {
  it('keeps only the anthropic-beta values on the allow-list', () => {
    assert.deepEqual(filterBetas(' claude-code-20250219 ,interleaved-thinking-2025-05-14,,oauth-2025-04-20'), {
      kept: ['interleaved-thinking-2025-05-14'],
      dropped: ['claude-code-20250219', 'oauth-2025-04-20'],
    });
    assert.deepEqual(filterBetas(['prompt-caching-2024-07-31', 'context-1m-2025-08-07']).kept, ['prompt-caching-2024-07-31', 'context-1m-2025-08-07']);
    assert.deepEqual(filterBetas(undefined), { kept: [], dropped: [] });
  });

  it('forwards anthropic-version (defaulted) and the filtered betas, nothing else', () => {
    const d = anthropicDialect(silentLogger);
    const headers = (h: Record<string, string>) => d.upstreamHeaders({ headers: h } as never);
    assert.deepEqual(headers({ 'anthropic-version': '2023-06-01', 'anthropic-beta': 'x-unknown', 'x-api-key': 'client' }), {
      'anthropic-version': '2023-06-01',
    });
    assert.deepEqual(headers({}), { 'anthropic-version': '2023-06-01' });
    assert.deepEqual(headers({ 'anthropic-version': '2024-01-01', 'anthropic-beta': 'output-128k-2025-02-19' }), {
      'anthropic-version': '2024-01-01',
      'anthropic-beta': 'output-128k-2025-02-19',
    });
  });

  it('serves Claude models only, with a hint for the others', () => {
    assert.equal(isClaudeModel(model('Claude-Sonnet-4.5')), true);
    assert.equal(isClaudeModel(model('claude-haiku-4.5')), true);
    assert.equal(isClaudeModel(model('GPT-4.1')), false);
    assert.throws(() => anthropicDialect(silentLogger).checkModel(model('Gemini-2.5-Pro')), /not a Claude model.*\/v1\/chat\/completions/);
  });

  it('renders errors in Anthropic shape with its error types', () => {
    const body = (status: number) => anthropicErrorBody(new ProxyError(status, 'msg', 'x'));
    assert.deepEqual(body(401), { type: 'error', error: { type: 'authentication_error', message: 'msg' } });
    assert.equal(body(404).error.type, 'not_found_error');
    assert.equal(body(429).error.type, 'rate_limit_error');
    assert.equal(body(502).error.type, 'api_error');
    assert.equal(body(529).error.type, 'overloaded_error');
  });

  it('reads usage (cached input included) and text from the stream', () => {
    const d = anthropicDialect(silentLogger);
    const stream =
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n' +
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n' +
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}\n\n' +
      'event: message_stop\ndata: {"type":"message_stop"}\n\n';
    assert.deepEqual(feed(d, stream), { text: 'Hi', completed: true, inputTokens: 15, outputTokens: 7 });
  });

  it('streams the paused message as a complete Anthropic event sequence', () => {
    const events = new SseParser().push(anthropicMessageStream('Claude-Sonnet-4.5', 'paused!'));
    assert.deepEqual(
      events.map((e) => e.event),
      ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.equal(JSON.parse(events[2].data).delta.text, 'paused!');
  });
});

describe('Responses dialect', () => {
  it('reads usage from response.completed and marks failures', () => {
    const ok = feed(
      responsesDialect,
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"delta":"Hel"}\n\n' +
        'event: response.completed\ndata: {"type":"response.completed","sequence_number":4,"response":{"usage":{"input_tokens":12,"output_tokens":3}}}\n\n',
    );
    assert.deepEqual(ok, { text: 'Hel', completed: true, inputTokens: 12, outputTokens: 3, lastSequence: 4 });
    const failed = feed(responsesDialect, 'data: {"type":"response.failed","response":{"error":{"message":"boom"}}}\n\n');
    assert.equal(failed.failed, 'boom');
  });

  it('continues the sequence numbers in an error event it adds', () => {
    const ev = responsesDialect.errorEvent(new ProxyError(502, 'broke', 'upstream_error', 'stream_interrupted'), { ...fresh(), lastSequence: 8 });
    const [parsed] = new SseParser().push(ev);
    assert.equal(parsed.event, 'error');
    assert.deepEqual(JSON.parse(parsed.data), { type: 'error', code: 'stream_interrupted', message: 'broke', param: null, sequence_number: 9 });
  });

  it('streams the paused message from response.created to response.completed, numbered in order', () => {
    const events = new SseParser().push(responsesMessageStream('GPT-4.1', 'paused!')).map((e) => JSON.parse(e.data));
    assert.equal(events[0].type, 'response.created');
    assert.equal(events.at(-1).type, 'response.completed');
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    assert.equal(events.find((e) => e.type === 'response.output_text.delta').delta, 'paused!');
  });
});
