/**
 * The engine's KV cache, which our masked decoder extends with each chunk's keys and values, must hold
 * exactly what the onnx-community merged decoder returns as its whole `present.*` cache after the same
 * chunks: with several KV heads (PaliGemma 2), both when an append fits the reserved room (blocks move in
 * place) and when it reallocates.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, type PaliGemmaModel } from '../../../src/engine/model.js';
import { emptyCache, runDecoder } from '../../../src/engine/paligemma/decoderRunner.js';
import { buildPromptIds, embedPrefix, embedTokens, encodeImage } from '../../../src/engine/paligemma/inputs.js';
import { KvCache } from '../../../src/engine/paligemma/kvCache.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { maxAbsDiff } from '../../helpers/numbers.js';

describe('the KV cache kept by the engine', () => {
  const root = tempDir('kv-cache');
  let model: PaliGemmaModel;
  let merged: ort.InferenceSession;
  before(async () => {
    const tiny = forgeTiny(root, 'tiny-paligemma2', 5);
    model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    merged = await ort.InferenceSession.create(path.join(model.dir, 'onnx', 'decoder_model_merged.onnx'));
  });
  after(async () => {
    await model?.release();
    await merged?.release();
  });

  test('the masked decoder returns only the chunk, never the whole cache', () => {
    assert.ok(model.maskedDecoder);
    assert.ok(model.config.text.num_key_value_heads > 1, 'several KV heads, so that appends move blocks');
    assert.deepEqual(model.sessions.decoder.outputNames.filter((n) => n.startsWith('present.')), []);
    assert.equal(KvCache.outputsOf(model.sessions.decoder).length, 2 * model.config.text.num_hidden_layers);
    assert.ok(KvCache.outputsOf(merged).every((name) => name.startsWith('present.')));
  });

  for (const reserve of [0, 64]) {
    test(`after the prefix and 20 steps it equals the merged decoder's present.* (${reserve ? 'room reserved' : 'growing'})`, async () => {
      const image = await encodeImage(model, await writeGradientPng(path.join(root, 'image.png'), 60, 40));
      const promptIds = buildPromptIds(model, 'caption en');
      const prefix = await embedPrefix(model, promptIds, image);
      const { hidden_size: H } = model.config.text;

      let step = await runDecoder(model, prefix, promptIds.length, emptyCache(model, reserve), promptIds.length);
      const reference = new KvCache(model);
      let referenceOutputs = await merged.run({
        inputs_embeds: new ort.Tensor('float32', prefix, [1, promptIds.length, H]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(promptIds, (_, i) => BigInt(i + 1)), [1, promptIds.length]),
        ...reference.feeds(),
      });
      reference.absorb(referenceOutputs, promptIds.length);

      // Feed both the same tokens (a fixed walk through the vocabulary), whatever either would pick.
      for (let s = 0; s < 20; s++) {
        const token = 300 + 17 * s;
        const embeds = await embedTokens(model, [token]);
        step = await runDecoder(model, embeds, 1, step.cache, promptIds.length);
        referenceOutputs = await merged.run({
          inputs_embeds: new ort.Tensor('float32', embeds, [1, 1, H]),
          position_ids: new ort.Tensor('int64', new BigInt64Array([BigInt(reference.length + 1)]), [1, 1]),
          ...reference.feeds(),
        });
        reference.absorb(referenceOutputs, 1);
      }
      assert.equal(step.cache.length, promptIds.length + 20);
      assert.equal(reference.length, step.cache.length);
      for (const name of step.cache.names) {
        const ours = step.cache.data(name);
        assert.equal(ours.length, reference.data(name).length, name);
        assert.ok(maxAbsDiff(ours, reference.data(name)) < 1e-5, `${name} differs by ${maxAbsDiff(ours, reference.data(name))}`);
      }
      const lastLogits = referenceOutputs.logits!.data as Float32Array;
      assert.ok(maxAbsDiff(step.logits, lastLogits.subarray(lastLogits.length - step.logits.length)) < 1e-4);
    });
  }
});
