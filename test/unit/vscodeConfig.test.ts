import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_CONFIG, makeConfig } from '../../src/core/store/config';
import { ModelRegistry } from '../../src/core/store/registry';
import { candidateDetail, describePrice, mergeCandidates, parseLiveModels, renderModelsYaml } from '../../src/vscode/modelsYaml';
import {
  accessKeyRequired,
  changedKeys,
  diffValues,
  readSettings,
  RENAMED_SETTINGS,
  SETTINGS,
  specDefault,
  userValue,
  type Inspected,
} from '../../src/vscode/settings';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
/** The settings are contributed in titled groups (General, Spending guards, …); all of them, flattened. */
const groups: Array<{ title: string; properties: Record<string, Record<string, unknown>> }> = pkg.contributes.configuration;
const props: Record<string, Record<string, unknown>> = Object.assign({}, ...groups.map((g) => g.properties));

describe('VS Code settings (package.json ↔ DEFAULT_CONFIG)', () => {
  it('come in titled groups, each saying once that it is read from the user settings only', () => {
    assert.deepEqual(
      groups.map((g) => g.title),
      ['Poe Proxy: General', 'Poe Proxy: Spending guards', 'Poe Proxy: Footer', 'Poe Proxy: Network and security', 'Poe Proxy: Advanced'],
    );
    for (const g of groups) {
      const says = Object.values(g.properties).filter((p) => /user settings only/i.test(String(p.markdownDescription)));
      assert.equal(says.length, 1, g.title);
    }
  });

  it('every poeProxy.* setting in package.json has a spec, and every spec is contributed', () => {
    const contributed = Object.keys(props).sort();
    const specified = SETTINGS.map((s) => `poeProxy.${s.key}`).sort();
    assert.deepEqual(contributed, specified);
  });

  for (const spec of SETTINGS) {
    it(`poeProxy.${spec.key}: package.json default, type, bounds and scope match the spec and DEFAULT_CONFIG`, () => {
      const p = props[`poeProxy.${spec.key}`];
      assert.ok(p, 'contributed');
      assert.deepEqual(p.default, specDefault(spec), 'default equals DEFAULT_CONFIG');
      assert.equal(p.type, spec.kind);
      assert.equal(p.minimum, spec.minimum);
      assert.equal(p.maximum, spec.maximum);
      assert.equal(p.scope, spec.scope);
      assert.ok(typeof p.markdownDescription === 'string' && (p.markdownDescription as string).length > 20, 'described');
    });
  }

  it('the defaults read from an empty settings store are exactly DEFAULT_CONFIG', () => {
    const byKey = new Map(Object.entries(props).map(([k, v]) => [k.slice('poeProxy.'.length), { defaultValue: v.default } as Inspected]));
    const read = readSettings((key) => byKey.get(key));
    assert.deepEqual(read.problems, []);
    const cfg = makeConfig({ ...read.overrides, dataDir: DEFAULT_CONFIG.dataDir });
    assert.deepEqual(cfg, makeConfig({}));
    assert.equal(read.autoStart, true);
    assert.equal(read.requireAccessKey, false);
  });

  it('the settings that can redirect the key or open the proxy are application-scoped', () => {
    for (const key of ['port', 'host', 'baseURL', 'modelsFile', 'requireAccessKey', 'pointsCutoff', 'maxPointsPerMessage']) {
      assert.equal(props[`poeProxy.${key}`].scope, 'application', key);
    }
  });
});

