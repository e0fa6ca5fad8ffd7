/**
 * Our ONNX graphs against the independent float64 reference (test/reference), for PaliGemma 1 and 2:
 * image features, first-step logits within 1e-4, and the greedy ids of a KV-cached generation against
 * ids from full recomputation without a cache.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { openCheckpoint } from '../../src/engine/checkpoint/checkpoint.js';
import { loadModel, type PaliGemmaModel } from '../../src/engine/model.js';
import { encodeImage } from '../../src/engine/paligemma/inputs.js';
import { generate } from '../../src/engine/generate/generate.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/numbers.js';
import { referenceGreedy, referenceImageFeatures, referenceLogits } from '../reference/paligemmaReference.js';
import { argmax } from '../../src/engine/generate/sampling.js';

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`${preset}: ONNX graphs match the float64 reference`, () => {
    const root = tempDir(`numerics-${preset}`);
    let model: PaliGemmaModel;
    let image: string;
    before(async () => {
      const tiny = forgeTiny(root, preset);
      image = await writeGradientPng(path.join(root, 'image.png'), 97, 61);
      model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    });
    after(() => model?.release());

    test('image features agree within 1e-5', async () => {
      const encoded = await encodeImage(model, image);
      const { imageToPixelValues } = await import('../../src/engine/image/preprocess.js');
      const { decodeImageFile } = await import('../../src/engine/image/decode.js');
      const pixels = imageToPixelValues(await decodeImageFile(image), model.imageProcessor);
      const reference = referenceImageFeatures(openCheckpoint(path.join(root, preset)), pixels);
      assert.ok(maxAbsDiff(encoded.features, reference.flatMap((row) => [...row])) < 1e-5);
    });

    test('an image with transparency gives the logits of its pixels with alpha dropped (HF convert_rgb)', async () => {
      const width = 40;
      const height = 30;
      const rgba = new Uint8Array(width * height * 4);
      for (let i = 0; i < width * height; i++) {
        // Transparent pixels store black here: compositing them on white would change the image.
        rgba.set(i % 4 === 0 ? [0, 0, 0, 0] : [(i * 7) % 256, (i * 13) % 256, (i * 3) % 256, i % 4 === 1 ? 60 : 255], i * 4);
      }
      const raw = { raw: { width, height, channels: 4 as const } };
      const withAlpha = path.join(root, 'alpha.png');
      const withoutAlpha = path.join(root, 'no-alpha.png');
      await sharp(Buffer.from(rgba), raw).png().toFile(withAlpha);
      await sharp(Buffer.from(rgba), raw).removeAlpha().png().toFile(withoutAlpha);
      const logits = async (file: string) =>
        (await generate(model, await encodeImage(model, file), 'caption en', { maxNewTokens: 1, keepFirstLogits: true })).firstLogits!;
      assert.deepEqual(await logits(withAlpha), await logits(withoutAlpha));
      // On white, the same image is another image: the check above can tell them apart.
      const onWhite = path.join(root, 'on-white.png');
      await sharp(Buffer.from(rgba), raw).flatten({ background: '#ffffff' }).png().toFile(onWhite);
      assert.ok(maxAbsDiff(await logits(withAlpha), await logits(onWhite)) > 1e-4);
    });

    test('first-step logits agree within 1e-4 and greedy ids equal the uncached reference', async () => {
      const encoded = await encodeImage(model, image);
      const result = await generate(model, encoded, 'caption en', { maxNewTokens: 6, keepFirstLogits: true });
      const checkpoint = openCheckpoint(path.join(root, preset));
      const { imageToPixelValues } = await import('../../src/engine/image/preprocess.js');
      const { decodeImageFile } = await import('../../src/engine/image/decode.js');
      const features = referenceImageFeatures(checkpoint, imageToPixelValues(await decodeImageFile(image), model.imageProcessor));
      const reference = referenceGreedy(checkpoint, features, result.promptIds, 6, model.imageTokenId, model.eosTokenIds);
      const diff = maxAbsDiff(result.firstLogits!, reference.stepLogits[0]!);
      assert.ok(diff < 1e-4, `max |logit difference| ${diff}`);
      assert.deepEqual(result.generatedIds, reference.ids);
      assert.ok(new Set(result.generatedIds).size > 1, 'greedy output should not repeat one token');

      // Gemma 2's final soft-capping is kept (a deliberate deviation from newest HF): it moves the logits
      // but, being monotonic, never the greedy choice.
      if (model.config.text.final_logit_softcapping !== null) {
        const uncapped = referenceLogits(checkpoint, features, result.promptIds, result.promptIds.length, model.imageTokenId, false).at(-1)!;
        assert.ok(maxAbsDiff(result.firstLogits!, uncapped) > 1e-3, 'the cap is applied');
        assert.equal(argmax(result.firstLogits!), argmax(Float32Array.from(uncapped)));
      }
    });
  });
}
