/**
 * The real-client suite's own machinery (test/clients/): the sandbox ends what a client left
 * running, and the fake's scripted tool call fits the shell tool each client declares.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Sandbox } from '../clients/sandbox';
import { declaredTools, REPO_ROOT, shellArguments, toolResults, TOOL_COMMAND } from '../clients/stack';
import { commandArgs, exportsOf, readmeBlock } from '../clients/readme';

/** Running (a zombie waiting for a reaper that may not exist in a container counts as ended). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('real-client suite machinery', () => {
  it('a sandbox ends a daemon its client started in a session of its own, and removes its files', async function () {
    this.timeout(10_000);
    const sb = new Sandbox('unit');
    // setsid: the daemon leaves the client's process group, as Cline's hub does; the client exits at once.
    const r = await sb.run('/bin/sh', ['-c', 'setsid sleep 60 > /dev/null 2>&1 < /dev/null & echo $!'], { env: sb.env(), timeoutMs: 5000 });
    const daemon = Number(r.stdout.trim());
    assert.ok(daemon > 0 && alive(daemon), 'the daemon outlived its parent');
    assert.deepEqual(sb.processes(), [daemon]);
    assert.deepEqual(await sb.cleanup(), [daemon]);
    assert.equal(alive(daemon), false);
    assert.equal(existsSync(sb.root), false);
  });

  it("the sandbox's environment has the throwaway HOME and none of the developer's keys", () => {
    const sb = new Sandbox('unit-env');
    try {
      process.env.OPENAI_API_KEY_FOR_TEST = 'secret';
      const env = sb.env({ EXTRA: '1', HOME_OVERRIDE: undefined });
      assert.equal(env.HOME, sb.home);
      assert.equal(env.EXTRA, '1');
      assert.equal(env.OPENAI_API_KEY_FOR_TEST, undefined);
      assert.equal(env.DISABLE_TELEMETRY, '1');
    } finally {
      delete process.env.OPENAI_API_KEY_FOR_TEST;
      void sb.cleanup();
    }
  });

  it('builds shell-tool arguments from the schema each client declares', () => {
    // Claude Code's Bash, Codex's exec_command, Qwen's run_shell_command, Cline's run_commands, a legacy argv shell
    assert.deepEqual(shellArguments({ type: 'object', properties: { command: { type: 'string' }, timeout: { type: 'number' } }, required: ['command'] }), {
      command: TOOL_COMMAND,
    });
    assert.deepEqual(shellArguments({ properties: { cmd: { type: 'string' }, yield_time_ms: { type: 'number' } }, required: ['cmd'] }), { cmd: TOOL_COMMAND });
    assert.deepEqual(
      shellArguments({
        properties: { command: { type: 'string' }, is_background: { type: 'boolean' }, description: { type: 'string' } },
        required: ['command', 'is_background', 'description'],
      }),
      {
        command: TOOL_COMMAND,
        is_background: false,
        description: 'Print a marker',
      },
    );
    assert.deepEqual(shellArguments({ properties: { commands: { type: 'array', items: { type: 'string' } } }, required: ['commands'] }), {
      commands: [TOOL_COMMAND],
    });
    assert.deepEqual(shellArguments({ properties: { command: { type: 'array', items: { type: 'string' } } } }), { command: ['bash', '-lc', TOOL_COMMAND] });
  });

  it('finds declared tools and tool results in all three dialects', () => {
    assert.deepEqual(
      declaredTools({
        tools: [{ type: 'function', function: { name: 'bash', parameters: { a: 1 } } }, { name: 'Bash', input_schema: { b: 2 } }, { type: 'web_search' }],
      }),
      [
        { name: 'bash', schema: { a: 1 } },
        { name: 'Bash', schema: { b: 2 } },
      ],
    );
    assert.deepEqual(
      toolResults({
        messages: [
          { role: 'tool', content: 'chat' },
          { role: 'user', content: [{ type: 'tool_result', content: [{ type: 'text', text: 'anthropic' }] }] },
        ],
        input: [{ type: 'function_call_output', output: 'responses' }],
      }),
      ['chat', 'anthropic', 'responses'],
    );
  });

  it("reads the clients' setups from the README's own blocks, pointed at the test proxy", () => {
    const url = 'http://127.0.0.1:1234';
    const claude = exportsOf(readmeBlock(REPO_ROOT, 'Claude Code', url, 'bash'));
    assert.equal(claude.ANTHROPIC_BASE_URL, url);
    assert.ok(claude.ANTHROPIC_AUTH_TOKEN);
    assert.match(readmeBlock(REPO_ROOT, 'Codex CLI', url, 'toml'), new RegExp(`base_url = "${url}/v1"`));
    assert.deepEqual(exportsOf('export A=1   # note\nexport B="two"\nunset C\n'), { A: '1', B: 'two' });
    assert.deepEqual(commandArgs('cline auth -p openai -k "a b" -b x\ncline "go"\n', 'cline'), ['auth', '-p', 'openai', '-k', 'a b', '-b', 'x']);
    assert.throws(() => readmeBlock(REPO_ROOT, 'No Such Client', url), /no paragraph/);
  });
});
