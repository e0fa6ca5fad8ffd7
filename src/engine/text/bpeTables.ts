/**
 * A SentencePiece-style BPE tokenizer.json (Gemma's, so PaliGemma's) as compact tables: every piece in one
 * string, the merges as integer triples. transformers.js builds a 256,000-entry Map of pieces and a
 * 580,604-entry Map keyed by JSON.stringify of each merge from the real Gemma vocabulary: 2.4 s and about
 * 400 MB on every engine start (measured in #22). The tables load from a cache file in tens of
 * milliseconds and hold about 20 MB; bpeTokenizer.ts encodes and decodes with them exactly as
 * transformers.js does (test/engine/text/bpeTokenizer.test.ts compares the two on the real vocabulary).
 *
 * Only the shapes this module understands are accepted: anything else (another normalizer, a pre-tokenizer,
 * a WordPiece or Unigram model, merges that name pieces outside the vocabulary) gives the reason, and the
 * caller uses transformers.js.
 */

export interface AddedTokenEntry {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
  /** Matched after normalisation (in normalised text) rather than before. */
  normalized: boolean;
}

/** One step of tokenizer.json's decoder, of the kinds Gemma uses. */
export type DecoderStep =
  | { type: 'Replace'; pattern: string; content: string }
  | { type: 'ByteFallback' }
  | { type: 'Fuse' }
  | { type: 'Strip'; content: string; start: number; stop: number };

export interface BpeSettings {
  /** tokenizer.json's Replace normalizer (a literal string), or null for none. */
  normalizer: { pattern: string; content: string } | null;
  byteFallback: boolean;
  fuseUnk: boolean;
  unkToken: string | null;
  /** The id <unk> encodes to, or null when there is no unknown token. */
  unkId: number | null;
  /** The id of each byte's piece (<0x41> for 0x41), or -1 where the vocabulary has none. */
  byteIds: number[];
  addedTokens: AddedTokenEntry[];
  /** What `skip_special_tokens` leaves out: special added tokens and the config's additional ones. */
  specialTokens: string[];
  decoder: DecoderStep[];
  cleanUpTokenizationSpaces: boolean;
  bosToken: string | null;
}

export interface BpeTables {
  settings: BpeSettings;
  /** Every piece (added tokens in their ids' places), joined; piece i is pieces.slice(offsets[i], offsets[i + 1]). */
  pieces: string;
  offsets: Uint32Array;
  /** Merge r, in rank order: [left id, right id, merged id] at 3r. */
  merges: Int32Array;
}

type Json = Record<string, unknown>;

/** Text that UTF-8 cannot carry: the cache file stores the pieces as UTF-8. */
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Why the tables cannot stand for this tokenizer, or null. */
class Unsupported extends Error {}

function literalPattern(pattern: unknown, what: string): string {
  if (!isRecord(pattern) || typeof pattern.String !== 'string' || pattern.Regex !== undefined) throw new Unsupported(`${what} is not a literal string`);
  return pattern.String;
}

function readNormalizer(normalizer: unknown): BpeSettings['normalizer'] {
  if (normalizer === null || normalizer === undefined) return null;
  if (!isRecord(normalizer) || normalizer.type !== 'Replace') throw new Unsupported(`normalizer ${JSON.stringify(isRecord(normalizer) ? normalizer.type : normalizer)}`);
  return { pattern: literalPattern(normalizer.pattern, 'the normalizer\'s pattern'), content: String(normalizer.content ?? '') };
}

function readDecoderStep(step: unknown): DecoderStep {
  if (!isRecord(step)) throw new Unsupported('a decoder step that is not an object');
  switch (step.type) {
    case 'Replace': return { type: 'Replace', pattern: literalPattern(step.pattern, 'the decoder\'s pattern'), content: String(step.content ?? '') };
    case 'ByteFallback': return { type: 'ByteFallback' };
    case 'Fuse': return { type: 'Fuse' };
    case 'Strip': return { type: 'Strip', content: String(step.content ?? ''), start: Number(step.start ?? 0), stop: Number(step.stop ?? 0) };
    default: throw new Unsupported(`decoder ${JSON.stringify(step.type)}`);
  }
}

function readDecoder(decoder: unknown): DecoderStep[] {
  if (decoder === null || decoder === undefined) throw new Unsupported('no decoder');
  if (isRecord(decoder) && decoder.type === 'Sequence') {
    if (!Array.isArray(decoder.decoders)) throw new Unsupported('a decoder sequence without decoders');
    return decoder.decoders.map(readDecoderStep);
  }
  return [readDecoderStep(decoder)];
}

