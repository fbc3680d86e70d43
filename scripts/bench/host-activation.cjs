// extensionTestsPath module for the bench (run by scripts/vscode-host/run-host.mjs inside a real VS Code
// extension host): reads the activation time the extension measured itself (PoeProxyApi.activationMs,
// from activate's entry to its return), then times a tokenizer cold start inside the same host with the
// bench's token counter, and how long the host's event loop was blocked meanwhile. Writes JSON to
// $BENCH_HOST_OUT and prints the HOST-RESULT line the runner expects.
const fs = require('node:fs');

const EXTENSION_ID = 'poe-proxy.poe-proxy-vscode';

async function tokenizerColdStart(supportPath) {
  const { createTokenCounter } = require(supportPath);
  const counter = createTokenCounter({ timeoutMs: 60_000, idleMs: 0 });
  let last = performance.now();
  let maxGapMs = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  const n = await counter.countOne('Hello from the VS Code extension host.');
  const ms = performance.now() - t0;
  clearInterval(iv);
  await counter.dispose();
  return { ms, maxEventLoopGapMs: maxGapMs, tokens: n };
}

async function startProfile() {
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (m, p) => new Promise((res, rej) => session.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return { session, post };
}

async function stopProfile({ session, post }, file) {
  const { profile } = await post('Profiler.stop');
  fs.writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
}

exports.run = async function run() {
  console.log('HOST-START bench: activation');
  const vscode = require('vscode');
  const result = { passed: 0, failed: 0, pending: 0, failures: [] };
  try {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    if (!ext) throw new Error(`${EXTENSION_ID} is not installed in this host`);
    const wasActive = ext.isActive;
    // Optional CPU profile of the activation (module load + activate), when this module gets to trigger it.
    const session = !wasActive && process.env.BENCH_HOST_PROFILE ? await startProfile() : undefined;
    const t0 = performance.now();
    const api = wasActive ? ext.exports : await ext.activate();
    const loadAndActivateMs = wasActive ? null : performance.now() - t0;
    if (session) await stopProfile(session, process.env.BENCH_HOST_PROFILE);
    await api.ready;
    const data = { activationMs: api.activationMs, loadAndActivateMs, wasActive, vscodeVersion: vscode.version, extensionPath: ext.extensionPath };
    if (process.env.BENCH_SUPPORT) data.tokenizer = await tokenizerColdStart(process.env.BENCH_SUPPORT);
    console.log(`BENCH-ACTIVATION ${JSON.stringify(data)}`);
    if (process.env.BENCH_HOST_OUT) fs.writeFileSync(process.env.BENCH_HOST_OUT, JSON.stringify(data));
    result.passed = 1;
  } catch (err) {
    result.failed = 1;
    result.failures.push(String(err && err.stack ? err.stack : err));
  }
  console.log(`HOST-RESULT ${JSON.stringify(result)}`);
  if (result.failed) throw new Error(result.failures[0]);
};
