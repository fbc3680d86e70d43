/**
 * Adversarial review, a malicious repository: the headless proxy started inside a clone whose `.env`
 * names another upstream, opens the proxy up, or swaps the key (item 2).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configFromEnv, dotEnvWarnings, KEY_BOUND_VARS, loadDotEnv } from '../../src/cli/env';
import { postChat } from '../support/rawClient';
import { startScriptedPoe, type ScriptedPoe } from '../support/scriptedPoe';

const USER_KEY = 'poe-user-key-0123456789';

function repoWithDotEnv(text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poe-proxy-repo-'));
  writeFileSync(path.join(dir, '.env'), text);
  return dir;
}

const HOSTILE_DOTENV = (trapUrl: string) =>
  [
    'POE_BASE_URL=' + trapUrl,
    'HOST=0.0.0.0',
    'PROXY_API_KEY=attacker-known-key-123',
    'ALLOWED_ORIGINS=https://evil.example',
    'ALLOWED_HOSTS=evil.example',
    'POE_API_KEY=attacker-key-999999',
    'POE_TOKEN=attacker-token-999999',
    'MODELS_FILE=./cheap-looking-models.yaml',
    'PORT=0',
    'FOOTER=false',
  ].join('\n');

describe('adversarial: a .env the key did not come from (item 2)', () => {
  it('with the key from the environment, a .env sets none of the key-bound settings, and says so', () => {
    const dir = repoWithDotEnv(HOSTILE_DOTENV('http://127.0.0.1:1'));
    const env: NodeJS.ProcessEnv = { POE_API_KEY: USER_KEY };
    const r = loadDotEnv(dir, env)!;
    assert.equal(r.keyFromFile, false);
    for (const k of KEY_BOUND_VARS) if (k !== 'POE_API_KEY') assert.equal(env[k], undefined, `${k} not taken`);
    assert.equal(env.POE_API_KEY, USER_KEY);
    assert.equal(env.FOOTER, 'false', 'harmless settings are still read');
    const c = configFromEnv(env);
    assert.equal(c.poeBaseUrl, 'https://api.poe.com');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.accessKey, undefined);
    const [warning] = dotEnvWarnings(r);
    assert.match(warning, /ignored POE_BASE_URL, HOST, PROXY_API_KEY, ALLOWED_ORIGINS, ALLOWED_HOSTS, POE_TOKEN, MODELS_FILE:/);
  });

  it('POE_TOKEN in the environment counts as the key too (a .env POE_API_KEY would otherwise win)', () => {
    const env: NodeJS.ProcessEnv = { POE_TOKEN: USER_KEY };
    loadDotEnv(repoWithDotEnv(HOSTILE_DOTENV('http://127.0.0.1:1')), env);
    assert.equal(env.POE_API_KEY, undefined);
    assert.equal(env.POE_BASE_URL, undefined);
  });

  it("with the key in the .env (the user's own file), its settings apply, and a changed upstream is warned about", () => {
    const env: NodeJS.ProcessEnv = {};
    const r = loadDotEnv(repoWithDotEnv(`POE_API_KEY=${USER_KEY}\nPOE_BASE_URL=http://127.0.0.1:4321\n`), env)!;
    assert.equal(r.keyFromFile, true);
    assert.equal(env.POE_BASE_URL, 'http://127.0.0.1:4321');
    assert.deepEqual(r.ignored, []);
    assert.match(dotEnvWarnings(r).join('\n'), /POE_BASE_URL=http:\/\/127.0.0.1:4321: your Poe key is sent to that server/);
  });

  it('without any key, a .env still cannot set the upstream (no key came from it)', () => {
    const env: NodeJS.ProcessEnv = {};
    loadDotEnv(repoWithDotEnv('POE_BASE_URL=http://127.0.0.1:1\n'), env);
    assert.equal(env.POE_BASE_URL, undefined);
  });

  describe('the headless CLI in a hostile clone', function () {
    this.timeout(20_000);
    let trap: ScriptedPoe;
    before(async () => {
      trap = await startScriptedPoe((_req, res) => void res.end('{}'));
    });
    after(() => trap.close());

    it("never sends the user's key to the server the .env names, and warns", async () => {
      const cwd = repoWithDotEnv(HOSTILE_DOTENV(trap.url));
      const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
      const child = spawn(process.execPath, [cli], {
        cwd,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', POE_API_KEY: USER_KEY, POINTS_CUTOFF: '0', DATA_DIR: cwd },
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (c) => {
          stdout += c;
          const m = /listening on (http:\/\/[^\s]+)/.exec(stdout);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`cli exited ${code}: ${stderr}`)));
      });
      try {
        assert.match(url, /^http:\/\/127\.0\.0\.1:/, 'HOST from the .env is not taken');
        assert.match(stdout, /upstream https:\/\/api\.poe\.com/);
        assert.match(stderr, /\[warn\].*ignored POE_BASE_URL/);
        // Poe itself is unreachable here: whatever happens, the trap must see nothing.
        await postChat(url, { model: 'GPT-4.1', messages: [{ role: 'user', content: 'hi' }] }).catch(() => undefined);
        assert.equal(trap.requests.length, 0);
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    });
  });
});
