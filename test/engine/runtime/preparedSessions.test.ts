/**
 * CPU sessions from graphs prepared for this machine (runtime/preparedSessions.ts): real sessions on a
 * forged int8 model, compared with a plain load bit for bit.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadModel, type PaliGemmaModel } from '../../../src/engine/model.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { maxAbsDiff } from '../../helpers/numbers.js';
import { referenceRun } from '../../helpers/teacherForcing.js';

const STEPS = 6;

async function run(model: PaliGemmaModel, image: string): Promise<{ logits: Float32Array[]; features: Float32Array }> {
  try {
    return await referenceRun(model, image, 'caption en', STEPS);
  } finally {
    await model.release();
  }
}

function preparedCopies(cacheRoot: string): string[] {
  const root = path.join(cacheRoot, 'prepared');
  return fs.existsSync(root) ? fs.readdirSync(root) : [];
}

test('an int8 model is prepared for this CPU once, then loads from the copy with the same logits as a plain load', async () => {
  const root = tempDir('prepared');
  const { checkpointDir, cacheRoot } = forgeTiny(root, 'tiny');
  const image = await writeGradientPng(path.join(root, 'image.png'), 64, 48);
  // A plain load: the prepared folder cannot be made where a file stands.
  const plainCache = path.join(root, 'plain-cache');
  fs.mkdirSync(plainCache);
  fs.writeFileSync(path.join(plainCache, 'prepared'), 'not a folder');
  const plainModel = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot: plainCache });
  assert.match(plainModel.sessionLoads.decoder!, /^plain: the prepared copy could not be written/);
  const plain = await run(plainModel, image);

  const first = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot });
  assert.deepEqual(first.sessionLoads, { decoder: 'prepared now', vision_encoder: 'prepared now' });
  const prepared = await run(first, image);
  const second = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot });
  assert.deepEqual(second.sessionLoads, { decoder: 'prepared', vision_encoder: 'prepared' });
  const reloaded = await run(second, image);
  assert.equal(preparedCopies(cacheRoot).length, 2, 'one copy per graph');
  for (const result of [prepared, reloaded]) {
    assert.deepEqual(result.features, plain.features);
    assert.deepEqual(result.logits, plain.logits);
  }
});

test("an export's merged decoder (the KV cache in and out whole) is prepared as exactly", async () => {
  const root = tempDir('prepared-export');
  const { checkpointDir, cacheRoot } = forgeTiny(root, 'tiny');
  const image = await writeGradientPng(path.join(root, 'image.png'), 64, 48);
  const checkpoint = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot });
  const exportDir = path.join(root, 'export');
  fs.cpSync(checkpoint.dir, exportDir, { recursive: true });
  const reference = await run(checkpoint, image);
  for (const file of fs.readdirSync(path.join(exportDir, 'onnx'))) {
    if (file.startsWith('decoder_model_masked')) fs.rmSync(path.join(exportDir, 'onnx', file));
  }
  for (const how of ['prepared now', 'prepared']) {
    const model = await loadModel(exportDir, { dtype: 'int8', device: 'cpu', cacheRoot });
    assert.equal(model.maskedDecoder, false);
    assert.equal(model.sessionLoads.decoder, how);
    const result = await run(model, image);
    for (const [step, logits] of result.logits.entries()) assert.ok(maxAbsDiff(logits, reference.logits[step]!) < 1e-4, `step ${step}`);
  }
});

test('a broken prepared copy is made again, a changed graph replaces its old copy, and fp32 and int4 are never prepared', async () => {
  const root = tempDir('prepared-broken');
  const { checkpointDir, cacheRoot } = forgeTiny(root, 'tiny');
  const image = await writeGradientPng(path.join(root, 'image.png'), 64, 48);
  const reference = await run(await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot }), image);
  const copies = preparedCopies(cacheRoot);
  for (const copy of copies) fs.writeFileSync(path.join(cacheRoot, 'prepared', copy, 'model.onnx'), 'truncated');
  const again = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot });
  assert.deepEqual(again.sessionLoads, { decoder: 'prepared now', vision_encoder: 'prepared now' });
  assert.deepEqual((await run(again, image)).logits, reference.logits);

  // The converted decoder changes (here only its time stamp): its copy is prepared again, the old one goes.
  const decoderGraph = path.join(again.dir, 'onnx', 'decoder_model_masked_int8.onnx');
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(decoderGraph, later, later);
  const changed = await loadModel(checkpointDir, { dtype: 'int8', device: 'cpu', cacheRoot });
  assert.deepEqual(changed.sessionLoads, { decoder: 'prepared now', vision_encoder: 'prepared' });
  await changed.release();
  assert.equal(preparedCopies(cacheRoot).length, 2);

  // int4's MatMulNBits packs come back wrong from a prepared copy in ONNX Runtime 1.30 (every logit 0).
  for (const dtype of ['fp32', 'int4'] as const) {
    const model = await loadModel(checkpointDir, { dtype, device: 'cpu', cacheRoot });
    assert.deepEqual(model.sessionLoads, {});
    await model.release();
  }
});
