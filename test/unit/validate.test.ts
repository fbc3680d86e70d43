import { strict as assert } from 'node:assert';
import { ProxyError } from '../../src/core/http/errors';
import { validateChatRequest } from '../../src/core/exchange/validate';

function rejects(body: unknown, param: string | null, message: RegExp): void {
  assert.throws(
    () => validateChatRequest(body),
    (e: unknown) => e instanceof ProxyError && e.status === 400 && e.param === param && message.test(e.message),
  );
}

describe('validateChatRequest', () => {
  const ok = { model: 'GPT-4.1', messages: [{ role: 'user', content: 'hi' }] };
  it('accepts a minimal request and unknown fields', () => {
    assert.equal(validateChatRequest({ ...ok, extra_field: 1 }).model, 'GPT-4.1');
  });
  it('names the field that is wrong', () => {
    rejects([], null, /JSON object/);
    rejects({ messages: ok.messages }, 'model', /Missing "model"/);
    rejects({ ...ok, model: 3 }, 'model', /non-empty string, got number/);
    rejects({ ...ok, messages: 'hi' }, 'messages', /array, got string/);
    rejects({ ...ok, messages: [] }, 'messages', /at least one/);
    rejects({ ...ok, messages: [{ content: 'x' }] }, 'messages[0].role', /role must be a string/);
    rejects({ ...ok, messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /string or an array/);
    rejects({ ...ok, messages: [{ role: 'user', content: [1] }] }, 'messages[0].content[0]', /"type"/);
    rejects({ ...ok, stream: 'yes' }, 'stream', /boolean, got string/);
    rejects({ ...ok, max_tokens: 1.5 }, 'max_tokens', /integer/);
    rejects({ ...ok, max_tokens: 0 }, 'max_tokens', /at least 1/);
    rejects({ ...ok, temperature: 'hot' }, 'temperature', /number/);
    rejects({ ...ok, tools: {} }, 'tools', /array, got object/);
  });
  it('treats null optional fields as absent', () => {
    assert.doesNotThrow(() => validateChatRequest({ ...ok, max_tokens: null, stop: null }));
  });
});
