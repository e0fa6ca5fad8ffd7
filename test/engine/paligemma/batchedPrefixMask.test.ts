/**
 * Batches of different lengths through our masked decoder: left padding plus the padded prefix-LM bias give
 * each row the logits it gets alone. (The merged layout graph has no mask, so it cannot do this.)
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, type PaliGemmaModel } from '../../../src/engine/model.js';
import { buildPromptIds, embedPrefix, encodeImage } from '../../../src/engine/paligemma/inputs.js';
import { paddedPrefixLmBias, prefixLmBias } from '../../../src/engine/paligemma/prefixLmMask.js';
import { KvCache } from '../../../src/engine/paligemma/kvCache.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { maxAbsDiff } from '../../helpers/numbers.js';

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`${preset}: a left-padded batch`, () => {
    const root = tempDir(`batching-${preset}`);
    let model: PaliGemmaModel;
    before(async () => {
      const tiny = forgeTiny(root, preset, 13);
      model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    });
    after(() => model?.release());

    test('each row\'s last logits equal the row run alone', async () => {
      const H = model.config.text.hidden_size;
      const imageA = await encodeImage(model, await writeGradientPng(path.join(root, 'a.png'), 70, 50, 1));
      const imageB = await encodeImage(model, await writeGradientPng(path.join(root, 'b.png'), 40, 90, 2));
      const idsA = buildPromptIds(model, 'caption en');
      const idsB = buildPromptIds(model, 'answer en what is in the picture on the table?');
      const embedsA = await embedPrefix(model, idsA, imageA);
      const embedsB = await embedPrefix(model, idsB, imageB);
      const length = Math.max(idsA.length, idsB.length);
      const padA = length - idsA.length;
      assert.ok(padA > 0);

      const cache = (batch: number) => new KvCache(model, batch).feeds();
      // The masks of a batch: full attention, and Gemma 2's sliding window where the graph takes one.
      const run = async (embeds: Float32Array, batch: number, bias: (window: number | null) => Float32Array) => {
        const sequence = embeds.length / H / batch;
        const outputs = await model.sessions.decoder.run({
          inputs_embeds: new ort.Tensor('float32', embeds, [batch, sequence, H]),
          // HF's PaliGemma numbers positions by cache slot (padding included); RoPE only sees differences.
          position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: batch * sequence }, (_, i) => BigInt((i % sequence) + 1)), [batch, sequence]),
          attention_bias: new ort.Tensor('float32', bias(null), [batch, 1, sequence, sequence]),
          ...(model.sessions.decoder.inputNames.includes('sliding_attention_bias')
            ? { sliding_attention_bias: new ort.Tensor('float32', bias(model.config.text.sliding_window), [batch, 1, sequence, sequence]) }
            : {}),
          ...cache(batch),
        });
        return outputs.logits!.data as Float32Array;
      };

      const padded = new Float32Array(2 * length * H);
      padded.set(embedsA, padA * H);
      padded.set(embedsB, length * H);
      const batched = await run(padded, 2, (window) => paddedPrefixLmBias([{ padding: padA, prefixLength: idsA.length }, { padding: 0, prefixLength: idsB.length }], 0, length, window));
      const vocab = batched.length / 2;
      const aloneA = await run(embedsA, 1, (window) => prefixLmBias(idsA.length, 0, idsA.length, window));
      const aloneB = await run(embedsB, 1, (window) => prefixLmBias(idsB.length, 0, idsB.length, window));
      assert.ok(maxAbsDiff(batched.subarray(0, vocab), aloneA) < 1e-4, `row A differs by ${maxAbsDiff(batched.subarray(0, vocab), aloneA)}`);
      assert.ok(maxAbsDiff(batched.subarray(vocab), aloneB) < 1e-5);
    });
  });
}
