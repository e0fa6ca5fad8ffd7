/**
 * int8 against fp32 on models with the outliers real LLMs have (`pali forge --outliers`: outlier channels
 * from the norms' scales and in down_proj's inputs, a massive <bos>), teacher-forced over 64 steps: the
 * reference decodes greedily and the int8 model is fed the same tokens.
 *
 * Random tiny models have nearly flat logits (hidden size 64, 1,793 tokens), so some top-1 choices sit
 * within 8 bits' rounding of each other: int8 agrees on 80-90% of steps here whether or not the model
 * has outliers, and int4 on 8-15%. Without the migration of outlier channels (onnx/smoothing.ts),
 * int8 falls to 39-50% and a logit cosine of 0.90 on these models: the bounds below catch that. Without
 * the vision MLP's pass for fc2's outlier inputs (int8Smoothing.ts), the image features' cosine falls
 * from 0.99990 to 0.99952: the features' bound catches that.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { forgeCheckpoint } from '../../../src/engine/forge/forge.js';
import { loadModel } from '../../../src/engine/model.js';
import { cosineSimilarity } from '../../helpers/numbers.js';
import { tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { forcedAgreement, referenceRun } from '../../helpers/teacherForcing.js';

const STEPS = 64;

for (const preset of ['tiny', 'tiny-paligemma2'] as const) {
  describe(`${preset} with outliers: int8 follows fp32`, () => {
    const root = tempDir(`int8-${preset}`);
    const modelDir = path.join(root, 'model');
    const cacheRoot = path.join(root, 'cache');
    let image: string;
    let reference: Awaited<ReturnType<typeof referenceRun>>;
    before(async () => {
      forgeCheckpoint({ preset, seed: 1, outDir: modelDir, outliers: true });
      image = await writeGradientPng(path.join(root, 'image.png'), 97, 61);
      const fp32 = await loadModel(modelDir, { dtype: 'fp32', device: 'cpu', cacheRoot });
      try {
        reference = await referenceRun(fp32, image, 'caption en', STEPS);
      } finally {
        await fp32.release();
      }
    });

    test(`teacher-forced over ${STEPS} steps: top-1 agreement and logit cosine`, { timeout: 120_000 }, async (t) => {
      assert.ok(new Set(reference.ids).size > STEPS / 2, 'the float model gives varied answers: agreement means something');
      const int8 = await loadModel(modelDir, { dtype: 'int8', device: 'cpu', cacheRoot });
      try {
        const result = await forcedAgreement(int8, image, 'caption en', reference);
        const features = cosineSimilarity(result.features, reference.features);
        const summary = `top-1 ${(100 * result.top1Agreement).toFixed(1)}%, cosine mean ${result.cosineMean.toFixed(5)}, min ${result.cosineMin.toFixed(5)}, image features ${features.toFixed(5)}`;
        t.diagnostic(summary);
        assert.ok(result.top1Agreement >= 0.75, summary);
        assert.ok(result.cosineMean >= 0.99, summary);
        assert.ok(result.cosineMin >= 0.85, summary);
        assert.ok(features >= 0.9998, summary);
      } finally {
        await int8.release();
      }
    });
  });
}
