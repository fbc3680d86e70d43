import { strict as assert } from 'node:assert';
import { promises as fsp, mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ModelRegistry } from '../../src/core/store/registry';
import {
  aiderMetadata,
  applyPlan,
  CLIENT_IDS,
  clientFiles,
  CODEX_ENV_KEY,
  listChanges,
  mergeCodexToml,
  PLACEHOLDER_KEY,
  planClient,
  proposeClaudeCodeModels,
  planClientFromDisk,
  planIsNoop,
  planRepoint,
  undoChange,
  USD_PER_POINT,
  type ClientModel,
  type PlanOptions,
} from '../../src/vscode/clientConfig';

const MODELS: ClientModel[] = [
  { id: 'Small-Bot', contextLength: 4000, base: 5, per1kTokens: 1 },
  { id: 'GPT-4.1', contextLength: 200000, maxOutputTokens: 32768, base: 226, per1kTokens: 60, tools: true },
];

describe('client configuration planners', () => {
  let home: string;
  let backups: string;
  let opts: PlanOptions;

  beforeEach(() => {
    home = mkdtempSync(path.join(os.tmpdir(), 'poe-home-'));
    backups = path.join(home, '.backups');
    opts = { home, proxyUrl: 'http://127.0.0.1:9876', models: MODELS };
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  async function write(rel: string, text: string): Promise<string> {
    const p = path.join(home, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, text);
    return p;
  }

  describe('Claude Code (~/.claude/settings.json)', () => {
    it('creates the file with the base URL (proxy root) and a placeholder token when no access key is required', () => {
      const p = planClient('claude-code', opts, {});
      assert.equal(p.edits.length, 1);
      assert.equal(p.edits[0].path, path.join(home, '.claude', 'settings.json'));
      assert.equal(p.edits[0].before, null);
      assert.deepEqual(JSON.parse(p.edits[0].after), { env: { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9876', ANTHROPIC_AUTH_TOKEN: PLACEHOLDER_KEY } });
    });

    it('merges into existing settings, keeping other keys and env vars, and uses the access key when required', () => {
      const file = clientFiles('claude-code', home)[0];
      const before = JSON.stringify({ model: 'opus', env: { FOO: '1', ANTHROPIC_BASE_URL: 'https://old' }, permissions: { allow: ['Bash(ls)'] } }, null, 4);
      const p = planClient('claude-code', { ...opts, accessKey: 'pp-secret', proxyUrl: 'http://127.0.0.1:5555/' }, { [file]: before });
      assert.deepEqual(JSON.parse(p.edits[0].after), {
        model: 'opus',
        env: { FOO: '1', ANTHROPIC_BASE_URL: 'http://127.0.0.1:5555', ANTHROPIC_AUTH_TOKEN: 'pp-secret' },
        permissions: { allow: ['Bash(ls)'] },
      });
      assert.ok(p.notes.some((n) => /access key/.test(n)));
    });

    const CLAUDE: ClientModel[] = [
      ...MODELS,
      { id: 'Claude-Sonnet-4.5', contextLength: 200000, base: 871, per1kTokens: 85, tools: true },
      { id: 'Claude-Opus-4.7', contextLength: 200000, base: 960, per1kTokens: 142, tools: true },
      { id: 'Claude-Sonnet-4.6', contextLength: 200000, base: 871, per1kTokens: 85, tools: true },
      { id: 'Claude-Opus-4.1', contextLength: 200000, base: 2889, per1kTokens: 425, tools: true },
      { id: 'Claude-Haiku-4.5', contextLength: 200000, base: 290, per1kTokens: 28, tools: true },
    ];

    it('proposes the newest Opus, Sonnet and Haiku of the registry, Sonnet as the main model', () => {
      assert.deepEqual(proposeClaudeCodeModels(CLAUDE), {
        main: 'Claude-Sonnet-4.6',
        opus: 'Claude-Opus-4.7',
        sonnet: 'Claude-Sonnet-4.6',
        haiku: 'Claude-Haiku-4.5',
      });
      assert.deepEqual(
        proposeClaudeCodeModels([...MODELS, CLAUDE[3]]),
        { main: 'Claude-Opus-4.7', opus: 'Claude-Opus-4.7', sonnet: 'Claude-Opus-4.7', haiku: 'Claude-Opus-4.7' },
        'a missing family borrows another',
      );
      assert.equal(proposeClaudeCodeModels(MODELS), undefined, 'no Claude model: nothing to propose');
    });

    it("writes every model variable Claude Code reads (ANTHROPIC_MODEL, _DEFAULT_OPUS/SONNET/HAIKU_MODEL, _SMALL_FAST_MODEL) as Anthropic's ids, which Claude Code recognises", () => {
      const proposed = JSON.parse(planClient('claude-code', { ...opts, models: CLAUDE }, {}).edits[0].after).env;
      assert.deepEqual(proposed, {
        ANTHROPIC_BASE_URL: 'http://127.0.0.1:9876',
        ANTHROPIC_AUTH_TOKEN: PLACEHOLDER_KEY,
        ANTHROPIC_MODEL: 'claude-sonnet-4-6',
        ANTHROPIC_DEFAULT_OPUS_MODEL: 'claude-opus-4-7',
        ANTHROPIC_DEFAULT_SONNET_MODEL: 'claude-sonnet-4-6',
        ANTHROPIC_DEFAULT_HAIKU_MODEL: 'claude-haiku-4-5',
        ANTHROPIC_SMALL_FAST_MODEL: 'claude-haiku-4-5',
      });
      // Each resolves back to the very registry entry that was chosen (none is swapped for another bot).
      const registry = ModelRegistry.parse(`models:\n  text:\n${CLAUDE.map((m) => `    - poe_name: ${m.id}\n`).join('')}`);
      for (const [name, id] of Object.entries(proposed as Record<string, string>))
        if (name !== 'ANTHROPIC_BASE_URL' && name !== 'ANTHROPIC_AUTH_TOKEN')
          assert.equal(registry.resolve(id)?.id.toLowerCase().replace(/[.]/g, '-'), id, name);
      const chosen = planClient(
        'claude-code',
        { ...opts, models: CLAUDE, claudeCode: { main: 'Claude-Opus-4.7', opus: 'Claude-Opus-4.1', sonnet: 'Claude-Sonnet-4.5', haiku: 'Claude-Sonnet-4.5' } },
        {},
      );
      const env = JSON.parse(chosen.edits[0].after).env;
      assert.deepEqual(
        [
          env.ANTHROPIC_MODEL,
          env.ANTHROPIC_DEFAULT_OPUS_MODEL,
          env.ANTHROPIC_DEFAULT_SONNET_MODEL,
          env.ANTHROPIC_DEFAULT_HAIKU_MODEL,
          env.ANTHROPIC_SMALL_FAST_MODEL,
        ],
        ['claude-opus-4-7', 'claude-opus-4-1', 'claude-sonnet-4-5', 'claude-sonnet-4-5', 'claude-sonnet-4-5'],
      );
      assert.ok(
        chosen.notes.some((n) => /main Claude-Opus-4\.7; opus Claude-Opus-4\.1/.test(n)),
        chosen.notes.join('\n'),
      );
    });

    it('sets no model and says why when the registry has no Claude model', () => {
      const p = planClient('claude-code', opts, {});
      assert.equal(JSON.parse(p.edits[0].after).env.ANTHROPIC_MODEL, undefined);
      assert.ok(p.notes.some((n) => /No Claude model is in the registry/.test(n)));
    });

    it('refuses to touch a file that is not valid JSON', () => {
      const file = clientFiles('claude-code', home)[0];
      assert.throws(() => planClient('claude-code', opts, { [file]: '{ "env": ' }), /not valid JSON.*Nothing was changed/);
      assert.throws(() => planClient('claude-code', opts, { [file]: '{ "env": 3 }' }), /"env" is not an object/);
    });
  });

  describe('Codex (~/.codex/config.toml)', () => {
    it('adds the provider with wire_api = "responses" and selects it, keeping profiles and other providers', () => {
      const before = [
        '# my codex config',
        'model = "o3"',
        'approval_policy = "on-request"',
        '',
        '[model_providers.other]',
        'name = "Other"',
        'base_url = "https://other.example/v1"',
        '',
        '[profiles.fast]',
        'model = "gpt-4.1-mini"',
        '',
      ].join('\n');
      const after = mergeCodexToml(before, { model: 'GPT-4.1', baseUrl: 'http://127.0.0.1:9876/v1' });
      const lines = after.split('\n');
      assert.equal(lines[0], '# my codex config');
      assert.ok(lines.includes('model = "GPT-4.1"'), after);
      assert.ok(!lines.includes('model = "o3"'), 'the top-level model is replaced');
      assert.ok(lines.includes('model = "gpt-4.1-mini"'), 'a profile keeps its own model');
      assert.ok(lines.includes('approval_policy = "on-request"'));
      assert.ok(lines.includes('[model_providers.other]') && lines.includes('base_url = "https://other.example/v1"'));
      // Top-level keys must come before the first table.
      assert.ok(lines.indexOf('model_provider = "poe"') < lines.indexOf('[model_providers.other]'));
      const table = after.slice(after.indexOf('[model_providers.poe]'));
      assert.match(table, /base_url = "http:\/\/127\.0\.0\.1:9876\/v1"/);
      assert.match(table, /wire_api = "responses"/);
      assert.doesNotMatch(table, /env_key/, 'no env_key without an access key (Codex would refuse to start without the variable)');
      assert.equal(mergeCodexToml(after, { model: 'GPT-4.1', baseUrl: 'http://127.0.0.1:9876/v1' }), after, 'idempotent');
    });

    it('names the env_key when an access key is required, and replaces (not duplicates) its table on a re-run', () => {
      const first = planClient('codex', { ...opts, accessKey: 'pp-k' }, {});
      const file = first.edits[0].path;
      assert.equal(file, path.join(home, '.codex', 'config.toml'));
      assert.match(first.edits[0].after, new RegExp(`env_key = "${CODEX_ENV_KEY}"`));
      assert.match(first.edits[0].after, /^model = "GPT-4\.1"$/m, 'the default is the first model with tools');
      assert.ok(first.notes.some((n) => n.includes(`export ${CODEX_ENV_KEY}`)));
      assert.ok(!first.edits[0].after.includes('pp-k'), 'the key itself is not written to config.toml');
      const second = planClient('codex', { ...opts, model: 'Small-Bot', proxyUrl: 'http://127.0.0.1:1234' }, { [file]: first.edits[0].after });
      const after = second.edits[0].after;
      assert.equal(after.match(/\[model_providers\.poe\]/g)?.length, 1);
      assert.equal(after.match(/^model = /gm)?.length, 1);
      assert.match(after, /^model = "Small-Bot"$/m);
      assert.match(after, /1234\/v1/);
      assert.doesNotMatch(after, /env_key/);
    });
  });

  describe('Continue (~/.continue/config.yaml)', () => {
    it('adds one "Poe: …" model per registry model and keeps the user\'s own models and comments', () => {
      const file = clientFiles('continue', home)[0];
      const before = [
        '# my continue config',
        'name: Mine',
        'version: 1.0.0',
        'schema: v1',
        'models:',
        '  - name: Local Llama # keep me',
        '    provider: ollama',
        '    model: llama3',
        '',
      ].join('\n');
      const p = planClient('continue', opts, { [file]: before });
      const after = p.edits[0].after;
      assert.match(after, /# my continue config/);
      assert.match(after, /# keep me/);
      const doc = parseYaml(after);
      assert.equal(doc.name, 'Mine');
      assert.deepEqual(
        doc.models.map((m: { name: string }) => m.name),
        ['Local Llama', 'Poe: Small-Bot', 'Poe: GPT-4.1'],
      );
      const gpt = doc.models[2];
      assert.deepEqual(gpt, {
        name: 'Poe: GPT-4.1',
        provider: 'openai',
        model: 'GPT-4.1',
        apiBase: 'http://127.0.0.1:9876/v1',
        apiKey: PLACEHOLDER_KEY,
        roles: ['chat', 'edit', 'apply'],
        capabilities: ['tool_use'],
        defaultCompletionOptions: { contextLength: 200000, maxTokens: 32768 },
      });
      // A re-run changes nothing; a run with other models replaces ours only.
      assert.ok(planIsNoop(planClient('continue', opts, { [file]: after })));
      const fewer = parseYaml(planClient('continue', { ...opts, models: [MODELS[0]] }, { [file]: after }).edits[0].after);
      assert.deepEqual(
        fewer.models.map((m: { name: string }) => m.name),
        ['Local Llama', 'Poe: Small-Bot'],
      );
    });

    it("adds the name, version and schema Continue requires when an existing file lacks them, keeping the user's", () => {
      const file = clientFiles('continue', home)[0];
      const doc = parseYaml(planClient('continue', opts, { [file]: 'models:\n  - name: Mine\n    provider: ollama\n    model: llama3\n' }).edits[0].after);
      assert.deepEqual([doc.name, doc.version, doc.schema], ['Local Assistant', '1.0.0', 'v1']);
      const kept = parseYaml(planClient('continue', opts, { [file]: 'name: Mine\nversion: 2.0.0\nmodels: []\n' }).edits[0].after);
      assert.deepEqual([kept.name, kept.version], ['Mine', '2.0.0']);
    });

    it('creates a minimal config when there is none', () => {
      const doc = parseYaml(planClient('continue', opts, {}).edits[0].after);
      assert.equal(doc.schema, 'v1');
      assert.equal(doc.models.length, 2);
    });
  });

  describe('Aider (~/.aider.conf.yml and ~/.aider.model.metadata.json)', () => {
    it('sets the OpenAI base, key and model, keeping other settings, and writes metadata priced from points', () => {
      const [conf, meta] = clientFiles('aider', home);
      const p = planClient(
        'aider',
        { ...opts, accessKey: 'pp-a' },
        { [conf]: '# aider\ndark-mode: true\nmodel: gpt-4o\n', [meta]: JSON.stringify({ 'other/x': { max_input_tokens: 1 } }) },
      );
      const c = p.edits.find((e) => e.path === conf)!;
      assert.match(c.after, /^# aider/);
      assert.deepEqual(parseYaml(c.after), {
        'dark-mode': true,
        model: 'openai/GPT-4.1',
        'openai-api-base': 'http://127.0.0.1:9876/v1',
        'openai-api-key': 'pp-a',
      });
      const m = JSON.parse(p.edits.find((e) => e.path === meta)!.after);
      assert.deepEqual(m['other/x'], { max_input_tokens: 1 }, 'other models stay');
      assert.equal(m['openai/GPT-4.1'].max_input_tokens, 200000);
      assert.equal(m['openai/GPT-4.1'].max_output_tokens, 32768);
      assert.equal(m['openai/GPT-4.1'].input_cost_per_token, (60 / 1000) * USD_PER_POINT);
      assert.equal(m['openai/Small-Bot'].output_cost_per_token, (1 / 1000) * USD_PER_POINT);
      assert.ok(m['openai/GPT-4.1'].input_cost_per_token > m['openai/Small-Bot'].input_cost_per_token);
      assert.equal(aiderMetadata(MODELS[0]).max_output_tokens, 4000, 'no vendor limit: capped by the context');
    });
  });

  describe('apply and undo (temp HOME)', () => {
    it('round-trips: created files are deleted, existing ones restored byte for byte', async () => {
      const confText = '# mine\ndark-mode: true   # spacing kept\n';
      const conf = await write('.aider.conf.yml', confText);
      const meta = path.join(home, '.aider.model.metadata.json');
      const plan = await planClientFromDisk('aider', opts);
      const record = await applyPlan(plan, backups);
      assert.ok(record);
      assert.equal(record.files.length, 2);
      assert.match(await fsp.readFile(conf, 'utf8'), /openai-api-base/);
      assert.ok(JSON.parse(await fsp.readFile(meta, 'utf8'))['openai/GPT-4.1']);
      assert.equal(statSync(meta).mode & 0o777, 0o600, 'a new file that may hold a key is private');
      assert.equal(statSync(path.join(backups, `${record.id}.json`)).mode & 0o777, 0o600);

      // Idempotent: planning again changes nothing, and applying a no-op keeps no backup.
      const again = await planClientFromDisk('aider', opts);
      assert.ok(planIsNoop(again));
      assert.equal(await applyPlan(again, backups), undefined);
      assert.equal((await listChanges(backups)).length, 1);

      const [latest] = await listChanges(backups);
      const undone = await undoChange(backups, latest);
      assert.deepEqual(undone.restored, [conf]);
      assert.deepEqual(undone.deleted, [meta]);
      assert.deepEqual(undone.modifiedSince, []);
      assert.equal(await fsp.readFile(conf, 'utf8'), confText);
      await assert.rejects(fsp.stat(meta), /ENOENT/);
      assert.deepEqual(await listChanges(backups), []);
    });

    it('undoes every client, newest change first, back to the original files', async () => {
      const claude = await write('.claude/settings.json', '{\n  "theme": "dark"\n}\n');
      const original = await fsp.readFile(claude, 'utf8');
      for (const client of CLIENT_IDS) await applyPlan(await planClientFromDisk(client, opts), backups);
      // A second change of the same file stacks on the first.
      await applyPlan(await planClientFromDisk('claude-code', { ...opts, accessKey: 'pp-2' }), backups);
      assert.equal(JSON.parse(await fsp.readFile(claude, 'utf8')).env.ANTHROPIC_AUTH_TOKEN, 'pp-2');
      const changes = await listChanges(backups);
      assert.equal(changes.length, 5);
      assert.equal(changes[0].client, 'claude-code', 'newest first');
      for (const c of changes) await undoChange(backups, c);
      assert.equal(await fsp.readFile(claude, 'utf8'), original);
      for (const client of ['codex', 'continue', 'aider'] as const) {
        for (const f of clientFiles(client, home)) await assert.rejects(fsp.stat(f), /ENOENT/, f);
      }
    });

    it('refuses to write when a file changed after the preview, and reports edits made after a change on undo', async () => {
      const plan = await planClientFromDisk('claude-code', opts);
      const file = plan.edits[0].path;
      await write('.claude/settings.json', '{"late": true}');
      await assert.rejects(applyPlan(plan, backups), /changed since the preview/);
      assert.equal(await fsp.readFile(file, 'utf8'), '{"late": true}');
      assert.deepEqual(await listChanges(backups), []);

      const record = (await applyPlan(await planClientFromDisk('claude-code', opts), backups))!;
      await fsp.writeFile(file, '{"edited": "by hand"}');
      const undone = await undoChange(backups, record);
      assert.deepEqual(undone.modifiedSince, [file]);
      assert.equal(await fsp.readFile(file, 'utf8'), '{"late": true}');
    });
  });

  describe('planRepoint (after Use Another Port)', () => {
    const record = {
      id: 'x',
      seq: 1,
      client: 'codex' as const,
      time: '2026-12-01T00:00:00.000Z',
      files: [
        { path: '/h/a.toml', before: null, after: 'model = "Mine"\nbase_url = "http://127.0.0.1:9876/v1"\n' },
        { path: '/h/gone.toml', before: null, after: 'base_url = "http://127.0.0.1:9876/v1"\n' },
      ],
    };

    it('replaces the origin the change wrote and the file still holds, nothing else', () => {
      const current = {
        '/h/a.toml': '# mine\nmodel = "Edited"\nbase_url = "http://127.0.0.1:9876/v1"\nother = "http://127.0.0.1:9999"\n',
        '/h/gone.toml': null,
      };
      const plan = planRepoint(record, current, 'http://127.0.0.1:9877');
      assert.deepEqual(plan.edits, [
        {
          path: '/h/a.toml',
          before: current['/h/a.toml'],
          after: '# mine\nmodel = "Edited"\nbase_url = "http://127.0.0.1:9877/v1"\nother = "http://127.0.0.1:9999"\n',
        },
      ]);
      assert.deepEqual(plan.notes, ['http://127.0.0.1:9876 becomes http://127.0.0.1:9877.']);
    });

    it('changes nothing when the file moved on (or already points at the new origin)', () => {
      assert.ok(planIsNoop(planRepoint(record, { '/h/a.toml': 'base_url = "http://127.0.0.1:5000/v1"\n' }, 'http://127.0.0.1:9877')));
      assert.ok(planIsNoop(planRepoint(record, { '/h/a.toml': record.files[0].after }, 'http://127.0.0.1:9876')));
    });
  });
});
