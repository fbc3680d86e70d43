// Bundles the extension, the headless CLI, the tokenizer worker and the cost-history webview script.
// `--production` minifies; `--watch` rebuilds on change.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': JSON.stringify(production ? 'production' : 'development') },
};

const builds = [
  { ...common, entryPoints: { extension: 'src/vscode/extension.ts' }, outdir: 'dist', external: ['vscode'] },
  { ...common, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  // Tokenizer ranks live only in the worker bundle so the extension bundle stays small.
  { ...common, entryPoints: { tokenWorker: 'src/core/tokens/worker.ts' }, outdir: 'dist' },
  // Cost-history webview script: runs in the webview (browser), loaded through asWebviewUri. Its own
  // folder, so the webview's localResourceRoots expose this bundle and not the extension's.
  { ...common, platform: 'browser', target: 'chrome120', format: 'iife', entryPoints: { history: 'src/webview/history.ts' }, outdir: 'dist/webview' },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  const started = Date.now();
  await Promise.all(builds.map((b) => esbuild.build(b)));
  console.log(`esbuild: ${builds.length} bundles in ${Date.now() - started} ms${production ? ' (production)' : ''}`);
}
