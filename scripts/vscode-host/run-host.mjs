// Runs the host test suite (test/host/**/*.test.ts, compiled to out/test/host/) with mocha inside a
// real VS Code extension host: code-server + Chromium, the workbench opened with a `payload` that
// names the extension under development and out/test/host/index.js as extensionTestsPath.
//
//   import { runSuite } from './run-host.mjs'; await runSuite({ root })  ->  { passed, failed, pending }
//   node scripts/vscode-host/run-host.mjs [--no-build]   (compiles tests + bundles first unless --no-build)
//
// Env: VSCODE_HOST_EXTENSION_PATH  extension under development (default: root)
//      VSCODE_HOST_TESTS_PATH      extensionTestsPath module (default: root/out/test/host/index.js)
//      VSCODE_HOST_WORKSPACE       folder to open (default: a fresh empty temp folder)
//      VSCODE_HOST_TIMEOUT_MS      whole-suite bound (default 300000)
//      VSCODE_HOST_BOOT_MS         bound on the extension host starting the tests (default 150000); a
//                                  host that never starts them is relaunched once (seen on a fresh
//                                  install on a loaded machine: the extension host connects, then hangs)
//      VSCODE_HOST_ECHO=1          echo code-server's own output to stderr
//      HOST_TEST_GREP              mocha grep inside the host
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as util from 'node:util';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureInstalled, startCodeServer, launchBrowser, openWorkbench, withTimeout, screenshot, REPO_ROOT } from './host.mjs';

const RESULT_RE = /HOST-RESULT (\{.*\})/;
const START_RE = /HOST-START\b/;

/** One codeAutomationLog call -> text: args are console-style (format string + values). */
function formatLog(args) {
  const list = Array.isArray(args) ? args : [args];
  return util.format(...list).replace(/%c/g, '');
}

export async function runSuite(options = {}) {
  const first = await runOnce(options);
  if (!first.bootHang) return first.counts;
  console.log('host: the extension host never started the tests; relaunching code-server and the browser once');
  return (await runOnce(options)).counts;
}

