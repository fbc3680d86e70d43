// Smoke test for the real extension host: the API version and this extension being loaded.
import * as assert from 'assert';
import * as vscode from 'vscode';

const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode'; // package.json publisher.name

describe('extension host smoke', () => {
  it('runs inside VS Code >= 1.104', () => {
    const [major, minor] = vscode.version.split('.').map(Number);
    assert.ok(major > 1 || (major === 1 && minor >= 104), `vscode.version is ${vscode.version}`);
  });

  it('has this extension loaded from the development path', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(
      ext,
      `extension ${EXTENSION_ID} not found; loaded: ${vscode.extensions.all
        .filter((e) => !e.id.startsWith('vscode.'))
        .map((e) => e.id)
        .join(', ')}`,
    );
    assert.strictEqual(ext.packageJSON.engines?.vscode, '^1.104.0');
  });

  it('can activate the extension', async function () {
    this.timeout(60_000);
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
  });
});
