import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { estimatePoints, ModelRegistry, RegistryError } from '../../src/core/store/registry';

const sample = `
defaults:
  text_max_tokens: 100000
models:
  text:
    - poe_name: GPT-4.1
      base: 226
      per_1k_tokens: 60
      max_tokens: 1000000
      aliases: [gpt41]
    - poe_name: Cheap-Bot
      base: 10
      per_1k_tokens: 5
      max_tokens: 32000
      encoding: cl100k_base
  image:
    - poe_name: GPT-Image-1
      base: 1500
`;

function expectRegistryError(text: string, match: { line?: number; field: RegExp }): void {
  assert.throws(
    () => ModelRegistry.parse(text, 'models.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof RegistryError, `expected RegistryError, got ${err}`);
      assert.match(err.field, match.field);
      if (match.line !== undefined) assert.equal(err.line, match.line, err.message);
      assert.ok(err.message.startsWith('models.yaml'), err.message);
      return true;
    },
  );
}

describe('ModelRegistry', () => {
  it('parses modalities, fields and defaults', () => {
    const r = ModelRegistry.parse(sample);
    assert.equal(r.models.length, 3);
    assert.equal(r.textMaxTokens, 100000);
    const gpt = r.resolve('GPT-4.1')!;
    assert.equal(gpt.modality, 'text');
    assert.equal(gpt.base, 226);
    assert.equal(gpt.per1kTokens, 60);
    assert.equal(r.resolve('Cheap-Bot')!.encoding, 'cl100k_base');
    assert.equal(r.resolve('GPT-Image-1')!.modality, 'image');
    assert.equal(r.resolve('GPT-Image-1')!.per1kTokens, 0);
  });

  it('resolves aliases and case-insensitive ids to the Poe name', () => {
    const r = ModelRegistry.parse(sample);
    assert.equal(r.resolve('gpt41')!.id, 'GPT-4.1');
    assert.equal(r.resolve('gpt-4.1')!.id, 'GPT-4.1');
    assert.equal(r.resolve('nope'), undefined);
  });

  it('caps context by model, registry default and global limit', () => {
    const r = ModelRegistry.parse(sample);
    assert.equal(r.contextLimit(r.resolve('GPT-4.1')!, 0), 100000);
    assert.equal(r.contextLimit(r.resolve('Cheap-Bot')!, 0), 32000);
    assert.equal(r.contextLimit(r.resolve('GPT-4.1')!, 50000), 50000);
  });

  it('estimates points and finds cheaper models of the same modality', () => {
    const r = ModelRegistry.parse(sample);
    assert.equal(estimatePoints(r.resolve('GPT-4.1')!, 2000), 226 + 120);
    const cheaper = r.cheaperThan(r.resolve('GPT-4.1')!, 2000);
    assert.deepEqual(
      cheaper.map((m) => m.id),
      ['Cheap-Bot'],
    );
    assert.deepEqual(r.cheaperThan(r.resolve('Cheap-Bot')!, 2000), []);
  });

  it('subset keeps only picked models (and all when none match)', () => {
    const r = ModelRegistry.parse(sample);
    assert.deepEqual(
      r.subset(['cheap-bot']).models.map((m) => m.id),
      ['Cheap-Bot'],
    );
    assert.equal(r.subset(['unknown']).models.length, 3);
  });

  it('names file, line and field for a wrong type', () => {
    expectRegistryError(sample.replace('base: 226', 'base: lots'), { line: 7, field: /models\.text\[0\]\.base/ });
  });

  it('rejects unknown fields, modalities, duplicates and missing poe_name', () => {
    expectRegistryError(sample.replace('max_tokens: 32000', 'max_tokenz: 32000'), { line: 14, field: /max_tokenz/ });
    expectRegistryError(sample.replace('image:', 'pictures:'), { field: /models\.pictures/ });
    expectRegistryError(sample.replace('poe_name: Cheap-Bot', 'poe_name: gpt-4.1'), { field: /poe_name/ });
    expectRegistryError(sample.replace('poe_name: Cheap-Bot', 'poe_nam: Cheap-Bot'), { field: /poe_nam/ });
    expectRegistryError('models: {}\n', { field: /models/ });
    expectRegistryError('models:\n  text: [\n', { field: /yaml/ });
    expectRegistryError('models:\n  text:\n    - poe_name: A\n      base: 1\n      base: 2\n', { line: 5, field: /yaml/ });
  });

  it('loads the bundled models.yaml with at least two models in every modality', async () => {
    const r = await ModelRegistry.load(path.resolve(__dirname, '../../../models.yaml'));
    for (const modality of ['text', 'image', 'video', 'audio']) {
      assert.ok(r.models.filter((m) => m.modality === modality).length >= 2, `${modality} has fewer than 2 models`);
    }
  });

  it('reports a missing file clearly', async () => {
    await assert.rejects(ModelRegistry.load('/nonexistent/models.yaml'), /models\.yaml: file: cannot read models file \(ENOENT\)/);
  });
});

