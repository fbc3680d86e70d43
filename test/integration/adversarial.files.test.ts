/**
 * Adversarial review, hostile local input and files: what a malicious repository, a hostile client or
 * a spreadsheet-borne attack could put into the CSV export, models.yaml, the picks file or the logs.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelRegistry, RegistryError } from '../../src/core/store/registry';
import { mergeCandidates, parseLiveModels, renderModelsYaml } from '../../src/vscode/modelsYaml';
import type { LedgerEntry } from '../../src/core/store/ledger';
import { toCsv } from '../../src/core/store/ledger';

function entry(over: Partial<LedgerEntry>): LedgerEntry {
  return {
    time: '2025-01-01T00:00:00.000Z',
    id: 'req-1',
    model: 'GPT-4.1',
    endpoint: 'chat',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    tokensIn: 1,
    tokensOut: 1,
    points: 10,
    pointsEstimated: false,
    balanceAfter: null,
    durationMs: 5,
    clipped: false,
    retries: 0,
    client: '127.0.0.1',
    ...over,
  };
}

/** Splits one CSV line the way a spreadsheet in a `;` locale or a `,` locale would (quotes respected). */
function cells(line: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

describe('adversarial: files and local input', () => {
  describe('CSV export (item 14)', () => {
    const hostile = ["=cmd|' /C calc'!A0", '@SUM(1+1)', '+1+1', '-1+1', '\t=1', '\r=1', ' =1+1', 'x;=1+1', 'a,=1+1'];

    for (const sep of [',', ';']) {
      it(`no cell a spreadsheet splitting on "${sep}" reads starts a formula`, () => {
        const csv = toCsv(hostile.map((h) => entry({ model: h, id: h, error: h })));
        const lines = csv.split('\r\n').slice(1, -1);
        assert.equal(lines.length, hostile.length);
        for (const line of lines) {
          for (const cell of cells(line, sep)) {
            assert.doesNotMatch(cell.trimStart(), /^[=+\-@\t\r]/, `cell ${JSON.stringify(cell)} of ${JSON.stringify(line)}`);
          }
        }
      });
    }

    it('keeps the text: a neutralised cell is the original behind one apostrophe', () => {
      const csv = toCsv([entry({ model: '=1+1', error: 'x;y' })]);
      const row = cells(csv.split('\r\n')[1], ',');
      assert.equal(row[2], "'=1+1");
      assert.equal(row.at(-1), 'x;y');
    });

    it('numbers stay numbers (a negative balance is not a formula)', () => {
      const csv = toCsv([entry({ balanceAfter: -5 })]);
      assert.equal(cells(csv.split('\r\n')[1], ',')[11], '-5');
    });
  });
});

describe('adversarial: hostile models files (item 12)', () => {
  const valid = 'models:\n  text:\n    - poe_name: A\n';
  const deep = (n: number) => `models:\n  text:\n    - poe_name: A\n      aliases: ${'['.repeat(n)}${']'.repeat(n)}\n`;
  const deepMap = (n: number) => `models:\n  text:\n    - poe_name: A\n      base: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\n`;
  const aliasBomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
    ...Array.from(
      { length: 9 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(',')}]`,
    ),
    'models:',
    '  text:',
    '    - poe_name: A',
    '      aliases: *j',
  ].join('\n');
  const HOSTILE: Record<string, string> = {
    'nested 100,000 deep (flow)': deep(100_000),
    'nested 100,000 deep (flow mappings)': deepMap(100_000),
    'an alias bomb (10^10 strings)': aliasBomb,
    'aliases for fields': 'x: &n 5\nmodels:\n  text:\n    - poe_name: *n\n',
    'duplicate keys': 'models:\n  text:\n    - poe_name: A\n  text:\n    - poe_name: B\n',
    'duplicate models by case and spaces': 'models:\n  text:\n    - poe_name: "A "\n    - poe_name: " a"\n',
    'an alias shadowing another model': 'models:\n  text:\n    - poe_name: A\n    - poe_name: B\n      aliases: [a]\n',
    'a 2 MiB file': `${valid}# ${'x'.repeat(2 * 1024 * 1024)}\n`,
    'a poe_name of 10,000 characters': `models:\n  text:\n    - poe_name: ${'A'.repeat(10_000)}\n`,
    'binary garbage': '\u0000\u0001\u0002\ufffd{[',
    'a JSON array': '[1,2,3]',
    tags: 'models: !!binary aGVsbG8=\n',
    'two documents': `${valid}---\n${valid}`,
  };

  for (const [name, text] of Object.entries(HOSTILE)) {
    it(`${name}: a RegistryError, nothing else`, () => {
      assert.throws(
        () => ModelRegistry.parse(text, 'hostile.yaml'),
        (e: unknown) => e instanceof RegistryError && /^hostile\.yaml/.test(e.message) && !e.message.includes('\n') && e.message.length < 500,
      );
      if (name.startsWith('nested')) assert.throws(() => ModelRegistry.parse(text, 'hostile.yaml'), /nested too deeply/);
    });
  }

  it('the headless CLI exits 2 with one "invalid models file" line for each', async function () {
    this.timeout(120_000);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-models-'));
    const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
    for (const [name, text] of Object.entries(HOSTILE)) {
      const file = path.join(dir, 'models.yaml');
      writeFileSync(file, text);
      const r = spawnSync(process.execPath, [cli], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir, POE_API_KEY: 'poe-test-key-123456', MODELS_FILE: file, PORT: '0', DATA_DIR: dir },
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 2, `${name}: exit ${r.status}; ${r.stderr.slice(0, 300)}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, got ${r.stderr.slice(0, 500)}`);
      assert.match(lines[0], /^poe-proxy: invalid models file: /);
    }
  });

  it('the bundled models.yaml still loads (held)', async () => {
    const r = await ModelRegistry.load(path.join(__dirname, '..', '..', '..', 'models.yaml'));
    assert.ok(r.models.length > 10);
  });
});

