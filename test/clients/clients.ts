/**
 * The cases of the real-client suite: per client, how a user configures it (the README's section
 * "Using it from your editor tools", or a Configure command's files), how it runs one prompt
 * headless, and what must come out: what the fake Poe received and what the client printed.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RunResult, Sandbox } from './sandbox';
import { ANSWER, declaredTools, generations, REPO_ROOT, script, TOOL_DONE, TOOL_OUTPUT, toolResults, type Stack } from './stack';
import type { RecordedRequest } from '../support/fake/server';
import { applyPlan, planClientFromDisk, type ClientId, type ClientModel } from '../../src/vscode/clientConfig';
import type { ConfigOverrides } from '../../src/core/store/config';
import { ModelRegistry } from '../../src/core/store/registry';
import { commandArgs, exportsOf, readmeBlock } from './readme';

/** One client as scripts/clients/install.mjs describes it. */
export interface InstalledClient {
  version: string;
  /** npm specs, name@version. */
  packages: string[];
  prefix: string;
  nodeModules: string;
  bin?: string;
}

export interface CaseContext {
  sandbox: Sandbox;
  stack: Stack;
  installed: InstalledClient;
  /** Lines shown with a failure (the client's output, what was written where). */
  log: string[];
  /** Set by a configuration's setup: the poe_name the fake must see on the main turn. */
  expectModel?: string;
}

export const SCENARIOS = ['prompt', 'stream', 'tool', 'structured', 'json mode', 'wrong key'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** Extra cases besides the scenarios: an error the client must not retry. */

export interface Case {
  /** Key in the install (scripts/clients/install.mjs CLIENTS). */
  install: string;
  name: string;
  endpoint: string;
  /** The npm package whose version the matrix shows (default: the install's first package). */
  package?: string;
  /** 'README' or the configure command it uses. */
  config: string;
  scenario: Scenario;
  /** Why this case cannot run (it is reported as skipped). */
  skip?: string;
  /** Proxy settings of this case (default: the defaults a user gets). */
  proxy?: ConfigOverrides;
  run(ctx: CaseContext): Promise<void>;
}

// ── shared assertions ──

/** Runs a client and keeps its output for the failure message. */
export async function runClient(
  ctx: CaseContext,
  cmd: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  opts: { timeoutMs?: number; stdin?: string; cwd?: string } = {},
): Promise<RunResult> {
  const r = await ctx.sandbox.run(cmd, args, { env: ctx.sandbox.env(env), timeoutMs: opts.timeoutMs ?? 120_000, stdin: opts.stdin, cwd: opts.cwd });
  ctx.log.push(`$ ${path.basename(cmd)} ${args.join(' ')} → exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ' TIMED OUT' : ''} in ${r.ms} ms`);
  ctx.log.push(`stdout: ${tail(r.stdout)}`, `stderr: ${tail(r.stderr)}`);
  return r;
}

function tail(s: string, n = 1500): string {
  const t = s.trim();
  return (t.length > n ? '…' + t.slice(-n) : t).replace(/\n/g, '\n      ');
}

/** The generation requests on `endpoint`; at least one, and every one answered 200. */
export function requestsOn(stack: Stack, endpoint: string): RecordedRequest[] {
  const all = generations(stack.fake);
  const refused = all.filter((r) => r.status !== 200);
  assert.deepEqual(
    refused.map((r) => `${r.path} ${r.status}`),
    [],
    'the fake (modelling Poe) refused none of the requests the proxy forwarded',
  );
  const on = all.filter((r) => r.path === endpoint);
  assert.ok(on.length > 0, `the fake got a request on ${endpoint}`);
  return on;
}

/** Exit 0 and `text` in the output. */
export function printed(r: RunResult, text: string): void {
  assert.ok(!r.timedOut, 'the client finished in time');
  assert.ok(r.stdout.includes(text) || r.stderr.includes(text), `the client printed ${JSON.stringify(text)}`);
  assert.equal(r.code, 0, 'the client exited with 0');
}

/** The tool turn: a request declared `tool`, a later one carried its result with TOOL_OUTPUT in it. */
export function toolRoundTrip(stack: Stack, endpoint: string, shellTools: readonly string[]): void {
  const on = requestsOn(stack, endpoint);
  const declared = on.find((r) => declaredTools(r.body).some((t) => shellTools.includes(t.name)));
  assert.ok(
    declared,
    `a request declared one of ${shellTools.join(', ')} (declared: ${[...new Set(on.flatMap((r) => declaredTools(r.body).map((t) => t.name)))].join(', ')})`,
  );
  const results = on.flatMap((r) => toolResults(r.body));
  assert.ok(
    results.some((t) => t.includes(TOOL_OUTPUT)),
    `a follow-up request carried the tool's output ${TOOL_OUTPUT} (tool results seen: ${JSON.stringify(results).slice(0, 300)})`,
  );
}

// ── the libraries (a program each, run with the system Node) ──

function libraryCase(install: string, name: string, program: string, scenario: Scenario, check: (result: any, stack: Stack) => void): Case {
  return {
    install,
    name,
    package: program === 'langchain.mjs' ? '@langchain/openai' : 'ai',
    endpoint: '/v1/chat/completions',
    config: 'README',
    scenario,
    async run(ctx) {
      script(ctx.stack.fake, scenario === 'tool' ? 'tool' : 'answer', ['bash'], { jsonObject: PERSON });
      const r = await runClient(ctx, process.execPath, [path.join(REPO_ROOT, 'test', 'clients', 'programs', program)], {
        CLIENT_MODULES: ctx.installed.nodeModules,
        BASE_URL: `${ctx.stack.url}/v1`,
        MODEL: 'GPT-4.1',
        SCENARIO: scenario,
      });
      assert.equal(r.code, 0, 'the program exited with 0');
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, 'the program printed its RESULT line');
      check(JSON.parse(line.slice('RESULT '.length)), ctx.stack);
    },
  };
}