describe('untrusted workspaces (package.json capabilities ↔ the settings code)', () => {
  /** A valid value other than the default, of the spec's type. */
  function otherValue(spec: (typeof SETTINGS)[number]): unknown {
    const def = specDefault(spec);
    if (spec.kind === 'boolean') return !def;
    if (spec.kind === 'array') return ['evil.example:1'];
    if (spec.kind === 'string') return spec.key === 'baseURL' ? 'https://evil.example' : spec.key === 'host' ? '0.0.0.0' : '/tmp/evil/models.yaml';
    const n = (spec.minimum ?? 0) + 7;
    return n === def ? n + 1 : n;
  }

  it('supported: true, because every setting that could redirect the key or spend points is read from the user settings only, trusted or not', () => {
    assert.deepEqual(pkg.capabilities?.untrustedWorkspaces, { supported: true });
    // The one setting a workspace may set: whether the proxy starts (it sends nothing and spends nothing by itself).
    assert.deepEqual(
      SETTINGS.filter((s) => s.scope !== 'application').map((s) => s.key),
      ['autoStart'],
    );
    for (const spec of SETTINGS.filter((s) => s.scope === 'application')) {
      const value = otherValue(spec);
      const asUser = readSettings((k) => (k === spec.key ? { defaultValue: specDefault(spec), globalValue: value } : undefined));
      assert.notDeepEqual(asUser.values[spec.key], specDefault(spec), `${spec.key}: the sample value takes effect from the user settings`);
      const asWorkspace = readSettings((k) =>
        k === spec.key ? { defaultValue: specDefault(spec), workspaceValue: value, workspaceFolderValue: value } : undefined,
      );
      assert.deepEqual(asWorkspace.values[spec.key], specDefault(spec), `${spec.key}: a workspace value is ignored`);
      assert.equal(props[`poeProxy.${spec.key}`].scope, 'application', `${spec.key}: VS Code itself ignores it in workspace settings`);
    }
  });
});

