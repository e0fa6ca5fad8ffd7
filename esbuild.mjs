// Two bundles, as vscode-eslint does for its client and server (plus the TypeScript compiler's chunk):
// - dist/extension.js runs in VS Code's extension host: `vscode` is external, no native modules.
// - dist/pali.js is the engine and CLI, run in its own Node process: native addons stay external
//   and are loaded from node_modules at run time.
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
};

/** Packages with native addons or large WASM payloads: never bundled. */
const engineExternals = ['onnxruntime-node', 'onnxruntime-web', 'sharp', '@huggingface/transformers'];

/**
 * The TypeScript compiler (the JSX/TSX image finder's parser) is 9 MB: the extension host would parse it at
 * every activation if it were inside extension.js. It is its own file, dist/typescript.js, required on the
 * first JSX/TSX parse.
 */
const typescriptChunk = {
  name: 'typescript-chunk',
  setup(build) {
    build.onResolve({ filter: /^typescript$/ }, () => ({ path: './typescript.js', external: true }));
  },
};

const builds = [
  {
    ...common,
    entryPoints: { extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    external: ['vscode'],
    plugins: [typescriptChunk],
    // Prefer ES module builds: some libraries' UMD builds (jsonc-parser) hide requires from the bundler.
    mainFields: ['module', 'main'],
  },
  {
    ...common,
    entryPoints: { typescript: 'node_modules/typescript/lib/typescript.js' },
    outdir: 'dist',
    sourcemap: false,
    logLevel: 'warning',
  },
  {
    ...common,
    entryPoints: { pali: 'src/engine/cli/main.ts' },
    outdir: 'dist',
    external: engineExternals,
    // `pali alt-text` parses JSX/TSX with the same compiler chunk, loaded only when a JSX/TSX file is read.
    plugins: [typescriptChunk],
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    // The WebGPU probe's child process (src/engine/runtime/webgpuProbe.ts): a script of its own, so that
    // Dawn's stderr and any driver crash stay in that process.
    ...common,
    entryPoints: { webgpuProbe: 'src/engine/runtime/webgpuProbeChild.ts' },
    outdir: 'dist',
    external: engineExternals,
  },
  {
    // The Describe panel's webview script, served from media/ (the webview's only local resource root).
    ...common,
    entryPoints: { describe: 'src/webview/describe.ts' },
    outdir: 'media/build',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
];

// The webview's libraries are served from media/ (its only local resource root), so copy them there.
const vendor = [
  ['node_modules/@vscode-elements/elements/dist/bundled.js', 'media/vendor/vscode-elements.js'],
  ['node_modules/@vscode/codicons/dist/codicon.css', 'media/vendor/codicon.css'],
  ['node_modules/@vscode/codicons/dist/codicon.ttf', 'media/vendor/codicon.ttf'],
];
fs.mkdirSync('media/vendor', { recursive: true });
for (const [from, to] of vendor) fs.copyFileSync(from, to);

if (watch) {
  for (const options of builds) (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
