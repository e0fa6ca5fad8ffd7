/**
 * A check by code we did not write: transformers.js (PaliGemmaForConditionalGeneration + AutoProcessor,
 * local files only) loads our converted fp32 folder as an onnx-community export and must produce exactly
 * our prompt ids and greedy ids. The image is at the model's size, so both sides see the same pixels
 * (transformers.js resizes with its own filter, which is not Pillow's).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { after, before, describe, test } from 'node:test';
import { loadModel, type PaliGemmaModel } from '../../src/engine/model.js';
import { encodeImage } from '../../src/engine/paligemma/inputs.js';
import { generate } from '../../src/engine/generate/generate.js';
import { loadTransformers } from '../../src/engine/text/tokenizer.js';
import { readPaliGemmaConfig } from '../../src/engine/checkpoint/config.js';
import { f16ToF32, f32ToF16 } from '../../src/engine/checkpoint/floatFormats.js';
import { convertCheckpoint, convertForTransformersJsRecommended, TRANSFORMERS_JS_RECOMMENDED_DTYPES } from '../../src/engine/convert/convert.js';
import { componentFile } from '../../src/engine/paligemma/components.js';
import { onnxRuntime } from '../../src/engine/runtime/onnxRuntime.js';
import { forgeTiny, tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { cosineSimilarity } from '../helpers/numbers.js';

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

/**
 * The files transformers.js's PaliGemma card recommends (TRANSFORMERS_JS_RECOMMENDED_DTYPES), which the
 * bench's second peer loads: a float16 embedding table with float32 out, a 4-bit vision tower, and the
 * int4 decoder. They must be what their names say, and transformers.js must run them.
 */
describe('the files transformers.js recommends, written for the bench', () => {
  const root = tempDir('transformersjs-recommended');
  const tiny = forgeTiny(root, 'tiny', 11);
  const { dir, files } = convertForTransformersJsRecommended({ modelDir: tiny.checkpointDir, cacheRoot: tiny.cacheRoot });
  convertCheckpoint({ modelDir: tiny.checkpointDir, cacheRoot: tiny.cacheRoot, dtype: 'fp32' }); // the reference tower
  const ort = onnxRuntime();
  const run = async (file: string, feeds: Record<string, ort.Tensor>) => {
    const session = await ort.InferenceSession.create(path.join(dir, file));
    try {
      return Object.values(await session.run(feeds))[0]!.data as Float32Array;
    } finally {
      await session.release();
    }
  };

  test('they are written once, beside the int4 conversion', () => {
    assert.deepEqual(files.map((f) => path.basename(f)).sort(), ['decoder_model_merged_q4.onnx', 'embed_tokens_fp16.onnx', 'vision_encoder_q4.onnx']);
    const again = convertForTransformersJsRecommended({ modelDir: tiny.checkpointDir, cacheRoot: tiny.cacheRoot });
    assert.deepEqual(again.files, files);
  });

  test('embed_tokens_fp16 gives float32 rows equal to the float32 table rounded to float16', async () => {
    const ids = new ort.Tensor('int64', BigInt64Array.from([0n, 2n, 5n, 300n, 1000n]), [1, 5]);
    const full = await run('onnx/embed_tokens.onnx', { input_ids: ids });
    const half = await run('onnx/embed_tokens_fp16.onnx', { input_ids: ids });
    assert.ok(half instanceof Float32Array);
    assert.deepEqual(Array.from(half), Array.from(f16ToF32(f32ToF16(full))));
    assert.notDeepEqual(Array.from(half), Array.from(full), 'float16 rounding changes some values');
  });

  test('vision_encoder_q4 is the vision tower with 4-bit weights', async () => {
    const size = readPaliGemmaConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))).vision.image_size;
    const pixels = Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.37));
    const feeds = { pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) };
    const full = await run('onnx/vision_encoder.onnx', feeds);
    const q4 = await run('onnx/vision_encoder_q4.onnx', feeds);
    const q8 = await run(componentFile('vision_encoder', 'int4'), feeds);
    const [q4Cosine, q8Cosine] = [cosineSimilarity(q4, full), cosineSimilarity(q8, full)];
    // 4 bits lose more than 8 (q8 is our int4 model's tower), yet the tower is still the same function.
    assert.ok(q4Cosine > 0.9 && q4Cosine < q8Cosine, `cosine to float32: q4 ${q4Cosine}, q8 ${q8Cosine}`);
    assert.ok(fs.statSync(path.join(dir, 'onnx/vision_encoder_q4.onnx')).size < fs.statSync(path.join(dir, componentFile('vision_encoder', 'int4'))).size);
  });

  test('transformers.js generates from them', async () => {
    const transformers = loadTransformers();
    const image = await writeGradientPng(path.join(root, 'image.png'), 224, 224, 3);
    const processor = await transformers.AutoProcessor.from_pretrained(dir, { local_files_only: true });
    const model = await transformers.PaliGemmaForConditionalGeneration.from_pretrained(dir, { dtype: TRANSFORMERS_JS_RECOMMENDED_DTYPES as never, local_files_only: true, device: 'cpu' });
    try {
      const inputs = await processor(await transformers.RawImage.read(image), '<image>caption en');
      const output = (await model.generate({ ...inputs, max_new_tokens: 6, min_new_tokens: 6, do_sample: false })) as { data: BigInt64Array };
      assert.equal(output.data.length - Number(inputs.input_ids.dims.at(-1)), 6);
    } finally {
      await model.dispose();
    }
  });
});
