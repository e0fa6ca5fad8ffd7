/**
 * CPU sessions keep a copy of their optimized graph with packed weights: the first load saves it, later
 * loads map it and compute the very same logits, and a damaged copy is replaced rather than trusted.
 * int4 decoders (MatMulNBits) get no copy: restored, onnxruntime 1.30's MatMulNBits computes NaN.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../../src/engine/model.js';
import { encodeImage, generate } from '../../../src/engine/pipeline.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';

const root = tempDir('prepacked');
const tiny = forgeTiny(root, 'tiny', 11);
const cacheRoot = path.join(root, 'cache');

async function run(dtype: 'fp32' | 'int4') {
  const image = await writeGradientPng(path.join(root, 'image.png'), 64, 48, 2);
  const model = await loadModel(tiny.checkpointDir, { dtype, device: 'cpu', cacheRoot });
  try {
    const result = await generate(model, await encodeImage(model, image), 'caption en', { maxNewTokens: 3, keepFirstLogits: true });
    return { packed: model.packedWeights, logits: result.firstLogits!, ids: result.generated_ids };
  } finally {
    await model.release();
  }
}

test('fp32: the first load saves packed graphs, the next maps them with the same logits', async () => {
  const first = await run('fp32');
  assert.deepEqual(first.packed, { decoder: 'saved', vision_encoder: 'saved' });
  const second = await run('fp32');
  assert.deepEqual(second.packed, { decoder: 'mapped', vision_encoder: 'mapped' });
  assert.deepEqual(second.logits, first.logits);
  assert.deepEqual(second.ids, first.ids);
});

test('int4: the MatMulNBits decoder is packed at each load; the shared float32 vision tower is mapped', async () => {
  const first = await run('int4');
  assert.deepEqual(first.packed, { decoder: 'packed', vision_encoder: 'mapped' });
  assert.ok(first.logits.every(Number.isFinite));
  const second = await run('int4');
  assert.deepEqual(second.logits, first.logits);
});

test('a damaged packed copy is rebuilt, never used', async () => {
  const reference = await run('fp32');
  for (const name of fs.readdirSync(path.join(cacheRoot, 'prepacked'))) {
    const folder = path.join(cacheRoot, 'prepacked', name);
    for (const file of fs.readdirSync(folder).filter((f) => f.endsWith('.onnx'))) fs.writeFileSync(path.join(folder, file), 'not a model');
  }
  const rebuilt = await run('fp32');
  assert.deepEqual(rebuilt.packed, { decoder: 'saved', vision_encoder: 'saved' });
  assert.deepEqual(rebuilt.logits, reference.logits);
  const mapped = await run('fp32');
  assert.deepEqual(mapped.packed, { decoder: 'mapped', vision_encoder: 'mapped' });
  assert.deepEqual(mapped.logits, reference.logits);
});
