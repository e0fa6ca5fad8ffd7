/**
 * A cancellation at every stage (preprocess, vision, prefill, decode) ends the request at that stage's end,
 * never later than one decode step, and leaves the model ready for the next request.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as ort from 'onnxruntime-node';
import { generate } from '../../../src/engine/generate/generate.js';
import { loadModel, type PaliGemmaModel } from '../../../src/engine/model.js';
import { encodeImage } from '../../../src/engine/paligemma/inputs.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';

/** Counts a session's runs, and calls `during` after the run numbered `at` (1-based) has finished. */
function instrument(session: ort.InferenceSession, at: number, during: () => void): { runs: number; restore: () => void } {
  const original = session.run.bind(session);
  const counter = { runs: 0, restore: () => void delete (session as { run?: unknown }).run };
  (session as { run: typeof session.run }).run = (async (...args: Parameters<typeof session.run>) => {
    const result = await original(...args);
    if (++counter.runs === at) during();
    return result;
  }) as typeof session.run;
  return counter;
}

describe('cancellation at every stage', () => {
  const root = tempDir('cancel');
  let model: PaliGemmaModel;
  let image: string;
  let expected: number[];
  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 6);
    model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    image = await writeGradientPng(path.join(root, 'image.png'), 50, 40);
    expected = (await generate(model, await encodeImage(model, image), 'caption en', { maxNewTokens: 6 })).generatedIds;
  });
  after(() => model?.release());

  /** After any cancellation the same request gives the same answer: nothing was left half-done. */
  const stillReady = async () => {
    assert.deepEqual((await generate(model, await encodeImage(model, image), 'caption en', { maxNewTokens: 6 })).generatedIds, expected);
  };

  test('during preprocessing: the vision tower never runs', async () => {
    const controller = new AbortController();
    controller.abort();
    const vision = instrument(model.sessions.vision, 1, () => {});
    try {
      await assert.rejects(encodeImage(model, image, undefined, controller.signal), { name: 'AbortError' });
      assert.equal(vision.runs, 0);
    } finally {
      vision.restore();
    }
    await stillReady();
  });

  test('during the vision tower: the request ends when it returns', async () => {
    const controller = new AbortController();
    const vision = instrument(model.sessions.vision, 1, () => controller.abort());
    try {
      await assert.rejects(encodeImage(model, image, undefined, controller.signal), { name: 'AbortError' });
      assert.equal(vision.runs, 1);
    } finally {
      vision.restore();
    }
    await stillReady();
  });

  test('during the prefill: no decode step runs', async () => {
    const encoded = await encodeImage(model, image);
    const controller = new AbortController();
    const decoder = instrument(model.sessions.decoder, 1, () => controller.abort());
    try {
      const pieces: string[] = [];
      await assert.rejects(generate(model, encoded, 'caption en', { maxNewTokens: 6, signal: controller.signal, onText: (piece) => pieces.push(piece) }), { name: 'AbortError' });
      assert.equal(decoder.runs, 1, 'the prefill only');
      assert.deepEqual(pieces, [], 'no token is chosen or streamed after the cancellation');
    } finally {
      decoder.restore();
    }
    await stillReady();
  });

  test('during decoding: at most the step under way finishes', async () => {
    const encoded = await encodeImage(model, image);
    const controller = new AbortController();
    const decoder = instrument(model.sessions.decoder, 3, () => controller.abort());
    try {
      await assert.rejects(generate(model, encoded, 'caption en', { maxNewTokens: 6, signal: controller.signal }), { name: 'AbortError' });
      assert.equal(decoder.runs, 3, 'prefill and two steps; the third step is not started');
    } finally {
      decoder.restore();
    }
    await stillReady();
  });
});
