// Builds what the bench runs, into its own directory (bench/results/build, gitignored), so it never
// clobbers dist/ or anyone's out dir: the shipped bundles as `--production` makes them (cli, token
// worker, extension) and one support bundle with the fake upstream and the core's counter and clipper.
import * as esbuild from 'esbuild';
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_DIR = path.join(ROOT, 'bench', 'results', 'build');

// Same options as esbuild.mjs --production.
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: false,
  minify: true,
  legalComments: 'none',
  logLevel: 'error',
  absWorkingDir: ROOT,
  define: { 'process.env.NODE_ENV': '"production"' },
};

const SUPPORT_ENTRY = `
export { FakePoe } from './test/support/fake/server';
export { openStream } from './test/support/rawClient';
export { createTokenCounter } from './src/core/tokens';
export { createTokenEngine } from './src/core/tokens/engine';
export { jsTiktokenEngine } from './test/support/jsTiktoken';
export { clipMessages } from './src/core/exchange/clip';
export { SseParser } from './src/core/poe/sse';
export { EventAligner } from './src/core/exchange/relay';
export { Ledger } from './src/core/store/ledger';
export { exportHistoryCsv, loadHistory, loadOlder } from './src/vscode/historyData';
`;

export async function buildForBench() {
  const started = Date.now();
  await Promise.all([
    esbuild
      .build({ ...common, entryPoints: { extension: 'src/vscode/extension.ts' }, outdir: BUILD_DIR, external: ['vscode'], metafile: true })
      .then((r) => (meta.extension = r.metafile)),
    esbuild.build({ ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: BUILD_DIR, banner: { js: '#!/usr/bin/env node' } }),
    esbuild.build({ ...common, entryPoints: { tokenWorker: 'src/core/tokens/worker.ts' }, outdir: BUILD_DIR }),
    // Not minified: the fake and the clipper are only driven by the bench, stack traces stay readable.
    esbuild.build({
      ...common,
      minify: false,
      stdin: { contents: SUPPORT_ENTRY, resolveDir: ROOT, loader: 'ts', sourcefile: 'bench-support.ts' },
      outfile: path.join(BUILD_DIR, 'benchSupport.js'),
    }),
  ]);
  const size = (f) => statSync(path.join(BUILD_DIR, f)).size;
  return {
    ms: Date.now() - started,
    dir: BUILD_DIR,
    cli: path.join(BUILD_DIR, 'cli.js'),
    support: path.join(BUILD_DIR, 'benchSupport.js'),
    sizes: { extension: size('extension.js'), cli: size('cli.js'), tokenWorker: size('tokenWorker.js') },
    extensionInputs: topInputs(meta.extension),
  };
}

const meta = {};

/** The largest inputs of a bundle (bytes in the output), to show what the extension ships. */
function topInputs(metafile, n = 8) {
  if (!metafile) return [];
  const out = Object.values(metafile.outputs).find((o) => o.entryPoint);
  if (!out) return [];
  return Object.entries(out.inputs)
    .map(([file, v]) => ({ file, bytes: v.bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, n);
}
