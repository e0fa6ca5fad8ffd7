// Bundles the mocha suite that runs inside VS Code's extension host (vscode and mocha stay external).
import * as esbuild from 'esbuild';
import * as path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
await esbuild.build({
  entryPoints: { index: path.join(here, 'suite', 'index.ts') },
  outdir: path.join(here, '..', '..', 'out', 'vscode-tests'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode', 'mocha'],
  mainFields: ['module', 'main'],
});