describe('adversarial: Pick Models writes what loads (item 13)', () => {
  const source = ModelRegistry.parse('models:\n  text:\n    - poe_name: GPT-4.1\n      base: 1\n      aliases: [gpt]\n    - poe_name: Claude\n', 'models.yaml');
  const hostileLive = [
    'GPT-4.1',
    'Foo',
    'Foo ',
    ' foo',
    'FOO',
    'gpt ',
    'Bar\n',
    'x'.repeat(300),
    '',
    '   ',
    'quote"s',
    '#hash',
    'a: b',
    '- dash',
    'ünï',
    'line\u2028sep',
    'tab\there',
    "it's",
    '*star',
    '&amp',
    '!tag',
    '{brace}',
    '[x]',
    'null',
    'true',
    '123',
  ];

  it('live ids that differ only by spaces or case, or look like YAML, give a picks file the registry loads', () => {
    const live = parseLiveModels({ data: hostileLive.map((id) => ({ id })) });
    const candidates = mergeCandidates(source, undefined, live, undefined);
    const yaml = renderModelsYaml(candidates, { textMaxTokens: 100_000, source: 'models.yaml' });
    const loaded = ModelRegistry.parse(yaml, 'picks.yaml');
    for (const name of ['GPT-4.1', 'Claude', 'Foo', 'quote"s', '#hash', 'a: b', 'ünï', 'null', '123'])
      assert.ok(loaded.resolve(name), `${name} is in the picks`);
    assert.equal(loaded.resolve('gpt')?.id, 'GPT-4.1', 'the alias survives');
  });

  it('even a hand-made list of clashing picks renders to a file that loads', () => {
    const entry = (id: string, aliases: string[] = []) => ({ entry: { id, modality: 'text' as const, base: 0, per1kTokens: 0, aliases }, liveOnly: true });
    const yaml = renderModelsYaml([entry('A'), entry('a '), entry('B', ['a', 'b2', ' B2']), entry('C', ['c'])], { textMaxTokens: 1000, source: 'x' });
    const loaded = ModelRegistry.parse(yaml, 'picks.yaml');
    assert.deepEqual(
      loaded.models.map((m) => m.id),
      ['A', 'B', 'C'],
    );
    assert.deepEqual(loaded.resolve('B')!.aliases, ['b2']);
  });
});
