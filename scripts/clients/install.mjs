#!/usr/bin/env node
// Installs the pinned real clients of the client-compatibility suite (test/clients/) from npm into a
// cache outside the tracked tree, one npm prefix per client (their dependency trees must not mix).
// Idempotent: a marker file per install key makes a second run return at once. Recipes and the
// versions that run on Node 20: /work/shared/notes/real-clients.md.
//
//   node scripts/clients/install.mjs            install (or verify) everything; prints the marker path
//   import { ensureClients } from './install.mjs'; const { dir, clients } = await ensureClients()
//
// Env: POE_PROXY_CLIENTS_DIR    cache root (default ~/.cache/poe-proxy-clients); the install goes in <root>/<key>
//      POE_PROXY_CLIENTS_FORCE=1  reinstall even if the marker exists
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the install steps change, so old installs are redone. */
const LAYOUT = 1;

/**
 * One entry per client: the npm packages it is made of (pinned) and the executable it runs.
 * `libs` holds the libraries the suite's library scenarios import (no executable).
 * opencode 1.18 and Kilo 7.7 bundle their `@ai-sdk/openai-compatible` provider (nothing to seed);
 * their background install of `@opencode-ai/plugin` fails fast offline (npm_config_offline in the
 * sandbox) and they go on without it.
 */
export const CLIENTS = {
  'claude-code': { packages: ['@anthropic-ai/claude-code@2.1.197'], bin: 'claude' },
  codex: { packages: ['@openai/codex@0.171.0'], bin: 'codex' },
  opencode: { packages: ['opencode-ai@1.18.33'], bin: 'opencode' },
  continue: { packages: ['@continuedev/cli@1.5.47'], bin: 'cn' },
  cline: { packages: ['cline@3.0.65'], bin: 'cline' },
  qwen: { packages: ['@qwen-code/qwen-code@0.15.10'], bin: 'qwen' },
  // 7.8.1 was published without its linux-x64 binary package: 7.7.7 is the newest that installs.
  kilo: { packages: ['@kilocode/cli@7.7.7'], bin: 'kilo' },
  libs: { packages: ['ai@6.0.326', '@ai-sdk/openai-compatible@2.0.92', 'zod@4.6.7', '@langchain/openai@1.5.8', '@langchain/core@1.4.0'] },
};

export const INSTALL_KEY = (() => {
  const h = createHash('sha256').update(JSON.stringify({ LAYOUT, CLIENTS })).digest('hex').slice(0, 12);
  return `clients-l${LAYOUT}-${h}`;
})();

export function installDir() {
  const root = process.env.POE_PROXY_CLIENTS_DIR || path.join(os.homedir(), '.cache', 'poe-proxy-clients');
  return path.join(root, INSTALL_KEY);
}

/** Version of an npm spec like '@scope/name@1.2.3' → '1.2.3'. */
export function specVersion(spec) {
  return spec.slice(spec.lastIndexOf('@') + 1);
}
export function specName(spec) {
  return spec.slice(0, spec.lastIndexOf('@'));
}

const T0 = Date.now();
function log(msg) {
  console.log(`[clients install ${String(Math.round((Date.now() - T0) / 1000)).padStart(3)}s] ${msg}`);
}

function sh(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...opts }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve(stdout);
    });
  });
}

/** Three tries: a registry hiccup should not fail CI. */
async function retry(what, fn) {
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (e) {
      if (n >= 3) throw e;
      log(
        `${what}: attempt ${n} failed (${String(e.stderr || e.message)
          .trim()
          .split('\n')
          .slice(-3)
          .join(' | ')}); retrying in ${n * 5} s`,
      );
      await new Promise((r) => setTimeout(r, n * 5000));
    }
  }
}

