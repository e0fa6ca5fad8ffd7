/**
 * Where HF's PaliGemmaProcessor and `generate` decide the edges: a prompt that already holds `<image>`,
 * and the end tokens of generation_config.json.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isUserError } from '../../src/common/errors.js';
import { loadModel, type PaliGemmaModel } from '../../src/engine/model.js';
import { buildPromptIds, encodeImage } from '../../src/engine/paligemma/inputs.js';
import { generate } from '../../src/engine/generate/generate.js';
import { forgeTiny, tempDir, writeGradientPng, type TinyModel } from '../helpers/fixtures.js';

describe('PaliGemmaProcessor: a prompt that already holds <image>', () => {
  const root = tempDir('processor');
  let model: PaliGemmaModel;
  let image: string;
  before(async () => {
    const tiny = forgeTiny(root, 'tiny');
    model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    image = await writeGradientPng(path.join(root, 'image.png'), 40, 30);
  });
  after(() => model?.release());

  test('<image> at the start is expanded in place, not added a second time', async () => {
    assert.deepEqual(buildPromptIds(model, '<image>caption en'), buildPromptIds(model, 'caption en'));
    const encoded = await encodeImage(model, image);
    const options = { maxNewTokens: 4 };
    const withToken = await generate(model, encoded, '<image>caption en', options);
    assert.deepEqual(withToken.generatedIds, (await generate(model, encoded, 'caption en', options)).generatedIds);
  });

  test('text before <image> stays before it, and <bos> follows the image tokens', () => {
    const ids = buildPromptIds(model, 'caption <image>en');
    const before = model.tokenizer.encode('caption ');
    const N = model.config.num_image_tokens;
    assert.deepEqual(ids.slice(0, before.length), before);
    assert.deepEqual(ids.slice(before.length, before.length + N), new Array(N).fill(model.imageTokenId));
    assert.equal(ids[before.length + N], model.bosTokenId);
    assert.deepEqual(ids.slice(before.length + N + 1), model.tokenizer.encode('en\n'));
  });

  test('two <image> tokens for one image are refused clearly', () => {
    assert.throws(() => buildPromptIds(model, '<image><image>caption en'), (error) => isUserError(error) && /2 <image> tokens/.test((error as Error).message));
  });
});

describe('end tokens come from generation_config.json, else config.json', () => {
  const root = tempDir('end-tokens');
  let tiny: TinyModel;
  let image: string;
  before(async () => {
    tiny = forgeTiny(root, 'tiny');
    image = await writeGradientPng(path.join(root, 'image.png'), 40, 30);
  });

  const generationConfig = (content: unknown) =>
    fs.writeFileSync(path.join(tiny.checkpointDir, 'generation_config.json'), typeof content === 'string' ? content : JSON.stringify(content));
  const greedy = async () => {
    const model = await loadModel(tiny.checkpointDir, { dtype: 'fp32', device: 'cpu', cacheRoot: tiny.cacheRoot });
    try {
      return { ids: (await generate(model, await encodeImage(model, image), 'caption en', { maxNewTokens: 5 })).generatedIds, eos: model.eosTokenIds };
    } finally {
      await model.release();
    }
  };

  test('a list in generation_config.json ends generation on any of its ids', async () => {
    const free = await greedy();
    assert.equal(free.ids.length, 5, 'the tiny model does not stop by itself within 5 tokens');
    assert.deepEqual([...free.eos], [1]);
    // The first token that did not come earlier: ending on it stops generation right there.
    const k = free.ids.findIndex((id, i) => i > 0 && !free.ids.slice(0, i).includes(id));
    assert.ok(k > 0);
    generationConfig({ bos_token_id: 2, eos_token_id: [1, free.ids[k]], pad_token_id: 0 });
    const stopped = await greedy();
    assert.deepEqual(stopped.ids, free.ids.slice(0, k + 1), 'stops at (and returns) that token, as HF does');
    generationConfig({ eos_token_id: free.ids[0] });
    assert.deepEqual((await greedy()).ids, free.ids.slice(0, 1));
  });

  test('without eos_token_id there, config.json\'s is used; a broken value is a clear error', async () => {
    generationConfig({ bos_token_id: 2 });
    assert.deepEqual([...(await greedy()).eos], [1]);
    generationConfig({ eos_token_id: 'one' });
    await assert.rejects(greedy(), (error) => isUserError(error) && /generation_config\.json: eos_token_id/.test((error as Error).message));
    generationConfig('{ not json');
    await assert.rejects(greedy(), (error) => isUserError(error) && /generation config .*generation_config\.json is not valid JSON/.test((error as Error).message));
  });
});