describe('readSettings', () => {
  it('takes only the user (global) value of application settings: workspace and folder values are ignored', () => {
    const values: Record<string, Inspected> = {
      baseURL: {
        defaultValue: 'https://api.poe.com',
        globalValue: 'https://user.example/v1/',
        workspaceValue: 'http://evil.example',
        workspaceFolderValue: 'http://evil2.example',
      },
      port: { defaultValue: 9876, workspaceValue: 1234 },
      pointsCutoff: { defaultValue: 100000, workspaceValue: 0 },
    };
    const read = readSettings((k) => values[k]);
    const cfg = makeConfig(read.overrides);
    assert.equal(cfg.poeBaseUrl, 'https://user.example', 'user value, normalised (no /v1, no slash)');
    assert.equal(cfg.port, 9876);
    assert.equal(cfg.pointsCutoff, 100000);
  });

  it('window-scoped autoStart takes the most specific value', () => {
    const read = readSettings((k) => (k === 'autoStart' ? { defaultValue: true, globalValue: true, workspaceValue: false } : undefined));
    assert.equal(read.autoStart, false);
  });

  it('maps nested rate limit keys and modelsFile "" → undefined', () => {
    const values: Record<string, Inspected> = {
      'rateLimit.burst': { globalValue: 3 },
      'rateLimit.requestsPerMinute': { globalValue: 0 },
      modelsFile: { globalValue: '' },
    };
    const cfg = makeConfig(readSettings((k) => values[k]).overrides);
    assert.deepEqual(cfg.rateLimit, { requestsPerMinute: 0, burst: 3, maxConcurrent: DEFAULT_CONFIG.rateLimit.maxConcurrent });
    assert.equal(cfg.modelsFile, undefined);
    const withFile = makeConfig(readSettings((k) => (k === 'modelsFile' ? { globalValue: ' /tmp/m.yaml ' } : undefined)).overrides);
    assert.equal(withFile.modelsFile, '/tmp/m.yaml');
  });

  it('poeProxy.baseUrl (renamed to baseURL): its user value counts until it is moved, the new key wins, a workspace value never counts', () => {
    assert.deepEqual(RENAMED_SETTINGS, [{ from: 'baseUrl', to: 'baseURL' }]);
    assert.ok(!('poeProxy.baseUrl' in props), 'the old key is no longer contributed');
    const poeBaseUrl = (values: Record<string, Inspected>) => makeConfig(readSettings((k) => values[k]).overrides).poeBaseUrl;
    const DEFAULT = { defaultValue: 'https://api.poe.com' };
    assert.equal(poeBaseUrl({ baseURL: DEFAULT, baseUrl: { globalValue: 'https://old.example/v1' } }), 'https://old.example');
    assert.equal(
      poeBaseUrl({ baseURL: { ...DEFAULT, globalValue: 'https://new.example' }, baseUrl: { globalValue: 'https://old.example' } }),
      'https://new.example',
    );
    assert.equal(poeBaseUrl({ baseURL: DEFAULT, baseUrl: { workspaceValue: 'http://evil.example' } }), DEFAULT_CONFIG.poeBaseUrl);
    assert.deepEqual(
      changedKeys((s) => s === 'poeProxy.baseUrl'),
      ['baseURL'],
      'editing the old key is a change of the new one',
    );
  });

  it('replaces invalid values by the default and says which', () => {
    const values: Record<string, Inspected> = {
      port: { globalValue: 70000 },
      baseURL: { globalValue: 'ftp://x' },
      'rateLimit.burst': { globalValue: 2.5 },
      footer: { globalValue: 'yes' },
    };
    const read = readSettings((k) => values[k]);
    const cfg = makeConfig(read.overrides);
    assert.equal(cfg.port, DEFAULT_CONFIG.port);
    assert.equal(cfg.poeBaseUrl, DEFAULT_CONFIG.poeBaseUrl);
    assert.equal(cfg.rateLimit.burst, DEFAULT_CONFIG.rateLimit.burst);
    assert.equal(cfg.footer, DEFAULT_CONFIG.footer);
    assert.equal(read.problems.length, 4);
    assert.match(read.problems.join('\n'), /poeProxy\.port: must be ≤ 65535/);
  });

  it('maps body limit and host/origin lists from user settings only, and rejects lists of non-strings', () => {
    const values: Record<string, Inspected> = {
      maxBodyMB: { globalValue: 2 },
      allowedHosts: { globalValue: [' myhost:9876 ', ''], workspaceValue: ['evil.example:9876'] },
      allowedOrigins: { globalValue: [42] },
    };
    const read = readSettings((k) => values[k]);
    const cfg = makeConfig(read.overrides);
    assert.equal(cfg.maxBodyBytes, 2 * 1024 * 1024);
    assert.deepEqual(cfg.allowedHosts, ['myhost:9876'], 'trimmed, empty dropped, the workspace value ignored');
    assert.deepEqual(cfg.allowedOrigins, DEFAULT_CONFIG.allowedOrigins);
    assert.match(read.problems.join('\n'), /poeProxy\.allowedOrigins: expected a list of strings/);
    assert.deepEqual(diffValues(read.values, readSettings((k) => values[k]).values), [], 'equal lists are no change');
  });

  it('userValue prefers the global value over the default, never the workspace value', () => {
    assert.equal(userValue({ defaultValue: 1, workspaceValue: 2 }), 1);
    assert.equal(userValue({ defaultValue: 1, globalValue: 3, workspaceValue: 2 }), 3);
    assert.equal(userValue(undefined), undefined);
  });

  it('the access key is required on request and always beyond loopback', () => {
    assert.equal(accessKeyRequired('127.0.0.1', false), false);
    assert.equal(accessKeyRequired('::1', false), false);
    assert.equal(accessKeyRequired('127.0.0.1', true), true);
    assert.equal(accessKeyRequired('0.0.0.0', false), true);
    assert.equal(accessKeyRequired('192.168.1.5', false), true);
  });

  it('diffValues reports only settings whose effective value changed', () => {
    const a = readSettings((k) => (k === 'port' ? { globalValue: 1111 } : undefined)).values;
    const b = readSettings((k) => (k === 'port' ? { globalValue: 1111, workspaceValue: 2222 } : k === 'footer' ? { globalValue: false } : undefined)).values;
    assert.deepEqual(diffValues(a, b), ['footer']);
    assert.deepEqual(diffValues(a, a), []);
  });

  it('changedKeys lists the touched settings', () => {
    assert.deepEqual(
      changedKeys((s) => s === 'poeProxy.port' || s === 'poeProxy.rateLimit.burst' || s === 'editor.fontSize'),
      ['port', 'rateLimit.burst'],
    );
  });
});

