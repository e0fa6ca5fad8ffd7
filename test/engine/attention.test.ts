/**
 * PaliGemma's attention, checked on our ONNX graphs: bidirectional inside the prefix, causal over the
 * suffix, and KV-cached decoding equal to recomputing without the cache. Keys of layer 1 show what each
 * position attended to in layer 0, so they reveal which positions saw which.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, type PaliGemmaModel } from '../../src/engine/model.js';
import { buildPromptIds, embedPrefix, embedTokens, encodeImage, type EncodedImage } from '../../src/engine/pipeline.js';
import { prefixLmBias } from '../../src/engine/runtime/attentionBias.js';
import { emptyCache, runDecoder } from '../../src/engine/runtime/decoderRunner.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/numbers.js';

/** One call of a decoder graph on a whole sequence from an empty cache. */
async function runWhole(session: ort.InferenceSession, model: PaliGemmaModel, embeds: Float32Array, length: number, bias?: Float32Array) {
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', embeds, [1, length, model.config.text.hidden_size]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length }, (_, i) => BigInt(i + 1)), [1, length]),
    ...emptyCache(model).tensors,
  };
  if (bias) feeds.attention_bias = new ort.Tensor('float32', bias, [1, 1, length, length]);
  return session.run(feeds);
}

/** Layer 1's key at `position`, [KV heads x head_dim]. */
function keyAt(outputs: ort.InferenceSession.OnnxValueMapType, position: number): Float32Array {
  const key = outputs['present.1.key']!;
  const [, kvHeads, total, headDim] = key.dims as number[];
  const data = key.data as Float32Array;
  const out = new Float32Array(kvHeads! * headDim!);
  for (let h = 0; h < kvHeads!; h++) out.set(data.subarray((h * total! + position) * headDim!, (h * total! + position + 1) * headDim!), h * headDim!);
  return out;
}

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`${preset}: prefix-LM attention`, () => {
    const root = tempDir(`attention-${preset}`);
    let model: PaliGemmaModel;
    let image: EncodedImage;
    let merged: ort.InferenceSession;
    before(async () => {
      const tiny = forgeTiny(root, preset);
      model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
      image = await encodeImage(model, await writeGradientPng(path.join(root, 'image.png'), 64, 48));
      merged = await ort.InferenceSession.create(path.join(model.dir, 'onnx', 'decoder_model_merged.onnx'));
    });
    after(async () => {
      await model?.release();
      await merged?.release();
    });

    test('an earlier prefix position changes when a later prompt token changes (bidirectional prefix)', async () => {
      const a = buildPromptIds(model, 'caption en');
      const b = buildPromptIds(model, 'caption fr');
      assert.equal(a.length, b.length);
      const firstDifference = a.findIndex((id, i) => id !== b[i]);
      assert.ok(firstDifference > 1, 'the prompts differ only late in the prefix');
      for (const session of [model.sessions.decoder, merged]) {
        const bias = session === merged ? undefined : prefixLmBias(a.length, 0, a.length);
        const outA = await runWhole(session, model, await embedPrefix(model, a, image), a.length, bias);
        const outB = await runWhole(session, model, await embedPrefix(model, b, image), b.length, bias);
        assert.ok(maxAbsDiff(keyAt(outA, 0), keyAt(outB, 0)) > 1e-4, 'position 0 saw the later token');
      }
    });

    test('a suffix position does not change when a later suffix token changes (causal suffix)', async () => {
      const prefix = buildPromptIds(model, 'caption en');
      const prefixEmbeds = await embedPrefix(model, prefix, image);
      const run = async (suffix: number[], bias: (length: number) => Float32Array | undefined) => {
        const embeds = new Float32Array([...prefixEmbeds, ...(await embedTokens(model, suffix))]);
        const length = prefix.length + suffix.length;
        return keyAt(await runWhole(model.sessions.decoder, model, embeds, length, bias(length)), prefix.length);
      };
      const causal = (length: number) => prefixLmBias(prefix.length, 0, length);
      const first = 300;
      assert.equal(maxAbsDiff(await run([first, 301], causal), await run([first, 500], causal)), 0);
      // The same check with everything visible does see the later token, so the check above can fail.
      const open = (length: number) => new Float32Array(length * length);
      assert.ok(maxAbsDiff(await run([first, 301], open), await run([first, 500], open)) > 1e-4);
    });

    test('decoding with the KV cache equals recomputing the whole sequence without it', async () => {
      const prefix = buildPromptIds(model, 'ocr');
      const prefixEmbeds = await embedPrefix(model, prefix, image);
      let step = await runDecoder(model, prefixEmbeds, prefix.length, emptyCache(model), prefix.length);
      const generated: number[] = [];
      for (let i = 0; i < 4; i++) {
        const next = step.logits.indexOf(Math.max(...step.logits));
        generated.push(next);
        step = await runDecoder(model, await embedTokens(model, [next]), 1, step.cache, prefix.length);
      }
      const ids = [...prefix, ...generated];
      const embeds = new Float32Array([...prefixEmbeds, ...(await embedTokens(model, generated))]);
      const recomputed = await runWhole(model.sessions.decoder, model, embeds, ids.length, prefixLmBias(prefix.length, 0, ids.length));
      const logits = recomputed.logits!.data as Float32Array;
      assert.ok(maxAbsDiff(logits, step.logits) < 1e-5, `difference ${maxAbsDiff(logits, step.logits)}`);
    });

    test('the merged layout decoder and our masked decoder give the same prefill logits', async () => {
      const prefix = buildPromptIds(model, 'describe en');
      const embeds = await embedPrefix(model, prefix, image);
      const fromMerged = (await runWhole(merged, model, embeds, prefix.length)).logits!;
      const vocab = fromMerged.dims[2]!;
      const lastRow = (fromMerged.data as Float32Array).subarray((prefix.length - 1) * vocab);
      const fromMasked = (await runWhole(model.sessions.decoder, model, embeds, prefix.length, prefixLmBias(prefix.length, 0, prefix.length))).logits!;
      assert.deepEqual(fromMasked.dims, [1, 1, vocab]);
      assert.ok(maxAbsDiff(lastRow, fromMasked.data as Float32Array) < 1e-5);
    });
  });
}