const PERSON = { name: 'x', age: 1, tags: ['x'] };

function libraryCases(install: string, name: string, program: string, extra: Array<[Scenario, (result: any, stack: Stack) => void]> = []): Case[] {
  const endpoint = '/v1/chat/completions';
  return [
    libraryCase(install, name, program, 'prompt', (res, stack) => {
      assert.ok(res.text.startsWith(ANSWER), `the answer starts with ${ANSWER} (the proxy's footer may follow): ${res.text}`);
      assert.notEqual(requestsOn(stack, endpoint)[0].body.stream, true);
    }),
    libraryCase(install, name, program, 'stream', (res, stack) => {
      assert.ok(res.text.startsWith(ANSWER), `the answer starts with ${ANSWER}: ${res.text}`);
      assert.ok(res.parts > 1, 'the answer arrived in pieces');
      const req = requestsOn(stack, endpoint)[0];
      assert.equal(req.body.stream, true);
    }),
    libraryCase(install, name, program, 'tool', (res, stack) => {
      toolRoundTrip(stack, endpoint, ['bash']);
      assert.ok(res.text.startsWith(TOOL_DONE), `the final answer starts with ${TOOL_DONE}: ${res.text}`);
    }),
    libraryCase(install, name, program, 'structured', (res, stack) => {
      const reqs = requestsOn(stack, endpoint);
      assert.ok(
        reqs.every((r) => r.body.response_format?.type === 'json_schema'),
        'the library asked for a JSON schema',
      );
      for (const v of Object.values(res)) assert.deepEqual(v, PERSON);
    }),
    ...extra.map(([scenario, check]) => libraryCase(install, name, program, scenario, check)),
  ];
}

// ── the command-line clients ──

/** How one configuration of a CLI client is set up: files written into the sandbox, and the environment. */
export interface CliConfig {
  config: string;
  /** The model the fake must see on the main turn (a registry poe_name), or undefined to check nothing. */
  model?: string;
  setup(ctx: CaseContext): Promise<Record<string, string | undefined>> | Record<string, string | undefined>;
  /** The endpoint this configuration makes the client use, when not the client's usual one. */
  endpoint?: string;
  /** Only these scenarios (default: all the client has). */
  scenarios?: Scenario[];
}

export interface CliSpec {
  install: string;
  name: string;
  endpoint: string;
  /** Names of the client's own shell tool, as it declares it. */
  shellTools: string[];
  /** The client streams its turns (asserted on the prompt case). */
  streams: boolean;
  /** Arguments that run one prompt headless; `tool` says the run must be allowed to run the shell tool. */
  args(prompt: string, scenario: Scenario, ctx: CaseContext): string[];
  configs: CliConfig[];
  /** Output that must not appear (a warning the configuration should avoid). */
  mustNotPrint?: RegExp;
  skip?: string;
  timeoutMs?: number;
}

export const PROMPT = 'Say something short.';
export const TOOL_PROMPT = 'Run the marker command in the shell.';

