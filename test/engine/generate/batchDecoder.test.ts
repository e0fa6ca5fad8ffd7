/**
 * The batch decoder (generate/batchDecoder.ts) on real sessions of the tiny models, at fp32 and at int8
 * (whose graphs run ONNX Runtime's fused RoPE on each row's own positions, onnx/fusedLayers.ts): rows of
 * different prompts, images, lengths and sampling give the tokens each gets alone, whether they start
 * together, join while others decode, or leave early; a cancelled row leaves without disturbing the rest.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BatchDecoder } from '../../../src/engine/generate/batchDecoder.js';
import { generate, type GenerateOptions, type GenerateResult } from '../../../src/engine/generate/generate.js';
import { loadModel, type PaliGemmaModel } from '../../../src/engine/model.js';
import { encodeImage, type EncodedImage } from '../../../src/engine/paligemma/inputs.js';
import { RequestQueue } from '../../../src/engine/service/requestQueue.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';

interface Request {
  image: EncodedImage;
  prompt: string;
  options: GenerateOptions;
}

for (const [preset, dtype] of [['tiny', 'fp32'], ['tiny-paligemma2', 'fp32'], ['tiny', 'int8'], ['tiny-paligemma2', 'int8']] as const) {
  describe(`${preset} at ${dtype}: batched decoding`, () => {
    const root = tempDir(`batch-decoder-${preset}-${dtype}`);
    let model: PaliGemmaModel;
    let requests: Request[];
    let alone: GenerateResult[];

    before(async () => {
      const tiny = forgeTiny(root, preset, 21);
      model = await loadModel(tiny.checkpointDir, { dtype, device: 'cpu', cacheRoot: tiny.cacheRoot });
      assert.ok(model.maskedDecoder);
      const images = await Promise.all([[70, 50, 1], [40, 90, 2], [64, 64, 3]].map(async ([w, h, phase], i) =>
        encodeImage(model, await writeGradientPng(path.join(root, `${i}.png`), w!, h!, phase))));
      // minNewTokens keeps rows from ending at once on random weights, so that they overlap in the batch.
      requests = [
        { image: images[0]!, prompt: 'caption en', options: { maxNewTokens: 12, minNewTokens: 12 } },
        { image: images[1]!, prompt: 'answer en what is in the picture on the table by the window?', options: { maxNewTokens: 7, minNewTokens: 7 } },
        { image: images[2]!, prompt: 'ocr', options: { maxNewTokens: 16, minNewTokens: 9, sampling: { temperature: 0.9, topK: 20, topP: 0.95, seed: 5 } } },
        { image: images[0]!, prompt: 'detect cat ; dog', options: { maxNewTokens: 10, minNewTokens: 10 } },
      ];
      alone = [];
      for (const r of requests) alone.push(await generate(model, r.image, r.prompt, r.options));
    });
    after(() => model?.release());

    function batchOf(maxBatch: number) {
      const queue = new RequestQueue();
      const decoder = new BatchDecoder(model, maxBatch, (work) => queue.run(work));
      const submit = async (r: Request, signal?: AbortSignal) => {
        const started = await queue.run(() => decoder.start(r.image, r.prompt, { ...r.options, signal }));
        return started.result;
      };
      return { decoder, submit };
    }

    test('rows that start together get the tokens each gets alone', async () => {
      const { submit } = batchOf(8);
      const results = await Promise.all(requests.map((r) => submit(r)));
      results.forEach((result, i) => {
        assert.deepEqual(result.generatedIds, alone[i]!.generatedIds, `row ${i}`);
        assert.equal(result.text, alone[i]!.text);
        assert.deepEqual(result.promptIds, alone[i]!.promptIds);
      });
    });

    test('a row that joins while others decode, and a batch smaller than the requests, change nothing', async () => {
      const { decoder, submit } = batchOf(2);
      let mostInBatch = 0;
      const watch = () => (mostInBatch = Math.max(mostInBatch, decoder.decoding));
      const withWatch = (r: Request, onText?: (piece: string) => void): Request => ({ ...r, options: { ...r.options, onText: (piece) => { watch(); onText?.(piece); } } });
      let firstDone = false;
      let joinedWhileFirstDecoded = false;
      const late: Promise<GenerateResult>[] = [];
      let firstPieces = 0;
      // The late requests arrive once the first has streamed 3 pieces: they join a batch that is decoding.
      const first = submit(withWatch(requests[0]!, () => {
        if (++firstPieces !== 3) return;
        late.push(submit(withWatch(requests[2]!, () => (joinedWhileFirstDecoded ||= !firstDone))), submit(withWatch(requests[3]!)));
      }));
      void first.then(() => (firstDone = true));
      const second = submit(withWatch(requests[1]!));
      const results = await Promise.all([first, second]);
      assert.equal(late.length, 2, 'the late requests were submitted mid-decode');
      results.push(...(await Promise.all(late)));
      results.forEach((result, i) => assert.deepEqual(result.generatedIds, alone[i]!.generatedIds, `row ${i}`));
      assert.equal(mostInBatch, 2, 'max batch 2: never more rows at once, and two did decode together');
      assert.ok(joinedWhileFirstDecoded, 'a late row decoded beside the first (it took the place the second left)');
    });

    test('a cancelled row leaves with an AbortError; the others finish as alone', async () => {
      const { submit } = batchOf(8);
      const controller = new AbortController();
      const pieces: string[] = [];
      const cancelled = submit({ ...requests[0]!, options: { ...requests[0]!.options, onText: (piece) => { pieces.push(piece); if (pieces.length === 2) controller.abort(); } } }, controller.signal);
      const others = requests.slice(1).map((r) => submit(r));
      await assert.rejects(cancelled, (error: Error) => error.name === 'AbortError');
      const results = await Promise.all(others);
      results.forEach((result, i) => assert.deepEqual(result.generatedIds, alone[i + 1]!.generatedIds, `row ${i + 1}`));
    });

    test('streamed pieces of each row add up to its text', async () => {
      const { submit } = batchOf(8);
      const streams = requests.map(() => [] as string[]);
      const results = await Promise.all(requests.map((r, i) => submit({ ...r, options: { ...r.options, onText: (piece) => streams[i]!.push(piece) } })));
      results.forEach((result, i) => assert.equal(streams[i]!.join(''), result.text.replace(/<eos>$/, '')));
    });
  });
}
