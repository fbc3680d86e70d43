// Runs the test suites and prints one closing line `N passed, N failed` (CI reads it).
// Usage: node scripts/test.mjs [lint|unit|integration|host|e2e|clients|all]   (default: all)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const which = process.argv[2] ?? 'all';

function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
}

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function runMocha(files, timeout) {
  const Mocha = require('mocha');
  const mocha = new Mocha({ reporter: 'spec', timeout, color: !process.env.CI });
  for (const f of files) mocha.addFile(f);
  return await new Promise((resolve) => {
    const runner = mocha.run(() => resolve({ passed: runner.stats.passes, failed: runner.stats.failures, pending: runner.stats.pending }));
  });
}

const totals = { passed: 0, failed: 0, pending: 0 };
function add(r) {
  totals.passed += r.passed;
  totals.failed += r.failed;
  totals.pending += r.pending ?? 0;
}

try {
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.test.json']);
  // The webview script: DOM lib, no node types (only esbuild compiles it, so only this checks it).
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'src/webview/tsconfig.json']);
  run(process.execPath, ['esbuild.mjs']);
} catch {
  // A compile error is a failure too: still print the closing line CI reads.
  console.log('\nbuild failed (tsc or esbuild, see above)\n0 passed, 1 failed');
  process.exit(1);
}

const suites = which === 'all' ? ['lint', 'unit', 'integration', 'host', 'e2e', 'clients'] : [which];
for (const suite of suites) {
  if (suite === 'lint') {
    // ESLint and Prettier: each is one check that passes or fails, reported like a test.
    console.log('\n== lint (eslint, prettier --check)');
    for (const [name, bin, args] of [
      ['eslint', path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), ['.', '--max-warnings', '0']],
      ['prettier', path.join(root, 'node_modules', 'prettier', 'bin', 'prettier.cjs'), ['--check', '.']],
    ]) {
      const ok = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' }).status === 0;
      console.log(`${ok ? '✔' : '✘'} ${name}${ok ? '' : ' (npm run lint / npm run format to fix)'}`);
      add(ok ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 });
    }
  } else if (suite === 'unit' || suite === 'integration') {
    const files = findTests(path.join(root, 'out', 'test', suite));
    console.log(`\n== ${suite}: ${files.length} files`);
    add(await runMocha(files, suite === 'unit' ? 10_000 : 30_000));
  } else if (suite === 'host' || suite === 'e2e') {
    const script = path.join(root, 'scripts', 'vscode-host', `run-${suite}.mjs`);
    if (!existsSync(script)) continue;
    const { runSuite } = await import(script);
    console.log(`\n== ${suite} (real VS Code host)`);
    add(await runSuite({ root }));
  } else if (suite === 'clients') {
    // The real clients (installed from npm into a cache outside the tree on the first run).
    console.log('\n== clients (real clients against the proxy and the fake Poe)');
    const { ensureClients } = await import('./clients/install.mjs');
    let installed;
    try {
      installed = await ensureClients();
    } catch (e) {
      console.log(`clients: FAILED: install: ${e.message}`);
      add({ passed: 0, failed: 1 });
      continue;
    }
    const { runSuite } = require(path.join(root, 'out', 'test', 'clients', 'run.js'));
    add(await runSuite({ clients: installed.clients }));
  }
}

console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.pending ? `, ${totals.pending} skipped` : ''}`);
process.exit(totals.failed > 0 || totals.passed === 0 ? 1 : 0);