function cliCases(spec: CliSpec): Case[] {
  const out: Case[] = [];
  for (const cfg of spec.configs) {
    for (const scenario of cfg.scenarios ?? (['prompt', 'tool'] as Scenario[])) {
      const endpoint = cfg.endpoint ?? spec.endpoint;
      out.push({
        install: spec.install,
        name: spec.name,
        endpoint,
        config: cfg.config,
        scenario,
        skip: spec.skip,
        async run(ctx) {
          script(ctx.stack.fake, scenario === 'tool' ? 'tool' : 'answer', spec.shellTools);
          const env = await cfg.setup(ctx);
          assert.ok(ctx.installed.bin, `${spec.install} has an executable`);
          const r = await runClient(ctx, ctx.installed.bin, spec.args(scenario === 'tool' ? TOOL_PROMPT : PROMPT, scenario, ctx), env, {
            timeoutMs: spec.timeoutMs,
          });
          if (scenario === 'tool') {
            toolRoundTrip(ctx.stack, endpoint, spec.shellTools);
            printed(r, TOOL_DONE);
            return;
          }
          const reqs = requestsOn(ctx.stack, endpoint);
          const model = cfg.model ?? ctx.expectModel;
          if (model)
            assert.ok(
              reqs.some((q) => q.body.model === model),
              `the fake got ${model} (got ${[...new Set(reqs.map((q) => q.body.model))].join(', ')})`,
            );
          if (spec.streams)
            assert.ok(
              reqs.some((q) => q.body.stream === true),
              'the client streamed',
            );
          printed(r, ANSWER);
          if (spec.mustNotPrint) assert.doesNotMatch(r.stdout + r.stderr, spec.mustNotPrint, 'the client printed no warning about its configuration');
        },
      });
    }
  }
  return out;
}

const BUNDLED_REGISTRY = ModelRegistry.parse(readFileSync(path.join(REPO_ROOT, 'models.yaml'), 'utf8'), 'models.yaml');

/** The text models as the Configure commands offer them (src/vscode/clientConfigCommands.ts textModels). */
export function registryClientModels(registry = BUNDLED_REGISTRY): ClientModel[] {
  return registry.models
    .filter((m) => m.modality === 'text')
    .map((m) => ({
      id: m.id,
      contextLength: registry.contextLimit(m, 0),
      maxOutputTokens: m.maxOutputTokens,
      base: m.base,
      per1kTokens: m.per1kTokens,
      tools: m.tools,
    }));
}

/** Writes what "Poe: Configure <client>" writes, into the sandbox's HOME, with the command's defaults. */
export async function configureCommand(ctx: CaseContext, client: ClientId): Promise<void> {
  const plan = await planClientFromDisk(client, { home: ctx.sandbox.home, proxyUrl: ctx.stack.url, models: registryClientModels() });
  await applyPlan(plan, path.join(ctx.sandbox.root, 'backups'));
  for (const e of plan.edits) ctx.log.push(`configure ${client} wrote ${e.path}:\n      ${e.after.trim().split('\n').slice(0, 16).join('\n      ')}`);
}

/** The environment a README section's `export` lines set (the proxy URL pointed at this case's proxy). */
function readmeExports(ctx: CaseContext, client: string): Record<string, string> {
  const env = exportsOf(readmeBlock(REPO_ROOT, client, ctx.stack.url, 'bash'));
  ctx.log.push(`README ${client} env: ${JSON.stringify(env)}`);
  return env;
}

const CLAUDE_CODE: CliSpec = {
  install: 'claude-code',
  name: 'Claude Code',
  endpoint: '/v1/messages',
  shellTools: ['Bash'],
  streams: true,
  args: (prompt, scenario) => ['-p', prompt, ...(scenario === 'tool' ? ['--allowedTools', 'Bash'] : [])],
  // Claude Code warns about a retired model by its id (e.g. Claude-Sonnet-4.5).
  mustNotPrint: /\bretired\b/i,
  configs: [
    {
      // README "Claude Code": its exports, optional model lines included.
      config: 'README',
      setup: (ctx) => {
        const env = readmeExports(ctx, 'Claude Code');
        ctx.expectModel = BUNDLED_REGISTRY.resolve(env.ANTHROPIC_MODEL)?.id;
        return env;
      },
    },
    {
      // The same without the optional model lines: Claude Code asks for its own default ids.
      config: 'README, defaults',
      setup: (ctx) => {
        const env = readmeExports(ctx, 'Claude Code');
        return { ANTHROPIC_BASE_URL: env.ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN: env.ANTHROPIC_AUTH_TOKEN };
      },
      scenarios: ['prompt'],
    },
    {
      // Haiku: Claude Code puts system messages inside `messages` for it.
      config: 'README, Haiku',
      model: 'Claude-Haiku-4.5',
      setup: (ctx) => {
        const env = readmeExports(ctx, 'Claude Code');
        return { ANTHROPIC_BASE_URL: env.ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN: env.ANTHROPIC_AUTH_TOKEN, ANTHROPIC_MODEL: 'Claude-Haiku-4.5' };
      },
      scenarios: ['prompt'],
    },
    {
      config: 'Configure Claude Code',
      async setup(ctx) {
        await configureCommand(ctx, 'claude-code');
        // The command writes the model Claude Code asks for; the proxy must map it to a registry entry.
        const env = JSON.parse(readFileSync(path.join(ctx.sandbox.home, '.claude', 'settings.json'), 'utf8')).env ?? {};
        assert.ok(env.ANTHROPIC_MODEL, 'Configure Claude Code wrote ANTHROPIC_MODEL');
        ctx.expectModel = BUNDLED_REGISTRY.resolve(env.ANTHROPIC_MODEL)?.id;
        assert.ok(ctx.expectModel, `the registry resolves ${env.ANTHROPIC_MODEL}`);
        return {};
      },
    },
  ],
};

