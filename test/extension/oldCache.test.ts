/**
 * retireOldCache on real folders: the old cache's conversions move into the shared cache unless it has
 * them already, and the rest of the old folder is gone; a missing old folder changes nothing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { retireOldCache } from '../../src/extension/oldCache.js';
import { tempDir } from '../helpers/fixtures.js';

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

test('conversions move into the shared cache, the rest of the old one is removed', async () => {
  const root = tempDir('old-cache');
  const oldDir = path.join(root, 'globalStorage', 'cache');
  const newDir = path.join(root, 'paligemma-local');
  write(path.join(oldDir, 'onnx', 'aaa', 'onnx', 'decoder_model_masked_int8.onnx'), 'old aaa');
  write(path.join(oldDir, 'onnx', 'bbb', 'onnx', 'vision_encoder_int8.onnx'), 'old bbb');
  write(path.join(oldDir, 'onnx', 'ccc.123.partial', 'x'), 'half written');
  write(path.join(oldDir, 'prepared', 'key', 'model.onnx.data'), 'packed for the old path');
  // The shared cache already has bbb: its copy is kept, the old one goes.
  write(path.join(newDir, 'onnx', 'bbb', 'onnx', 'vision_encoder_int8.onnx'), 'new bbb');
  const lines: string[] = [];
  const result = retireOldCache(oldDir, newDir, (line) => lines.push(line));
  assert.ok(result);
  assert.deepEqual(result.moved, ['aaa']);
  await result.removed;
  assert.equal(fs.readFileSync(path.join(newDir, 'onnx', 'aaa', 'onnx', 'decoder_model_masked_int8.onnx'), 'utf8'), 'old aaa');
  assert.equal(fs.readFileSync(path.join(newDir, 'onnx', 'bbb', 'onnx', 'vision_encoder_int8.onnx'), 'utf8'), 'new bbb');
  assert.equal(fs.existsSync(path.join(newDir, 'onnx', 'ccc.123.partial')), false, 'a half-written conversion is not carried over');
  assert.deepEqual(fs.readdirSync(path.dirname(oldDir)), [], 'the old cache is gone, prepared copies and all');
  assert.match(lines.join('\n'), /moved 1 conversion\(s\) from .* and removed the rest/);
});

test('no old cache: nothing happens', () => {
  const root = tempDir('no-old-cache');
  assert.equal(retireOldCache(path.join(root, 'missing'), path.join(root, 'new'), () => undefined), null);
  assert.equal(fs.existsSync(path.join(root, 'new')), false);
});