describe("Anthropic's model ids", () => {
  const claude = ModelRegistry.parse(`
models:
  text:
    - poe_name: Claude-Opus-4.1
    - poe_name: Claude-Opus-4.5
      aliases: [my-opus]
    - poe_name: Claude-Sonnet-4.5
    - poe_name: Claude-Sonnet-4.6
    - poe_name: Claude-Haiku-4.5
    - poe_name: GPT-4.1
  image:
    - poe_name: Claude-Opus-Image
`);
  const id = (x: string) => claude.resolve(x)?.id;

  it('resolve undated and dated ids to the entry of that family and version', () => {
    assert.equal(id('claude-opus-4-5'), 'Claude-Opus-4.5');
    assert.equal(id('claude-opus-4-5-20251101'), 'Claude-Opus-4.5');
    assert.equal(id('claude-opus-4-1-20250805'), 'Claude-Opus-4.1');
    assert.equal(id('claude-sonnet-4-5-20250929'), 'Claude-Sonnet-4.5');
    assert.equal(id('claude-sonnet-4-5[1m]'), 'Claude-Sonnet-4.5');
    assert.equal(id('claude-haiku-4-5'), 'Claude-Haiku-4.5');
    assert.equal(id('CLAUDE-HAIKU-4-5-20251001'), 'Claude-Haiku-4.5');
  });

  it('resolve an id the registry has no entry for to the newest of its family', () => {
    assert.equal(id('claude-opus-4-7'), 'Claude-Opus-4.5', 'newer than the registry');
    assert.equal(id('claude-opus-4-20250514'), 'Claude-Opus-4.5', 'Claude 4 (no minor version)');
    assert.equal(id('claude-sonnet-4-7'), 'Claude-Sonnet-4.6');
    assert.equal(id('claude-3-5-haiku-20241022'), 'Claude-Haiku-4.5', 'Claude 3.x order: version before family');
  });

  it('leave other ids alone: Poe-style names, other vendors, families the registry lacks', () => {
    assert.equal(id('Claude-Opus-4.7'), undefined, "a Poe bot name is Poe's, never swapped for another bot");
    assert.equal(id('claude-opus'), undefined);
    assert.equal(id('gpt-4.1-mini'), undefined);
    const noHaiku = ModelRegistry.parse('models:\n  text:\n    - poe_name: Claude-Opus-4.5\n');
    assert.equal(noHaiku.resolve('claude-haiku-4-5'), undefined);
  });

  it('list the ids that reach each model: aliases plus the Anthropic id of a Claude entry; newest per family', () => {
    assert.deepEqual(claude.idsFor(claude.resolve('Claude-Opus-4.5')!), ['claude-opus-4-5', 'my-opus']);
    assert.deepEqual(claude.idsFor(claude.resolve('GPT-4.1')!), []);
    const newest = claude.newestClaude();
    assert.deepEqual([newest.opus?.id, newest.sonnet?.id, newest.haiku?.id], ['Claude-Opus-4.5', 'Claude-Sonnet-4.6', 'Claude-Haiku-4.5']);
  });

  it('reach the bundled Claude entries from the ids Claude Code asks for by default', async () => {
    const bundled = await ModelRegistry.load(path.resolve(__dirname, '../../../models.yaml'));
    for (const vendor of [
      'claude-opus-4-5',
      'claude-opus-4-7',
      'claude-sonnet-4-5-20250929',
      'claude-sonnet-4-6',
      'claude-haiku-4-5',
      'claude-haiku-4-5-20251001',
    ]) {
      assert.match(bundled.resolve(vendor)?.id ?? '', /^Claude-/, vendor);
    }
  });
});
