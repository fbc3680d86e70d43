// `poe-proxy models` (headless parity with the seed's list_models.py): Poe's live list from the fake,
// registry models marked with their price, unknown ones said so; a Poe it cannot reach is exit 1.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_MODELS, FakePoe } from '../support/fake/server';
import { freePort } from '../support/wait';

const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poe-cli-models-'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir, DATA_DIR: dir, ...env }, cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('poe-proxy models (headless)', function () {
  this.timeout(20_000);
  let fake: FakePoe;
  before(async () => {
    fake = await FakePoe.start({ models: [...DEFAULT_MODELS, 'Fake-Live-Only-Bot'] });
  });
  after(() => fake.close());

  it("lists Poe's live models, marking those in the registry with their price", async () => {
    const r = await run(['models'], { POE_BASE_URL: fake.url, POE_API_KEY: 'poe-secret-key-123456' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\* GPT-4\.1\s+text\s+\d[\d,.]* pts\//m);
    assert.match(r.stdout, /^ {2}Fake-Live-Only-Bot\s+text\s+unknown/m);
    assert.match(r.stdout, new RegExp(`${DEFAULT_MODELS.length + 1} models at ${fake.url.replace(/[.]/g, '\\.')}`));
    assert.ok(
      fake.requests.some((q) => q.path === '/v1/models'),
      'asked the fake',
    );
    assert.ok(!r.stdout.includes('poe-secret-key-123456') && !r.stderr.includes('poe-secret-key-123456'));
  });

  it('exits 1 with the reason when Poe cannot be reached', async () => {
    const r = await run(['models'], { POE_BASE_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /poe-proxy: Cannot read Poe's model list: .*ECONNREFUSED/);
  });

  it('--help documents it', async () => {
    const r = await run(['--help'], {});
    assert.equal(r.code, 0);
    assert.match(r.stdout, /poe-proxy models\s+list Poe's live models with prices/);
  });
});
