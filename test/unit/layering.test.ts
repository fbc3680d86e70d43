import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layering', () => {
  it('the core never imports vscode (it must run headless)', () => {
    const files = [...tsFiles(path.join(root, 'src/core')), ...tsFiles(path.join(root, 'src/cli'))];
    assert.ok(files.length > 10, 'core sources found');
    const offenders = files.filter((f) => /(from\s+['"]vscode['"]|require\(\s*['"]vscode['"]\s*\))/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(
      offenders.map((f) => path.relative(root, f)),
      [],
    );
  });

  it('the core never imports from the VS Code adapters', () => {
    const offenders = tsFiles(path.join(root, 'src/core')).filter((f) => /from\s+['"][./]*\/vscode\//.test(readFileSync(f, 'utf8')));
    assert.deepEqual(
      offenders.map((f) => path.relative(root, f)),
      [],
    );
  });
});
