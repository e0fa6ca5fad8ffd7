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
import { buildPromptIds, embedPrefix, embedTokens, encodeImage, type EncodedImage } from '../../src/engine/paligemma/inputs.js';
import { prefixLmBias } from '../../src/engine/paligemma/prefixLmMask.js';
import { emptyCache, runDecoder } from '../../src/engine/paligemma/decoderRunner.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/numbers.js';

/** The masks of one whole sequence: the full-attention one and, for Gemma 2's sliding layers, the windowed one. */
type MaskFor = (window: number | null) => Float32Array;

/** PaliGemma's masks for a prefix of `prefixLength` at the start of a sequence of `length`. */
const prefixLm = (prefixLength: number, length: number): MaskFor => (window) => prefixLmBias(prefixLength, 0, length, window);

/** One call of a decoder graph on a whole sequence from an empty cache; the merged graph takes no mask. */
async function runWhole(session: ort.InferenceSession, model: PaliGemmaModel, embeds: Float32Array, length: number, mask?: MaskFor) {
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', embeds, [1, length, model.config.text.hidden_size]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length }, (_, i) => BigInt(i + 1)), [1, length]),
    ...emptyCache(model).feeds(),
  };
  if (mask) {
    feeds.attention_bias = new ort.Tensor('float32', mask(null), [1, 1, length, length]);
    if (session.inputNames.includes('sliding_attention_bias')) {
      feeds.sliding_attention_bias = new ort.Tensor('float32', mask(model.config.text.sliding_window), [1, 1, length, length]);
    }
  }
  return session.run(feeds);
}

/** Layer 1's key at `position`, [KV heads x head_dim]. */
function keyAt(outputs: ort.InferenceSession.OnnxValueMapType, position: number): Float32Array {
  // The merged graph returns the whole cache; the masked one the chunk's keys, the same from an empty cache.
  const key = (outputs['present.1.key'] ?? outputs['chunk_key_values.1.key'])!;
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
        const bias = session === merged ? undefined : prefixLm(a.length, a.length);
        const outA = await runWhole(session, model, await embedPrefix(model, a, image), a.length, bias);
        const outB = await runWhole(session, model, await embedPrefix(model, b, image), b.length, bias);
        assert.ok(maxAbsDiff(keyAt(outA, 0), keyAt(outB, 0)) > 1e-4, 'position 0 saw the later token');
      }
    });

    test('a suffix position does not change when a later suffix token changes (causal suffix)', async () => {
      const prefix = buildPromptIds(model, 'caption en');
      const prefixEmbeds = await embedPrefix(model, prefix, image);
      const run = async (suffix: number[], bias: (length: number) => MaskFor) => {
        const embeds = new Float32Array([...prefixEmbeds, ...(await embedTokens(model, suffix))]);
        const length = prefix.length + suffix.length;
        return keyAt(await runWhole(model.sessions.decoder, model, embeds, length, bias(length)), prefix.length);
      };
      const causal = (length: number) => prefixLm(prefix.length, length);
      const first = 300;
      assert.equal(maxAbsDiff(await run([first, 301], causal), await run([first, 500], causal)), 0);
      // The same check with everything visible does see the later token, so the check above can fail.
      const open = (length: number) => () => new Float32Array(length * length);
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
      const recomputed = await runWhole(model.sessions.decoder, model, embeds, ids.length, prefixLm(prefix.length, ids.length));
      const logits = recomputed.logits!.data as Float32Array;
      assert.ok(maxAbsDiff(logits, step.logits) < 1e-5, `difference ${maxAbsDiff(logits, step.logits)}`);
    });

    test('the merged layout decoder and our masked decoder give the same prefill logits', async () => {
      const prefix = buildPromptIds(model, 'describe en');
      const embeds = await embedPrefix(model, prefix, image);
      const fromMerged = (await runWhole(merged, model, embeds, prefix.length)).logits!;
      const vocab = fromMerged.dims[2]!;
      const lastRow = (fromMerged.data as Float32Array).subarray((prefix.length - 1) * vocab);
      const fromMasked = (await runWhole(model.sessions.decoder, model, embeds, prefix.length, prefixLm(prefix.length, prefix.length))).logits!;
      assert.deepEqual(fromMasked.dims, [1, 1, vocab]);
      assert.ok(maxAbsDiff(lastRow, fromMasked.data as Float32Array) < 1e-5);
    });

    // Layer 0 slides in Gemma 2 (layer 1 does not): layer 1's key at a position is a function of what that
    // position attended to in layer 0, so it shows whether that position saw position 0.
    // PaliGemma 1 has no window: its test is the prefix and causal checks above.
    test('sliding window: pairs inside the prefix attend whatever their distance; later tokens only within the window', { skip: preset === 'tiny' ? 'PaliGemma 1 (Gemma 1) has no sliding window' : false }, async () => {
      const window = model.config.text.sliding_window;
      assert.ok(window !== null, 'PaliGemma 2 has a sliding window');
      assert.equal(model.config.text.layer_types[0], 'sliding_attention');
      const prefix = buildPromptIds(model, 'caption en');
      assert.ok(prefix.length > window + 2, `the window (${window}) must be shorter than the prefix (${prefix.length})`);
      const suffix = Array.from({ length: window + 2 }, (_, i) => 300 + i);
      const length = prefix.length + suffix.length;
      const embeds = new Float32Array([...(await embedPrefix(model, prefix, image)), ...(await embedTokens(model, suffix))]);
      const changed = embeds.slice();
      changed[0] = changed[0]! + 1; // position 0: the first image patch
      const lastPrefix = prefix.length - 1;
      const farSuffix = prefix.length + window; // a generated token whose window ends after position 0
      for (const session of [model.sessions.decoder, merged]) {
        const mask = session === merged ? undefined : prefixLm(prefix.length, length);
        // The merged graph windows every chunk after the first: run its prefix, then the suffix on its cache.
        const keys = async (input: Float32Array) => {
          if (mask) return runWhole(session, model, input, length, mask);
          return runWhole(session, model, input.subarray(0, prefix.length * model.config.text.hidden_size), prefix.length);
        };
        const [a, b] = [await keys(embeds), await keys(changed)];
        assert.ok(maxAbsDiff(keyAt(a, lastPrefix), keyAt(b, lastPrefix)) > 1e-4, 'the last prefix token saw position 0');
        if (mask) assert.equal(maxAbsDiff(keyAt(a, farSuffix), keyAt(b, farSuffix)), 0, 'a token past the window did not');
      }
      // Through the engine's own runner (masked graph, KV cache): a generated token past the window.
      const steps = async (input: Float32Array) => {
        let step = await runDecoder(model, input.subarray(0, prefix.length * model.config.text.hidden_size), prefix.length, emptyCache(model), prefix.length);
        for (const id of suffix) step = await runDecoder(model, await embedTokens(model, [id]), 1, step.cache, prefix.length);
        const key = step.cache.data('past_key_values.1.key');
        return (key as Float32Array).slice(farSuffix * model.config.text.head_dim, (farSuffix + 1) * model.config.text.head_dim);
      };
      assert.equal(maxAbsDiff(await steps(embeds), await steps(changed)), 0, 'cached decoding: a token past the window did not see position 0');
    });
  });
}
