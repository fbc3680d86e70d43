// Runs the end-to-end suite: every out/test/e2e/*.e2e.js (compiled from test/e2e/*.e2e.ts) against
// a real workbench (code-server + Chromium), one fresh code-server per module. The module contract
// is typed in test/e2e/harness.d.ts: `export async function run(ctx)`, ctx.step(name, fn) counts
// a pass or a fail.
//
//   import { runSuite } from './run-e2e.mjs'; await runSuite({ root })  ->  { passed, failed, pending }
//   node scripts/vscode-host/run-e2e.mjs [--no-build] [filter]
//
// Env: VSCODE_HOST_EXTENSION_PATH  extension under development (default: root)
//      VSCODE_HOST_E2E_DIR         where the *.e2e.js modules are (default: root/out/test/e2e)
//      VSCODE_E2E_FILTER           only modules whose name contains this
//      VSCODE_E2E_TIMEOUT_MS       bound for the whole suite (default 900000)
//      VSCODE_E2E_HEADED=1         show the browser (needs a display)
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  REPO_ROOT,
  ensureInstalled,
  startCodeServer,
  launchBrowser,
  openWorkbench,
  waitForWorkbenchReady,
  runCommand,
  statusBarText,
  findWebviewFrame,
  screenshot,
  withTimeout,
  writeUserSettings,
} from './host.mjs';

const DEFAULT_STEP_TIMEOUT = 60_000;
const DEFAULT_MODULE_TIMEOUT = 240_000;

class StepFailure extends Error {}

export function discoverE2e(dir, filter) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.e2e.js'))
    .filter((f) => !filter || f.includes(filter))
    .sort()
    .map((f) => path.join(dir, f));
}

