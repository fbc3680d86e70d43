// Entry point VS Code loads as `extensionTestsPath` (see scripts/vscode-host/run-host.mjs): runs every
// compiled `*.test.js` next to this file with mocha, inside the real extension host (real `vscode` API).
// Prints one machine-readable line, `HOST-RESULT {"passed":N,"failed":N,"pending":N,...}`, which the
// runner parses; rejects when a test failed, so VS Code reports a non-zero exit code too.
import * as fs from 'fs';
import * as path from 'path';
import Mocha = require('mocha');

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(p));
    else if (entry.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: 30_000 });
  // Optional filter, e.g. HOST_TEST_GREP=secret node scripts/test.mjs host
  if (process.env.HOST_TEST_GREP) mocha.grep(process.env.HOST_TEST_GREP);
  const files = findTests(__dirname);
  for (const f of files) mocha.addFile(f);
  console.log(`HOST-START ${files.length} test files in ${__dirname}`);

  return new Promise<void>((resolve, reject) => {
    const failures: string[] = [];
    let runner: Mocha.Runner;
    try {
      runner = mocha.run((failed) => {
        const s = runner.stats ?? { passes: 0, failures: failed, pending: 0 };
        const result = { passed: s.passes, failed: s.failures, pending: s.pending, files: files.length, failures };
        console.log(`HOST-RESULT ${JSON.stringify(result)}`);
        if (failed > 0) reject(new Error(`${failed} host test(s) failed`));
        else resolve();
      });
      runner.on('fail', (test) => failures.push(test.fullTitle()));
    } catch (err) {
      // A test file that throws while loading lands here: report it as one failure.
      console.error(err);
      console.log(`HOST-RESULT ${JSON.stringify({ passed: 0, failed: 1, pending: 0, files: files.length, failures: [`loading tests: ${String(err)}`] })}`);
      reject(err);
    }
  });
}