/**
 * Without special tokens (all this engine asks for), a TemplateProcessing passes the text's tokens through
 * when its single template holds the sequence once; any other post-processor could change them.
 */
function checkPostProcessor(processor: unknown): void {
  if (processor === null || processor === undefined) return;
  if (!isRecord(processor) || processor.type !== 'TemplateProcessing' || !Array.isArray(processor.single)) throw new Unsupported('a post-processor other than TemplateProcessing');
  const sequences = processor.single.filter((piece) => isRecord(piece) && isRecord(piece.Sequence));
  if (sequences.length !== 1 || (sequences[0] as { Sequence: { id?: unknown } }).Sequence.id !== 'A') throw new Unsupported('a TemplateProcessing without exactly one sequence A');
}

/** The token text of a config entry: a string, or an AddedToken object with `content`. */
function configToken(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isRecord(value) && typeof value.content === 'string') return value.content;
  return null;
}

function readModel(model: unknown): { vocab: Json; merges: unknown[]; model: Json } {
  if (!isRecord(model) || model.type !== 'BPE') throw new Unsupported(`model ${JSON.stringify(isRecord(model) ? model.type : model)}`);
  if (model.dropout !== null && model.dropout !== undefined) throw new Unsupported('BPE dropout');
  for (const key of ['end_of_word_suffix', 'continuing_subword_suffix'] as const) {
    if (model[key] !== null && model[key] !== undefined && model[key] !== '') throw new Unsupported(`BPE ${key}`);
  }
  if (!isRecord(model.vocab) || !Array.isArray(model.merges)) throw new Unsupported('BPE without vocab or merges');
  // transformers.js reads the format from the first merge only: a list that mixes the two differs there.
  const pairs = Array.isArray(model.merges[0]);
  if (model.merges.some((merge) => Array.isArray(merge) !== pairs)) throw new Unsupported('merges written in two formats');
  return { vocab: model.vocab, merges: model.merges, model };
}

/** A merge's two pieces, from "left right" (older files) or ["left", "right"]. */
function mergeParts(merge: unknown): [string, string] {
  if (typeof merge === 'string') {
    const space = merge.indexOf(' ');
    if (space >= 0 && merge.indexOf(' ', space + 1) < 0) return [merge.slice(0, space), merge.slice(space + 1)];
  } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
    return [merge[0], merge[1]];
  }
  throw new Unsupported(`merge ${JSON.stringify(merge)} is not two pieces`);
}

/**
 * The tables for tokenizer.json `tokenizerJson` and tokenizer_config.json `config`, or why they cannot stand
 * for it.
 */
export function buildBpeTables(tokenizerJson: Json, config: Json): BpeTables | { unsupported: string } {
  try {
    return build(tokenizerJson, config);
  } catch (error) {
    if (error instanceof Unsupported) return { unsupported: error.message };
    throw error;
  }
}