async function runModule(file, { root, extensionDevelopmentPath, artifactsDir, browser, totals, deadline }) {
  const name = path.basename(file, '.e2e.js');
  const t0 = Date.now();
  console.log(`  ${name}`);
  const counts = { passed: 0, failed: 0, pending: 0 };
  let mod;
  try {
    const ns = await import(pathToFileURL(file).href);
    mod = typeof ns.run === 'function' ? ns : ns.default;
    if (typeof mod?.run !== 'function') throw new Error('does not export run(ctx)');
  } catch (e) {
    console.log(`    ✗ load ${path.basename(file)}: ${e.message}`);
    totals.failed++;
    return;
  }

  const moduleTimeout = Math.min(mod.timeoutMs ?? DEFAULT_MODULE_TIMEOUT, Math.max(10_000, deadline - Date.now()));
  const workspace = mkdtempSync(path.join(os.tmpdir(), `vscode-e2e-${name}-`));
  let prep = {};
  let server;
  let context;
  let page;
  /** Windows opened by ctx.openWindow(), closed before the first one. */
  const extraPages = [];
  const safe = name.replace(/[^\w.-]+/g, '_');
  const shot = (label) => (page ? screenshot(page, artifactsDir, `e2e-${safe}-${label}`).catch(() => undefined) : Promise.resolve(undefined));

  const step = async (stepName, fn, opts = {}) => {
    const s0 = Date.now();
    try {
      const value = await withTimeout(Promise.resolve().then(fn), opts.timeout ?? DEFAULT_STEP_TIMEOUT, `step "${stepName}"`);
      counts.passed++;
      console.log(`    ✔ ${stepName} (${Date.now() - s0} ms)`);
      return value;
    } catch (e) {
      counts.failed++;
      const file = await shot(stepName);
      console.log(`    ✗ ${stepName} (${Date.now() - s0} ms): ${e?.stack ?? e}`);
      if (file) console.log(`      screenshot: ${path.relative(root, file)}`);
      if (opts.soft) return undefined;
      throw new StepFailure(`step "${stepName}" failed`);
    }
  };
  const skip = (stepName, reason) => {
    counts.pending++;
    console.log(`    - ${stepName}${reason ? ` (${reason})` : ''}`);
  };

  const body = async () => {
    if (typeof mod.prepare === 'function') prep = (await mod.prepare()) ?? {};
    for (const [rel, content] of Object.entries(prep.workspaceFiles ?? {})) {
      const p = path.join(workspace, rel);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, content);
    }
    const serverLog = path.join(artifactsDir, `e2e-${safe}-code-server.log`);
    writeFileSync(serverLog, '');
    // prepare() may build the package itself (so the test covers `npm run package` too).
    const vsixPath = prep.vsix ?? mod.vsix;
    const vsix = vsixPath ? path.resolve(root, vsixPath) : undefined;
    server = await startCodeServer({
      settings: { ...(mod.settings ?? {}), ...(prep.settings ?? {}) },
      env: prep.env,
      installVsix: vsix,
      workspaceTrust: prep.workspaceTrust,
      userDataDir: prep.userDataDir,
      logFile: serverLog,
      echo: process.env.VSCODE_HOST_ECHO === '1',
    });
    // A context of its own (not browser.newPage()'s), so openWindow() can add pages to it.
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    const consoleLog = path.join(artifactsDir, `e2e-${safe}-browser-console.log`);
    writeFileSync(consoleLog, '');
    page.on('console', (m) => writeFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`, { flag: 'a' }));
    page.on('pageerror', (e) => writeFileSync(consoleLog, `[pageerror] ${e.message}\n`, { flag: 'a' }));
    await openWorkbench(page, { port: server.port, folder: workspace, extensionDevelopmentPath: vsix ? undefined : extensionDevelopmentPath });
    await waitForWorkbenchReady(page);
    const userDataDir = server.userDataDir;
    const helpersFor = (p, prefix) => ({
      runCommand: (title, o) => runCommand(p, title, o),
      statusBarText: (match, o) => statusBarText(p, match, o),
      findWebviewFrame: (pred, o) => findWebviewFrame(p, pred, o),
      screenshot: (label) => screenshot(p, artifactsDir, `e2e-${safe}-${prefix}${label}`),
      writeUserSettings: (s) => void writeUserSettings(userDataDir, s),
    });
    // Another window on the same folder: a page in the same browser context shares the profile's
    // globalState and secrets (browser storage), and code-server gives it its own extension host.
    const openWindow = async () => {
      const p = await context.newPage();
      extraPages.push(p);
      const n = extraPages.length + 1;
      p.on('console', (m) => writeFileSync(consoleLog, `[window ${n}] [${m.type()}] ${m.text()}\n`, { flag: 'a' }));
      await openWorkbench(p, { port: server.port, folder: workspace, extensionDevelopmentPath: vsix ? undefined : extensionDevelopmentPath });
      await waitForWorkbenchReady(p);
      return { page: p, helpers: helpersFor(p, `window${n}-`) };
    };
    const ctx = {
      page,
      browser,
      codeServer: server,
      root,
      workspace,
      artifactsDir,
      name,
      step,
      skip,
      log: (...args) => console.log('     ', ...args),
      helpers: helpersFor(page, ''),
      openWindow,
    };
    await mod.run(ctx);
  };

  try {
    await withTimeout(body(), moduleTimeout, `e2e module ${name}`);
  } catch (e) {
    if (!(e instanceof StepFailure)) {
      // Setup failures, timeouts and errors thrown outside step() count as one failure.
      counts.failed++;
      const file = await shot('error');
      console.log(`    ✗ ${name}: ${e?.stack ?? e}`);
      if (file) console.log(`      screenshot: ${path.relative(root, file)}`);
      if (server && !page) console.log(`      --- code-server output ---\n${server.output().slice(-2000)}`);
    }
  } finally {
    await withTimeout(Promise.resolve(prep.cleanup?.()), 15_000, 'prepare().cleanup').catch((e) => console.log(`      cleanup: ${e.message}`));
    for (const p of extraPages) await withTimeout(p.close(), 10_000, 'page close').catch(() => {});
    await withTimeout(page?.close() ?? Promise.resolve(), 10_000, 'page close').catch(() => {});
    await withTimeout(context?.close() ?? Promise.resolve(), 10_000, 'context close').catch(() => {});
    await withTimeout(server?.stop() ?? Promise.resolve(), 20_000, 'code-server stop').catch(() => {});
    rmSync(workspace, { recursive: true, force: true });
    if (prep.userDataDir) rmSync(prep.userDataDir, { recursive: true, force: true, maxRetries: 3 });
  }
  console.log(`    (${counts.passed} passed, ${counts.failed} failed, ${counts.pending} pending in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  totals.pending += counts.pending;
}

export async function runSuite({
  root = REPO_ROOT,
  extensionDevelopmentPath = process.env.VSCODE_HOST_EXTENSION_PATH || root,
  e2eDir = process.env.VSCODE_HOST_E2E_DIR || path.join(root, 'out', 'test', 'e2e'),
  filter = process.env.VSCODE_E2E_FILTER,
  timeoutMs = Number(process.env.VSCODE_E2E_TIMEOUT_MS) || 900_000,
  artifactsDir = path.join(root, 'test-results'),
} = {}) {
  const totals = { passed: 0, failed: 0, pending: 0 };
  const files = discoverE2e(e2eDir, filter);
  if (files.length === 0) {
    console.log(`e2e: no *.e2e.js in ${path.relative(root, e2eDir) || e2eDir}; nothing to run`);
    return totals;
  }
  const started = Date.now();
  const deadline = started + timeoutMs;
  try {
    ensureInstalled();
  } catch (e) {
    console.log(`e2e: FAILED: ${e.message}`);
    return { passed: 0, failed: 1, pending: 0 };
  }
  mkdirSync(artifactsDir, { recursive: true });
  let browser;
  try {
    browser = await launchBrowser({ headless: process.env.VSCODE_E2E_HEADED !== '1' });
    for (const file of files) {
      if (Date.now() > deadline) {
        console.log(`e2e: suite time budget (${timeoutMs} ms) used up; ${path.basename(file)} not run`);
        totals.failed++;
        continue;
      }
      await runModule(file, { root, extensionDevelopmentPath, artifactsDir, browser, totals, deadline });
    }
  } catch (e) {
    console.log(`e2e: FAILED: ${e?.stack ?? e}`);
    totals.failed++;
  } finally {
    await withTimeout(browser?.close() ?? Promise.resolve(), 15_000, 'browser close').catch(() => {});
  }
  console.log(`e2e: ${totals.passed} passed, ${totals.failed} failed, ${totals.pending} pending in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return totals;
}

// Direct run: node scripts/vscode-host/run-e2e.mjs [--no-build] [filter]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = REPO_ROOT;
  const args = process.argv.slice(2);
  if (!args.includes('--no-build')) {
    const require = createRequire(import.meta.url);
    const build = (label, a) => {
      try {
        execFileSync(process.execPath, a, { cwd: root, stdio: 'inherit' });
      } catch {
        console.log(`e2e: warning: ${label} reported errors; continuing with what was emitted`);
      }
    };
    build('tsc -p tsconfig.test.json', [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.test.json']);
    if (!process.env.VSCODE_HOST_EXTENSION_PATH || path.resolve(process.env.VSCODE_HOST_EXTENSION_PATH) === root) build('node esbuild.mjs', ['esbuild.mjs']);
  }
  const filter = args.find((a) => !a.startsWith('--'));
  const r = await runSuite({ root, ...(filter ? { filter } : {}) });
  console.log(`\n${r.passed} passed, ${r.failed} failed${r.pending ? `, ${r.pending} skipped` : ''}`);
  process.exit(r.failed > 0 || r.passed === 0 ? 1 : 0);
}