async function runOnce({
  root = REPO_ROOT,
  extensionDevelopmentPath = process.env.VSCODE_HOST_EXTENSION_PATH || root,
  extensionTestsPath = process.env.VSCODE_HOST_TESTS_PATH || path.join(root, 'out', 'test', 'host', 'index.js'),
  workspace = process.env.VSCODE_HOST_WORKSPACE,
  timeoutMs = Number(process.env.VSCODE_HOST_TIMEOUT_MS) || 300_000,
  bootMs = Number(process.env.VSCODE_HOST_BOOT_MS) || 150_000,
  settings = {},
  artifactsDir = path.join(root, 'test-results'),
} = {}) {
  const started = Date.now();
  const fail = (msg) => {
    console.log(`host: FAILED: ${msg}`);
    return { counts: { passed: 0, failed: 1, pending: 0 } };
  };
  if (!existsSync(extensionTestsPath)) return fail(`no ${extensionTestsPath} (compile with: tsc -p tsconfig.test.json)`);
  if (!existsSync(path.join(extensionDevelopmentPath, 'package.json'))) return fail(`no package.json in ${extensionDevelopmentPath}`);

  try {
    ensureInstalled();
  } catch (e) {
    return fail(e.message);
  }

  mkdirSync(artifactsDir, { recursive: true });
  const serverLog = path.join(artifactsDir, 'host-code-server.log');
  const consoleLog = path.join(artifactsDir, 'host-browser-console.log');
  const workbenchLog = path.join(artifactsDir, 'host-workbench.log');
  for (const f of [serverLog, consoleLog, workbenchLog]) writeFileSync(f, '');
  let relaying = false;
  const tmpWorkspace = workspace ? undefined : mkdtempSync(path.join(os.tmpdir(), 'vscode-host-ws-'));
  const folder = workspace || tmpWorkspace;

  let server;
  let browser;
  let page;
  let result;
  let exitCode;
  const lines = [];
  try {
    server = await startCodeServer({ settings, logFile: serverLog, echo: process.env.VSCODE_HOST_ECHO === '1' });
    console.log(`host: code-server on ${server.url} (extension ${extensionDevelopmentPath})`);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      try {
        writeFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`, { flag: 'a' });
      } catch {
        /* ignore */
      }
    });
    page.on('pageerror', (e) => writeFileSync(consoleLog, `[pageerror] ${e.message}\n`, { flag: 'a' }));

    let resolveResult;
    const resultSeen = new Promise((r) => (resolveResult = r));
    let resolveStart;
    const startSeen = new Promise((r) => (resolveStart = r));
    const { exitCode: exitPromise } = await openWorkbench(page, {
      port: server.port,
      folder,
      extensionDevelopmentPath,
      extensionTestsPath,
      timeout: Math.min(timeoutMs, 120_000),
      onLog: (type, args) => {
        // Everything goes to the log file; stdout gets the lines from the test run on (the
        // workbench's own chatter before it is only printed when the run fails to report).
        for (const line of formatLog(args).split('\n')) {
          lines.push(line);
          writeFileSync(workbenchLog, `[${type}] ${line}\n`, { flag: 'a' });
          if (START_RE.test(line)) {
            relaying = true;
            resolveStart();
          }
          const m = RESULT_RE.exec(line);
          if (m) {
            try {
              result = JSON.parse(m[1]);
              resolveResult();
            } catch {
              /* keep waiting for a valid one */
            }
          }
          if (relaying) process.stdout.write(`  ${line}\n`);
        }
      },
    });
    // Wait for the exit code (VS Code calls codeAutomationExit when run() settles), or the result
    // line plus a short grace period, bounded by the suite timeout; also stop if code-server dies.
    const serverDied = new Promise((r) => {
      const t = setInterval(() => server.exited && (clearInterval(t), r('server-exited')), 500);
      t.unref();
    });
    const outcome = await withTimeout(
      Promise.race([
        exitPromise.then((c) => ({ exit: c })),
        resultSeen.then(() =>
          withTimeout(exitPromise, 15_000, 'exit after HOST-RESULT').then(
            (c) => ({ exit: c }),
            () => ({ exit: undefined }),
          ),
        ),
        serverDied.then(() => ({ died: true })),
        withTimeout(startSeen, bootMs, 'the extension host starting the tests').then(
          () => new Promise(() => {}),
          (e) => ({ error: e }),
        ),
      ]),
      timeoutMs - (Date.now() - started),
      'host test run (no exit code from the extension host)',
    ).catch((e) => ({ error: e }));
    exitCode = outcome.exit;
    if (outcome.died) throw new Error('code-server exited during the run');
    if (outcome.error) throw outcome.error;
  } catch (e) {
    console.log(`host: ${e.message}`);
    if (server) console.log(`host: --- last code-server output ---\n${server.output().slice(-3000)}`);
  } finally {
    if (page && (!result || result.failed > 0 || (exitCode !== 0 && exitCode !== undefined))) {
      await screenshot(page, artifactsDir, 'host-final')
        .then((f) => console.log(`host: screenshot ${path.relative(root, f)}`))
        .catch(() => {});
    }
    await withTimeout(browser?.close() ?? Promise.resolve(), 15_000, 'browser close').catch(() => {});
    await withTimeout(server?.stop() ?? Promise.resolve(), 20_000, 'code-server stop').catch(() => {});
    if (tmpWorkspace) rmSync(tmpWorkspace, { recursive: true, force: true });
  }

  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (!result && !relaying && lines.length) console.log(`host: --- last workbench log lines ---\n${lines.slice(-40).join('\n')}`);
  if (!result) {
    if (!relaying) console.log(`host: no HOST-START line from the extension host in ${secs} s`);
    const failed = fail(
      `the extension host never reported a HOST-RESULT line (exit code ${exitCode ?? 'none'}, ${secs} s; ` +
        `${lines.length} log lines; see test-results/host-*.log)`,
    );
    return { ...failed, bootHang: !relaying };
  }
  const counts = { passed: result.passed | 0, failed: result.failed | 0, pending: result.pending | 0 };
  if (exitCode !== undefined && exitCode !== 0 && counts.failed === 0) {
    console.log(`host: extension host exit code ${exitCode} although no test failed; counting one failure`);
    counts.failed = 1;
  }
  console.log(`host: ${counts.passed} passed, ${counts.failed} failed, ${counts.pending} pending in ${secs} s (exit code ${exitCode ?? 'none'})`);
  return { counts };
}

// Direct run: node scripts/vscode-host/run-host.mjs [--no-build]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = REPO_ROOT;
  if (!process.argv.includes('--no-build')) {
    const require = createRequire(import.meta.url);
    const step = (label, args) => {
      try {
        execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
      } catch {
        console.log(`host: warning: ${label} reported errors; continuing with what was emitted`);
      }
    };
    step('tsc -p tsconfig.test.json', [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.test.json']);
    if (!process.env.VSCODE_HOST_EXTENSION_PATH || path.resolve(process.env.VSCODE_HOST_EXTENSION_PATH) === root) step('node esbuild.mjs', ['esbuild.mjs']);
  }
  const r = await runSuite({ root });
  console.log(`\n${r.passed} passed, ${r.failed} failed${r.pending ? `, ${r.pending} skipped` : ''}`);
  process.exit(r.failed > 0 || r.passed === 0 ? 1 : 0);
}