/** npm install <packages> into its own prefix dir (own package.json, so npm never walks up into the repo). */
async function npmInstall(prefix, packages) {
  // Per-prefix marker: after a failed run, only the clients that did not finish are installed again.
  const done = path.join(prefix, '.installed.json');
  if (readMarker(done)?.packages?.join(' ') === packages.join(' ')) return false;
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true });
  writeFileSync(path.join(prefix, 'package.json'), JSON.stringify({ name: `poe-proxy-client-${path.basename(prefix)}`, private: true }));
  const env = {
    ...process.env,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
  };
  await retry(`npm install ${packages.join(' ')}`, () => sh('npm', ['install', '--no-package-lock', '--no-save', ...packages], { cwd: prefix, env }));
  writeFileSync(done, JSON.stringify({ packages }) + '\n');
  return true;
}

function readMarker(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** What the runner needs: per client its version, its executable (absolute) and its node_modules. */
function describe(dir) {
  const clients = {};
  for (const [id, c] of Object.entries(CLIENTS)) {
    const prefix = path.join(dir, id);
    clients[id] = {
      version: specVersion(c.packages[0]),
      packages: c.packages,
      prefix,
      nodeModules: path.join(prefix, 'node_modules'),
      bin: c.bin ? path.join(prefix, 'node_modules', '.bin', c.bin) : undefined,
    };
  }
  return clients;
}

function complete(dir, clients) {
  return Object.values(clients).every((c) => existsSync(c.nodeModules) && (!c.bin || existsSync(c.bin)));
}

/**
 * Installs what is missing (two clients at a time: the machine has two cores) and writes the marker.
 * Returns { dir, clients, cached } where cached says nothing had to be installed.
 */
export async function ensureClients({ force = process.env.POE_PROXY_CLIENTS_FORCE === '1' } = {}) {
  const dir = installDir();
  const marker = path.join(dir, 'clients.json');
  const clients = describe(dir);
  const m = readMarker(marker);
  if (!force && m?.key === INSTALL_KEY && complete(dir, clients)) {
    return { dir, clients, cached: true };
  }
  mkdirSync(dir, { recursive: true });
  rmSync(marker, { force: true });
  log(`installing ${Object.keys(CLIENTS).length} clients into ${dir}`);
  const queue = Object.entries(CLIENTS).map(([id, c]) => ({ what: id, prefix: path.join(dir, id), packages: c.packages }));
  const worker = async () => {
    for (let j = queue.shift(); j; j = queue.shift()) {
      const t = Date.now();
      const installed = await npmInstall(j.prefix, j.packages);
      log(`${j.what}: ${j.packages.join(' ')} (${installed ? `${Math.round((Date.now() - t) / 1000)} s` : 'already there'})`);
    }
  };
  await Promise.all([worker(), worker()]);
  if (!complete(dir, clients)) {
    const missing = Object.entries(clients)
      .filter(([, c]) => c.bin && !existsSync(c.bin))
      .map(([id, c]) => `${id} (${c.bin})`);
    throw new Error(`clients install incomplete: missing ${missing.join(', ') || 'node_modules'}`);
  }
  writeFileSync(marker, JSON.stringify({ key: INSTALL_KEY, installedAt: new Date().toISOString(), clients: CLIENTS }, null, 2) + '\n');
  // Installs for other pins are ~2 GB each: keep only this one.
  for (const name of readdirSync(path.dirname(dir))) {
    if (name !== INSTALL_KEY && /^clients-l\d+-[0-9a-f]{12}$/.test(name)) {
      log(`removing the stale install ${name}`);
      rmSync(path.join(path.dirname(dir), name), { recursive: true, force: true });
    }
  }
  log(`done in ${Math.round((Date.now() - T0) / 1000)} s`);
  return { dir, clients, cached: false };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  ensureClients()
    .then(({ dir, cached }) => {
      log(cached ? `already installed (${INSTALL_KEY}) in ${dir}` : `installed in ${dir}`);
    })
    .catch((e) => {
      console.error(`clients install failed: ${e.message}\n${e.stderr ?? ''}`);
      process.exit(1);
    });
}
