import * as assert from 'node:assert/strict';
import { clientName, MAX_CLIENT_CHARS } from '../../src/core/clientName';

describe('clientName', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'user-agent': 'claude-cli/2.0.14 (external, cli)' }, 'Claude Code'],
    [{ 'user-agent': 'codex_cli_rs/0.46.0 (Ubuntu 24.4.0; x86_64) xterm-256color', originator: 'codex_cli_rs' }, 'Codex'],
    [{ 'user-agent': 'opencode/0.15.3 ai-sdk/openai-compatible/1.0.19' }, 'opencode'],
    [{ 'user-agent': 'QwenCode/0.0.14 (linux; x64)' }, 'Qwen Code'],
    [{ 'user-agent': 'OpenAI/JS 5.12.0', 'x-title': 'Cline', 'http-referer': 'https://cline.bot' }, 'Cline'],
    [{ 'user-agent': 'OpenAI/JS 5.12.0', 'x-title': 'Roo Code', 'http-referer': 'https://github.com/RooVetGit/Roo-Cline' }, 'Roo Code'],
    [{ 'user-agent': 'OpenAI/JS 5.12.0', 'x-title': 'Kilo Code', 'http-referer': 'https://kilocode.ai' }, 'Kilo Code'],
    [{ 'user-agent': 'OpenAI/Python 1.99.1', 'x-title': 'Aider', 'http-referer': 'https://aider.chat' }, 'Aider'],
    [{ 'user-agent': 'Continue/1.2.3' }, 'Continue'],
    [{ 'user-agent': 'ai-sdk/openai-compatible/1.0.19 runtime/node.js/22' }, 'AI SDK'],
    [{ 'user-agent': 'langchainjs-openai/0.6.0 OpenAI/JS 5.0.0' }, 'LangChain'],
    [{ 'user-agent': 'OpenAI/JS 5.12.0' }, 'OpenAI SDK (JS)'],
    [{ 'user-agent': 'OpenAI/Python 1.99.1' }, 'OpenAI SDK (Python)'],
    [{ 'user-agent': 'Anthropic/JS 0.60.0' }, 'Anthropic SDK'],
    [{ 'user-agent': 'curl/8.5.0' }, 'curl/8.5.0'],
    [{}, 'unknown'],
  ];
  for (const [headers, name] of cases) {
    it(`${JSON.stringify(headers)} → ${name}`, () => assert.equal(clientName(headers), name));
  }

  it('caps an unknown agent and strips control characters', () => {
    const got = clientName({ 'user-agent': `my\u0007tool/${'x'.repeat(10_000)}` });
    assert.equal(got.length, MAX_CLIENT_CHARS);
    assert.ok(got.startsWith('my tool/'));
    assert.ok(got.endsWith('…'));
  });
});
