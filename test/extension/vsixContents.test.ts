/**
 * What a user downloads (scripts/stagePackage.mjs, which `npm run package` packs): the linux-x64 VSIX's
 * folder holds the bundles, one onnxruntime-node binary, onnxruntime-web's Node build with its one
 * WebAssembly build, transformers.js's Node build and sharp for that platform, and none of the files nothing
 * loads (browser builds, sources, type declarations, install-time packages). The e2e suite installs the
 * packed VSIX and runs every feature on it, the WebAssembly fallback included: that proves the rest runs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
// @ts-expect-error: a plain .mjs script, typed by use.
import { stage, unexpectedFiles } from '../../scripts/stagePackage.mjs';

const staged: string[] = [];
after(() => staged.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((file) => fs.statSync(path.join(dir, file)).isFile()).map((file) => file.split(path.sep).join('/'));
}

test('the linux-x64 package holds what runs and nothing else', { timeout: 180_000 }, () => {
  const { dir, hasOnnxRuntime } = stage('linux-x64') as { dir: string; hasOnnxRuntime: boolean };
  staged.push(dir);
  assert.equal(hasOnnxRuntime, true);
  const files = filesUnder(dir);
  for (const needed of [
    'dist/extension.js', 'dist/pali.js',
    'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
    'node_modules/onnxruntime-web/dist/ort.node.min.js', 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm',
    'node_modules/@huggingface/transformers/dist/transformers.node.cjs',
    'node_modules/sharp/package.json',
  ]) assert.ok(files.includes(needed), `${needed} is packed`);
  assert.ok(files.some((file) => /^node_modules\/@img\/sharp-linux-x64\//.test(file)), 'sharp\'s linux-x64 binary is packed');
  assert.ok(!files.some((file) => /^node_modules\/@img\/sharp-(darwin|win32)/.test(file)), 'no other platform\'s sharp');
  assert.ok(!files.some((file) => /onnxruntime-node\/bin\/napi-v6\/(darwin|win32)/.test(file)), 'no other platform\'s onnxruntime');
  assert.deepEqual(unexpectedFiles(dir), []);
  assert.equal(files.filter((file) => file.endsWith('.wasm')).length, 1, 'one WebAssembly build');
  const megabytes = files.reduce((sum, file) => sum + fs.statSync(path.join(dir, file)).size, 0) / 2 ** 20;
  // About 92 MB now (a 32 MB VSIX of 342 files); 215 MB before the pruning (a 59 MB VSIX of 2,007 files:
  // four WebAssembly builds, transformers.js's sources, type declarations, install-time packages).
  assert.ok(megabytes < 110, `${megabytes.toFixed(0)} MB staged`);
});

test('the check names what should not be there', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'pali-unexpected-'));
  staged.push(dir);
  for (const file of ['node_modules/@types/node/index.d.ts', 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm', 'node_modules/@huggingface/transformers/src/x.js', 'node_modules/sharp/lib/index.js']) {
    fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), '');
  }
  assert.deepEqual(unexpectedFiles(dir).sort(), ['node_modules/@huggingface/transformers/src', 'node_modules/@types', 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.wasm']);
});
