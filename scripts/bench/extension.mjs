// Section 4: the extension. Bundle size of the production extension.js (and proof that no tokenizer rank
// file is inside it), activation time measured in a real VS Code extension host (code-server, see
// scripts/vscode-host/), and the tokenizer's load time measured separately (in plain Node and in the host).
//
// The host loads a staged copy of the extension as it ships (package.json, the production bundles,
// models.yaml, media/) from bench/results/ext, so neither dist/ nor the working tree's state matters.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const require = createRequire(import.meta.url);

const RANK_MARKERS = [/js-tiktoken/, /gpt-tokenizer/, /ranks[\\/]/];

export function bundleFacts(build) {
  const inputs = build.extensionInputs;
  const tokenizerInputs = inputs.filter((i) => RANK_MARKERS.some((re) => re.test(i.file)));
  return {
    extensionBytes: build.sizes.extension,
    tokenWorkerBytes: build.sizes.tokenWorker,
    cliBytes: build.sizes.cli,
    tokenizerInExtension: tokenizerInputs.length > 0,
    // What `npm run build` left in dist/ (development build), if any: for comparison only.
    distExtensionBytes: existsSync(path.join(ROOT, 'dist', 'extension.js')) ? statSync(path.join(ROOT, 'dist', 'extension.js')).size : null,
    largestInputs: inputs,
  };
}

/** Tokenizer cold start in plain Node: a fresh counter's worker, spawn → first answer; median of `runs`. */
export async function tokenizerLoad(supportPath, runs = 3) {
  const { createTokenCounter } = require(supportPath);
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const c = createTokenCounter({ timeoutMs: 60_000, idleMs: 0 });
    const t0 = performance.now();
    await c.countOne('hello world');
    ms.push(performance.now() - t0);
    await c.dispose();
  }
  return { workerColdStartMs: median(ms), samples: ms };
}

function stageExtension(build) {
  const dir = path.join(ROOT, 'bench', 'results', 'ext');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  copyFileSync(path.join(ROOT, 'models.yaml'), path.join(dir, 'models.yaml'));
  copyFileSync(path.join(build.dir, 'extension.js'), path.join(dir, 'dist', 'extension.js'));
  copyFileSync(path.join(build.dir, 'tokenWorker.js'), path.join(dir, 'dist', 'tokenWorker.js'));
  if (existsSync(path.join(ROOT, 'media'))) cpSync(path.join(ROOT, 'media'), path.join(dir, 'media'), { recursive: true });
  return dir;
}

/** Activation in the real host, `runs` times (one host start each). */
export async function hostActivation(build, { runs = 1, log = () => {} } = {}) {
  const { runSuite } = await import('../vscode-host/run-host.mjs');
  const extDir = stageExtension(build);
  const out = path.join(ROOT, 'bench', 'results', 'host-activation.json');
  const samples = [];
  const errors = [];
  for (let i = 0; i < runs; i++) {
    rmSync(out, { force: true });
    process.env.BENCH_HOST_OUT = out;
    process.env.BENCH_SUPPORT = build.support;
    log(`host run ${i + 1}/${runs} (code-server + Chromium)…`);
    const t0 = Date.now();
    // The runner reports on stdout; the bench's stdout is its markdown, so the runner talks to stderr.
    const consoleLog = console.log;
    const stdoutWrite = process.stdout.write;
    console.log = (...a) => process.stderr.write(`${a.join(' ')}\n`);
    process.stdout.write = process.stderr.write.bind(process.stderr);
    // autoStart off: activation is what is measured, and the host must not take port 9876.
    const r = await runSuite({
      root: ROOT,
      extensionDevelopmentPath: extDir,
      extensionTestsPath: path.join(HERE, 'host-activation.cjs'),
      settings: { 'poeProxy.autoStart': false },
      artifactsDir: path.join(ROOT, 'bench', 'results', 'host'),
      timeoutMs: 240_000,
    }).finally(() => {
      console.log = consoleLog;
      process.stdout.write = stdoutWrite;
    });
    if (r.failed || !existsSync(out)) {
      errors.push(`host run ${i + 1}: ${r.failed ? 'failed' : 'no result'} (see bench/results/host/)`);
      continue;
    }
    samples.push({ ...JSON.parse(readFileSync(out, 'utf8')), hostRunSeconds: (Date.now() - t0) / 1000 });
  }
  delete process.env.BENCH_HOST_OUT;
  delete process.env.BENCH_SUPPORT;
  return {
    runs: samples.length,
    errors,
    activationMs: median(samples.map((s) => s.activationMs)),
    tokenizerInHostMs: median(samples.map((s) => s.tokenizer?.ms)),
    tokenizerInHostMaxGapMs: median(samples.map((s) => s.tokenizer?.maxEventLoopGapMs)),
    samples,
  };
}