describe('picked models file', () => {
  const source = ModelRegistry.parse(
    'defaults:\n  text_max_tokens: 200000\nmodels:\n  text:\n    - poe_name: GPT-4.1\n      base: 10\n      per_1k_tokens: 2\n      max_tokens: 1000000\n      aliases: [gpt-4.1-2025]\n      encoding: o200k_base\n      tools: true\n  image:\n    - poe_name: GPT-Image-1\n      base: 300\n',
    'src.yaml',
  );

  it('renders a models.yaml the registry reads back, live-only models at price 0 with a comment', () => {
    const live = parseLiveModels({
      object: 'list',
      data: [{ id: 'GPT-4.1' }, { id: 'New-Bot' }, { id: 'Pic-Bot', architecture: { output_modalities: ['image'] } }, { id: 'new-bot' }, { nope: 1 }],
    });
    assert.deepEqual(
      live.map((m) => [m.id, m.modality]),
      [
        ['GPT-4.1', 'text'],
        ['New-Bot', 'text'],
        ['Pic-Bot', 'image'],
      ],
    );
    const candidates = mergeCandidates(source, undefined, live, undefined);
    assert.deepEqual(
      candidates.map((c) => [c.entry.id, c.liveOnly, c.live, c.picked]),
      [
        ['GPT-4.1', false, true, true],
        ['GPT-Image-1', false, false, true],
        ['New-Bot', true, true, false],
        ['Pic-Bot', true, true, false],
      ],
    );
    const text = renderModelsYaml(candidates, { textMaxTokens: source.textMaxTokens, source: 'src.yaml' });
    assert.match(text, /prices unknown/);
    const back = ModelRegistry.parse(text, 'picks.yaml');
    assert.deepEqual(back.models, [
      { ...source.models[0] },
      {
        id: 'New-Bot',
        modality: 'text',
        base: 0,
        per1kTokens: 0,
        aliases: [],
        maxTokens: undefined,
        maxOutputTokens: undefined,
        encoding: undefined,
        tools: undefined,
      },
      { ...source.models[1] },
      {
        id: 'Pic-Bot',
        modality: 'image',
        base: 0,
        per1kTokens: 0,
        aliases: [],
        maxTokens: undefined,
        maxOutputTokens: undefined,
        encoding: undefined,
        tools: undefined,
      },
    ]);
    assert.equal(back.textMaxTokens, 200000);
  });

  it("a Pick Models row's detail: its kind (searchable), context window, tool support, and what is uncertain", () => {
    const live = parseLiveModels({ object: 'list', data: [{ id: 'GPT-4.1' }, { id: 'New-Bot' }] });
    const [gpt, image, newBot] = mergeCandidates(source, undefined, live, undefined);
    assert.equal(candidateDetail(gpt, 'Text'), 'Text · 1,000,000-token context · tool calls');
    assert.equal(candidateDetail(image, 'Image'), 'Image · not listed by Poe right now');
    assert.equal(candidateDetail(newBot, 'Text'), 'Text · tool calls · not in models.yaml: price unknown');
  });

  it('earlier picks decide what is pre-selected, and keep live-only models known', () => {
    const previous = ModelRegistry.parse('models:\n  text:\n    - poe_name: Old-Live-Bot\n      base: 0\n', 'picks.yaml');
    const c = mergeCandidates(source, previous, undefined, ['gpt-image-1', 'Old-Live-Bot']);
    assert.deepEqual(
      c.map((x) => [x.entry.id, x.liveOnly, x.live, x.picked]),
      [
        ['GPT-4.1', false, undefined, false],
        ['GPT-Image-1', false, undefined, true],
        ['Old-Live-Bot', true, undefined, true],
      ],
    );
  });

  it('describePrice (the one price text of Pick Models and the Configure pickers): per message, per 1k tokens, or unknown', () => {
    const gpt = source.resolve('GPT-4.1')!;
    assert.equal(describePrice(gpt), '10 pts/msg + 2 pts/1k tokens');
    assert.equal(describePrice({ base: 0, per1kTokens: 1.5 }), '1.5 pts/1k tokens');
    assert.equal(describePrice({ base: 1200, per1kTokens: 0 }), '1,200 pts/msg');
    assert.equal(describePrice({ base: 0, per1kTokens: 0 }), 'free or unknown');
  });
});