const CODEX: CliSpec = {
  install: 'codex',
  name: 'Codex CLI',
  endpoint: '/v1/responses',
  shellTools: ['exec_command', 'shell', 'shell_command'],
  streams: true,
  args: (prompt, scenario) => ['exec', '--skip-git-repo-check', ...(scenario === 'tool' ? ['--dangerously-bypass-approvals-and-sandbox'] : []), prompt],
  configs: [
    {
      // README "Codex CLI": ~/.codex/config.toml as printed there.
      config: 'README',
      setup(ctx) {
        writeFile(path.join(ctx.sandbox.home, '.codex', 'config.toml'), readmeBlock(REPO_ROOT, 'Codex CLI', ctx.stack.url, 'toml'));
        return {};
      },
    },
    {
      config: 'Configure Codex',
      async setup(ctx) {
        await configureCommand(ctx, 'codex');
        return {};
      },
    },
  ],
};

/** opencode and Kilo Code CLI (a fork of opencode) read the same provider block (README "opencode"). */
function opencodeConfig(ctx: CaseContext, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...JSON.parse(readmeBlock(REPO_ROOT, 'opencode', ctx.stack.url, 'json')), ...extra }, null, 2);
}

/** The model of README's `opencode run -m poe/<model>` line. */
function opencodeModel(): string {
  const m = /`(?:opencode|kilo) run -m (\S+) /.exec(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'));
  if (!m) throw new Error('README has no `opencode run -m …` line');
  return m[1];
}

const OPENCODE: CliSpec = {
  install: 'opencode',
  name: 'opencode',
  endpoint: '/v1/chat/completions',
  shellTools: ['bash'],
  streams: true,
  args: (prompt) => ['run', '-m', opencodeModel(), prompt],
  configs: [
    {
      // README "opencode": ~/.config/opencode/opencode.json.
      config: 'README',
      setup(ctx) {
        writeFile(path.join(ctx.sandbox.xdg.config, 'opencode', 'opencode.json'), opencodeConfig(ctx));
        return {};
      },
    },
  ],
};

const CONTINUE: CliSpec = {
  install: 'continue',
  name: 'Continue CLI',
  endpoint: '/v1/chat/completions',
  shellTools: ['Bash'],
  streams: true,
  args: (prompt, scenario, ctx) => [
    '--config',
    path.join(ctx.sandbox.home, '.continue', 'config.yaml'),
    '-p',
    prompt,
    ...(scenario === 'tool' ? ['--allow', 'Bash'] : []),
  ],
  configs: [
    {
      // README "Continue": ~/.continue/config.yaml exactly as printed there.
      config: 'README',
      setup(ctx) {
        writeFile(path.join(ctx.sandbox.home, '.continue', 'config.yaml'), readmeBlock(REPO_ROOT, 'Continue', ctx.stack.url, 'yaml'));
        return { CONTINUE_GLOBAL_DIR: path.join(ctx.sandbox.home, '.continue') };
      },
    },
    {
      // The command lists every text model, GPT-5 first; Continue talks to GPT-5 over the Responses API.
      config: 'Configure Continue',
      endpoint: '/v1/responses',
      async setup(ctx) {
        await configureCommand(ctx, 'continue');
        return { CONTINUE_GLOBAL_DIR: path.join(ctx.sandbox.home, '.continue') };
      },
    },
  ],
};

const QWEN: CliSpec = {
  install: 'qwen',
  name: 'Qwen Code',
  endpoint: '/v1/chat/completions',
  shellTools: ['run_shell_command'],
  streams: true,
  args: (prompt, scenario) => [...(scenario === 'tool' ? ['--yolo'] : []), prompt],
  configs: [
    {
      // README "Qwen Code": three environment variables.
      config: 'README',
      // Qwen Code sends even loopback requests through HTTP(S)_PROXY (it ignores NO_PROXY): without the sandbox's dead proxy.
      setup: (ctx) => ({
        ...readmeExports(ctx, 'Qwen Code'),
        ...Object.fromEntries(['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'].map((k) => [k, undefined])),
      }),
    },
  ],
};

const KILO: CliSpec = {
  install: 'kilo',
  name: 'Kilo Code CLI',
  endpoint: '/v1/chat/completions',
  shellTools: ['bash'],
  streams: true,
  // Kilo starts slowly (database migrations, its own provider's model list, which fails offline).
  timeoutMs: 180_000,
  args: (prompt) => ['run', '-m', opencodeModel(), prompt],
  configs: [
    {
      // README "opencode / Kilo Code CLI": the same block in ~/.config/kilo/kilo.json, with the enabled_providers the README adds for Kilo.
      config: 'README',
      setup(ctx) {
        writeFile(path.join(ctx.sandbox.xdg.config, 'kilo', 'kilo.json'), opencodeConfig(ctx, { enabled_providers: ['poe'] }));
        return {};
      },
    },
  ],
};

const CLINE: CliSpec = {
  install: 'cline',
  name: 'Cline CLI',
  endpoint: '/v1/chat/completions',
  shellTools: ['run_commands', 'execute_command'],
  streams: true,
  args: (prompt) => [prompt],
  configs: [
    {
      // README "Cline": `cline auth` with the OpenAI-compatible provider, then a prompt (act mode, tools auto-approved).
      config: 'README',
      async setup(ctx) {
        const r = await runClient(ctx, ctx.installed.bin!, commandArgs(readmeBlock(REPO_ROOT, 'Cline', ctx.stack.url, 'bash'), 'cline'));
        assert.equal(r.code, 0, 'cline auth succeeded');
        return {};
      },
    },
  ],
};

/**
 * Claude Code with a wrong local access key: the proxy's 401 says `x-should-retry: false`, so Claude
 * Code gives up after one request (without it, it retried ~10 times and printed nothing for 40 s).
 */
const CLAUDE_CODE_WRONG_KEY: Case = {
  install: 'claude-code',
  name: 'Claude Code',
  endpoint: '/v1/messages',
  config: 'README',
  scenario: 'wrong key',
  proxy: { accessKey: 'the-right-access-key' },
  async run(ctx) {
    script(ctx.stack.fake, 'answer');
    const env = { ...readmeExports(ctx, 'Claude Code'), ANTHROPIC_AUTH_TOKEN: 'a-wrong-key' };
    // Retrying, Claude Code would back off for minutes: 60 s is plenty for one refused request.
    const r = await runClient(ctx, ctx.installed.bin!, ['-p', PROMPT], env, { timeoutMs: 60_000 });
    const posts = ctx.stack.seen.filter((q) => q.method === 'POST' && q.path.startsWith('/v1/messages'));
    assert.deepEqual(
      posts.map((q) => q.status),
      [401],
      'one request, answered 401, and no retry',
    );
    assert.notEqual(r.code, 0, 'Claude Code exits with an error');
    // Claude Code's words for a 401: "Not logged in · Please run /login".
    assert.match(r.stdout + r.stderr, /401|access key|authenticat|not logged in/i, 'Claude Code reports the refusal');
    assert.equal(generations(ctx.stack.fake).length, 0, 'nothing reached Poe');
  },
};

export const CASES: Case[] = [
  CLAUDE_CODE_WRONG_KEY,
  ...cliCases(CLAUDE_CODE),
  ...cliCases(CODEX),
  ...cliCases(OPENCODE),
  ...cliCases(CONTINUE),
  ...cliCases(QWEN),
  ...cliCases(CLINE),
  ...cliCases(KILO),
  ...libraryCases('libs', 'Vercel AI SDK', 'ai-sdk.mjs'),
  ...libraryCases('libs', 'LangChain.js', 'langchain.mjs', [
    [
      'json mode',
      (res, stack) => {
        assert.ok(
          requestsOn(stack, '/v1/chat/completions').every((r) => r.body.response_format?.type === 'json_object'),
          'LangChain asked for JSON mode',
        );
        assert.equal(typeof res.jsonMode, 'object', 'LangChain parsed the JSON answer');
      },
    ],
  ]),
];

/** Writes a file under the sandbox, creating its folder. */
export function writeFile(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}
