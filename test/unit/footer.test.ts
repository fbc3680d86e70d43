import { strict as assert } from 'node:assert';
import {
  FOOTER_HEADER,
  FOOTER_MARK,
  footerApplies,
  formatPoints,
  renderFooter,
  stripFooters,
  stripFooterText,
  type FooterRequest,
} from '../../src/core/exchange/footer';

describe('footer', () => {
  const info = { promptTokens: 1200, completionTokens: 34, points: 450, pointsEstimated: true, balance: 1_234_567 };

  it('renders tokens, points with est. and balance', () => {
    const f = renderFooter(info);
    assert.match(f, /Tokens: 1,234 \(in 1,200 \/ out 34\)/);
    assert.match(f, /Points: 450 \(est\.\)/);
    assert.match(f, /Balance: 1,234,567(?!\d)/); // exact, so a user sees it move
    assert.ok(f.includes(FOOTER_MARK));
    assert.doesNotMatch(renderFooter({ ...info, pointsEstimated: false }), /est\./);
  });

  it('shows clipping and warnings', () => {
    const f = renderFooter({ ...info, clippedMessages: 3, truncatedMessages: 1, warnings: ['too expensive'] });
    assert.match(f, /Context clipped: 3 older messages dropped, 1 shortened/);
    assert.match(f, /⚠ too expensive/);
  });

  it('formats points compactly', () => {
    assert.equal(formatPoints(999), '999');
    assert.equal(formatPoints(12345), '12,345');
    assert.equal(formatPoints(2_000_000), '2M');
  });

  it('strips the footer from assistant history, string and parts, without mutating', () => {
    const answer = 'The answer is 42.';
    const withFooter = answer + renderFooter({ ...info, warnings: ['w'] });
    assert.equal(stripFooterText(withFooter), answer);
    const msgs = [
      { role: 'user', content: `quote: ${FOOTER_MARK} stays in user text` },
      { role: 'assistant', content: withFooter },
      { role: 'assistant', content: [{ type: 'text', text: withFooter }] },
    ];
    const out = stripFooters(msgs);
    assert.equal(out[0], msgs[0]);
    assert.equal(out[1].content, answer);
    assert.deepEqual(out[2].content, [{ type: 'text', text: answer }]);
    assert.equal(msgs[1].content, withFooter);
  });

  it('returns the same array when there is nothing to strip', () => {
    const msgs = [{ role: 'assistant', content: 'plain' }];
    assert.equal(stripFooters(msgs), msgs);
  });
});

describe('footerApplies', () => {
  const base: FooterRequest = { enabled: true, endpoint: 'chat', body: {}, headers: {}, modality: 'text' };

  it('allows the footer on a plain chat answer in prose', () => {
    assert.equal(footerApplies(base), true);
    assert.equal(footerApplies(base, { toolCalls: false }), true);
  });

  it('refuses it wherever a program reads the content', () => {
    assert.equal(footerApplies(base, { toolCalls: true }), false, 'tool-call turn');
    assert.equal(footerApplies({ ...base, enabled: false }), false, 'setting off');
    assert.equal(footerApplies({ ...base, endpoint: 'messages' }), false, '/v1/messages');
    assert.equal(footerApplies({ ...base, endpoint: 'responses' }), false, '/v1/responses');
    assert.equal(footerApplies({ ...base, modality: 'image' }), false, 'media answer');
    assert.equal(footerApplies({ ...base, body: { n: 2 } }), false, 'n > 1');
    assert.equal(footerApplies({ ...base, body: { response_format: { type: 'json_object' } } }), false, 'json_object');
    assert.equal(footerApplies({ ...base, body: { response_format: { type: 'json_schema', json_schema: {} } } }), false, 'json_schema');
    assert.equal(footerApplies({ ...base, inProcess: true, body: { tools: [{ type: 'function' }] } }), false, 'Copilot Chat with tools');
  });

  it('keeps it for text response_format, n = 1, HTTP clients with tools, and in-process requests without tools', () => {
    assert.equal(footerApplies({ ...base, body: { response_format: { type: 'text' }, n: 1 } }), true);
    assert.equal(footerApplies({ ...base, body: { tools: [{ type: 'function' }] } }), true);
    assert.equal(footerApplies({ ...base, inProcess: true, body: { tools: [] } }), true);
  });

  it('turns off per request with x-poe-proxy-footer: off (or false, 0, no; any case)', () => {
    for (const v of ['off', 'OFF', 'false', '0', 'no', [' off ']]) assert.equal(footerApplies({ ...base, headers: { [FOOTER_HEADER]: v } }), false, String(v));
    for (const v of ['on', 'true', '']) assert.equal(footerApplies({ ...base, headers: { [FOOTER_HEADER]: v } }), true, v);
  });
});