function build(tokenizerJson: Json, config: Json): BpeTables {
  if (tokenizerJson.pre_tokenizer !== null && tokenizerJson.pre_tokenizer !== undefined) throw new Unsupported('a pre-tokenizer');
  checkPostProcessor(tokenizerJson.post_processor);
  if (config.tokenizer_class === 'VitsTokenizer') throw new Unsupported('VitsTokenizer, whose decoder differs');
  if (config.remove_space === true || config.do_lowercase_and_remove_accent) throw new Unsupported('remove_space or lowercasing in the config');
  const normalizer = readNormalizer(tokenizerJson.normalizer);
  const decoder = readDecoder(tokenizerJson.decoder);
  const { vocab, merges, model } = readModel(tokenizerJson.model);

  // What transformers.js's BPE holds: piece -> id (added tokens override), and id -> piece.
  const idOf = new Map<string, number>();
  for (const [piece, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Unsupported(`piece ${JSON.stringify(piece)} has id ${JSON.stringify(id)}`);
    idOf.set(piece, id);
  }
  const pieceOf: (string | undefined)[] = new Array(idOf.size);
  for (const [piece, id] of idOf) pieceOf[id] = piece;
  const addedTokens: AddedTokenEntry[] = [];
  const specialTokens: string[] = [];
  for (const entry of Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : []) {
    if (!isRecord(entry) || typeof entry.content !== 'string' || typeof entry.id !== 'number') throw new Unsupported('an added token without content or id');
    // Flags are read as transformers.js reads them: any truthy value is on.
    if (entry.single_word) throw new Unsupported('a single_word added token');
    const special = Boolean(entry.special ?? false);
    const token: AddedTokenEntry = {
      content: entry.content,
      id: entry.id,
      lstrip: Boolean(entry.lstrip ?? false),
      rstrip: Boolean(entry.rstrip ?? false),
      normalized: Boolean(entry.normalized ?? !special),
    };
    if (token.normalized && normalizer && normalize(token.content, normalizer) !== token.content) {
      throw new Unsupported(`added token ${JSON.stringify(token.content)} changes when normalised`);
    }
    addedTokens.push(token);
    idOf.set(token.content, token.id);
    pieceOf[token.id] = token.content;
    if (special) specialTokens.push(token.content);
  }
  const additional = Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens : [];
  for (const value of additional) {
    // transformers.js pushes an object entry as it is, which then matches no token: only strings count.
    if (typeof value === 'string' && !specialTokens.includes(value)) specialTokens.push(value);
  }

  const offsets = new Uint32Array(pieceOf.length + 1);
  const parts: string[] = [];
  let length = 0;
  for (let id = 0; id < pieceOf.length; id++) {
    const piece = pieceOf[id];
    if (piece === undefined) throw new Unsupported(`no piece has id ${id}`);
    if (SURROGATE.test(piece) && LONE_SURROGATE.test(piece)) throw new Unsupported(`piece ${id} has a lone surrogate`);
    parts.push(piece);
    length += piece.length;
    offsets[id + 1] = length;
  }

  // Merges in id space. Two strings with one id would make merges that transformers.js tells apart by
  // their text share a key here.
  const owners = new Uint8Array(pieceOf.length);
  for (const id of idOf.values()) {
    if (owners[id]++) throw new Unsupported(`two pieces share id ${id}`);
  }
  const idOfPiece = (piece: string): number => {
    const id = idOf.get(piece);
    if (id === undefined || piece === '') throw new Unsupported(`merge piece ${JSON.stringify(piece)} is not in the vocabulary`);
    return id;
  };
  const table = new Int32Array(merges.length * 3);
  merges.forEach((merge, rank) => {
    const [left, right] = mergeParts(merge);
    table[3 * rank] = idOfPiece(left);
    table[3 * rank + 1] = idOfPiece(right);
    table[3 * rank + 2] = idOfPiece(left + right);
  });

  const unkToken = typeof model.unk_token === 'string' ? model.unk_token : null;
  const unkId = unkToken === null ? null : idOf.get(unkToken);
  if (unkId === undefined) throw new Unsupported(`the unknown token ${JSON.stringify(unkToken)} is not in the vocabulary`);
  // transformers.js fuses <unk> runs by the model vocabulary's id, from before added tokens override it.
  if (unkToken !== null && vocab[unkToken] !== unkId) throw new Unsupported(`the unknown token ${JSON.stringify(unkToken)} has another id as an added token`);
  if (model.ignore_merges) throw new Unsupported('ignore_merges');
  const byteIds = Array.from({ length: 256 }, (_, byte) => idOf.get(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`) ?? -1);
  return {
    settings: {
      normalizer,
      byteFallback: Boolean(model.byte_fallback ?? false),
      fuseUnk: Boolean(model.fuse_unk ?? false),
      unkToken,
      unkId,
      byteIds,
      addedTokens,
      specialTokens,
      decoder,
      cleanUpTokenizationSpaces: (config.clean_up_tokenization_spaces as boolean | undefined) ?? true,
      bosToken: configToken(config.bos_token),
    },
    pieces: parts.join(''),
    offsets,
    merges: table,
  };
}

export function isOneCodePoint(text: string): boolean {
  return text.length === 1 || (text.length === 2 && text.codePointAt(0)! > 0xffff);
}

/** tokenizer.json's Replace normaliser with a literal pattern, as transformers.js applies it. */
export function normalize(text: string, normalizer: { pattern: string; content: string }): string {
  return text.replaceAll(literalRegExp(normalizer.pattern), normalizer.content);
}

/** transformers.js turns a literal pattern into a global Unicode regular expression; so does this. */
export function literalRegExp(pattern: string): RegExp {
  return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
}
