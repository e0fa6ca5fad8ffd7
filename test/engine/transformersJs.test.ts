/**
 * A check by code we did not write: transformers.js (PaliGemmaForConditionalGeneration + AutoProcessor,
 * local files only) loads our converted fp32 folder as an onnx-community export and must produce exactly
 * our prompt ids and greedy ids. The image is at the model's size, so both sides see the same pixels
 * (transformers.js resizes with its own filter, which is not Pillow's).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel, type PaliGemmaModel } from '../../src/engine/model.js';
import { encodeImage } from '../../src/engine/paligemma/inputs.js';
import { generate } from '../../src/engine/generate/generate.js';
import { loadTransformers } from '../../src/engine/text/tokenizer.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`transformers.js on our ${preset} export`, () => {
    const root = tempDir(`transformersjs-${preset}`);
    let model: PaliGemmaModel;
    let image: string;
    before(async () => {
      const tiny = forgeTiny(root, preset, 11);
      model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
      image = await writeGradientPng(path.join(root, 'image.png'), model.config.vision.image_size, model.config.vision.image_size, 9);
    });
    after(() => model?.release());

    for (const prompt of ['caption en', 'answer en what is in the picture?']) {
      test(`"${prompt}": same prompt ids and greedy ids`, async () => {
        const ours = await generate(model, await encodeImage(model, image), prompt, { maxNewTokens: 12 });
        const transformers = loadTransformers();
        const processor = await transformers.AutoProcessor.from_pretrained(model.dir, { local_files_only: true });
        const theirs = await transformers.PaliGemmaForConditionalGeneration.from_pretrained(model.dir, { dtype: 'fp32', local_files_only: true, device: 'cpu' });
        try {
          // The <image> placeholder up front keeps transformers.js from warning that it had to add it.
          const inputs = await processor(await transformers.RawImage.read(image), `<image>${prompt}`);
          assert.deepEqual(Array.from(inputs.input_ids.data as BigInt64Array, Number), ours.promptIds);
          const output = (await theirs.generate({ ...inputs, max_new_tokens: 12, do_sample: false })) as { data: BigInt64Array };
          assert.deepEqual(Array.from(output.data, Number).slice(ours.promptIds.length), ours.generatedIds);
        } finally {
          await theirs.dispose();
        }
      });
    }
  });
}
