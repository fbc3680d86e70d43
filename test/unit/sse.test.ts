import { strict as assert } from 'node:assert';
import { SseParser } from '../../src/core/poe/sse';

describe('SseParser', () => {
  it('parses events split at every byte boundary, with CRLF and comments', () => {
    const text = ': ping\r\n\r\ndata: {"a":1}\r\n\r\nevent: done\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';
    const bytes = Buffer.from(text);
    const p = new SseParser();
    const events = [];
    for (let i = 0; i < bytes.length; i++) events.push(...p.push(bytes.subarray(i, i + 1)));
    events.push(...p.end());
    assert.deepEqual(events, [
      { event: undefined, data: '{"a":1}' },
      { event: 'done', data: 'line1\nline2' },
      { event: undefined, data: '[DONE]' },
    ]);
  });

  it('keeps multi-byte UTF-8 characters split across chunks intact', () => {
    const bytes = Buffer.from('data: {"t":"héllo 🌍 世界"}\n\n');
    const p = new SseParser();
    const events = [];
    for (let i = 0; i < bytes.length; i += 3) events.push(...p.push(bytes.subarray(i, i + 3)));
    assert.equal(JSON.parse(events[0].data).t, 'héllo 🌍 世界');
  });

  it('flushes a last event without a trailing blank line', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data: x'), []);
    assert.deepEqual(p.end(), [{ event: undefined, data: 'x' }]);
  });
});
