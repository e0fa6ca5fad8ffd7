/**
 * Encodes and decodes with the compact tables of bpeTables.ts, step for step as transformers.js 4.3's
 * Tokenizer does for the same tokenizer.json: added tokens split out first (longest match), the normaliser,
 * byte-pair merges by rank (leftmost first among equals), byte fallback; the decoder's steps in order.
 * The difference is representation: merges work on ids through an open-addressing table instead of
 * strings through a Map keyed by JSON text.
 */
import { isOneCodePoint, literalRegExp, normalize, type AddedTokenEntry, type BpeTables, type DecoderStep } from './bpeTables.js';
import type { PaliTokenizer } from './tokenizer.js';

/** Longest-match splitting on added tokens, as transformers.js's DictionarySplitter does (by UTF-16 unit). */
class AddedTokenSplitter {
  private readonly root = new Map<string, TrieNode>();

  constructor(words: string[]) {
    for (const word of words) {
      let children = this.root;
      let node: TrieNode | undefined;
      for (let i = 0; i < word.length; i++) {
        node = children.get(word[i]!);
        if (!node) children.set(word[i]!, (node = { children: new Map() }));
        children = node.children;
      }
      if (node) node.word = word;
    }
  }

  split(text: string): string[] {
    if (this.root.size === 0) return [text];
    const result: string[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      let match: string | undefined;
      let children = this.root;
      for (let j = i; j < text.length; j++) {
        const node = children.get(text[j]!);
        if (!node) break;
        if (node.word !== undefined) match = node.word;
        children = node.children;
      }
      if (match) {
        if (i > start) result.push(text.slice(start, i));
        result.push(match);
        i += match.length;
        start = i;
      } else {
        i++;
      }
    }
    if (start < text.length) result.push(text.slice(start));
    return result;
  }
}

interface TrieNode {
  children: Map<string, TrieNode>;
  word?: string;
}

/** A min-heap of numbers: the merge candidates, keyed rank * length + position. */
class NumberHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const items = this.items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= items.length) break;
        const child = left + 1 < items.length && items[left + 1]! < items[left]! ? left + 1 : left;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

const CLEAN_UP: [RegExp, string][] = [
  [/ \./g, '.'], [/ \?/g, '?'], [/ !/g, '!'], [/ ,/g, ','], [/ ' /g, '\''],
  [/ n't/g, 'n\'t'], [/ 'm/g, '\'m'], [/ 's/g, '\'s'], [/ 've/g, '\'ve'], [/ 're/g, '\'re'],
];

/** Encoded sections are kept, as transformers.js keeps its last 10,000: prompts repeat. */
const CACHE_CAPACITY = 10_000;

export class BpeTokenizer implements PaliTokenizer {
  readonly bosToken: string;
  private readonly settings: BpeTables['settings'];
  private readonly pieces: string;
  private readonly offsets: Uint32Array;
  private readonly merges: Int32Array;
  /** Open addressing over (left, right) ids: rank + 1, or 0 for an empty slot. */
  private readonly pairSlots: Int32Array;
  private readonly pairMask: number;
  /** Pieces of one code point, the symbols BPE starts from. */
  private readonly charIds = new Map<string, number>();
  private readonly byteIds: Int32Array;
  private readonly unkId: number | undefined;
  private readonly added = new Map<string, AddedTokenEntry>();
  private readonly beforeNormalizing: AddedTokenSplitter;
  private readonly afterNormalizing: AddedTokenSplitter;
  private readonly special: Set<string>;
  private readonly decoderSteps: ((tokens: string[]) => string[])[];
  private readonly encoded = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  constructor(tables: BpeTables) {
    this.settings = tables.settings;
    this.pieces = tables.pieces;
    this.offsets = tables.offsets;
    this.merges = tables.merges;
    this.bosToken = this.settings.bosToken ?? '<bos>';

    const mergeCount = this.merges.length / 3;
    let slots = 1;
    while (slots < mergeCount * 2) slots *= 2;
    this.pairSlots = new Int32Array(slots);
    this.pairMask = slots - 1;
    // Ranks go in ascending order and a repeated pair keeps the later rank, as a Map built from the list does.
    for (let rank = 0; rank < mergeCount; rank++) {
      const slot = this.findSlot(this.merges[3 * rank]!, this.merges[3 * rank + 1]!);
      this.pairSlots[slot] = rank + 1;
    }

    const count = this.offsets.length - 1;
    for (let id = 0; id < count; id++) {
      const length = this.offsets[id + 1]! - this.offsets[id]!;
      if (length !== 1 && length !== 2) continue;
      const piece = this.piece(id);
      if (isOneCodePoint(piece)) this.charIds.set(piece, id);
    }
    for (const token of this.settings.addedTokens) {
      this.added.set(token.content, token);
      if (isOneCodePoint(token.content)) this.charIds.set(token.content, token.id);
    }
    this.byteIds = Int32Array.from(this.settings.byteIds);
    this.unkId = this.settings.unkId ?? undefined;

    const tokens = this.settings.addedTokens;
    this.beforeNormalizing = new AddedTokenSplitter(tokens.filter((t) => !(t.normalized && this.settings.normalizer)).map((t) => t.content));
    this.afterNormalizing = new AddedTokenSplitter(tokens.filter((t) => t.normalized && this.settings.normalizer).map((t) => t.content));
    this.special = new Set(this.settings.specialTokens);
    this.decoderSteps = this.settings.decoder.map(decoderStep);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    const sections = this.trimAroundAdded(this.beforeNormalizing.split(text));
    for (let section of sections) {
      if (section.length === 0) continue;
      const token = this.added.get(section);
      if (token) {
        ids.push(token.id);
        continue;
      }
      if (this.settings.normalizer) section = normalize(section, this.settings.normalizer);
      if (section.length === 0) continue;
      for (const part of this.trimAroundAdded(this.afterNormalizing.split(section))) {
        if (part.length === 0) continue;
        const inner = this.added.get(part);
        if (inner) ids.push(inner.id);
        else for (const id of this.encodeSection(part)) ids.push(id);
      }
    }
    return ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    let tokens = ids.map((id) => (Number.isInteger(id) && id >= 0 && id < this.offsets.length - 1 ? this.piece(id) : this.settings.unkToken ?? ''));
    if (skipSpecialTokens) tokens = tokens.filter((token) => !this.special.has(token));
    for (const step of this.decoderSteps) tokens = step(tokens);
    let text = tokens.join('');
    if (this.settings.cleanUpTokenizationSpaces) for (const [pattern, replacement] of CLEAN_UP) text = text.replace(pattern, replacement);
    return text;
  }

  tokenToId(token: string): number | undefined {
    const ids = this.encode(token);
    return ids.length === 1 && this.decode(ids, false) === token ? ids[0] : undefined;
  }

  private piece(id: number): string {
    return this.pieces.slice(this.offsets[id]!, this.offsets[id + 1]!);
  }

  /** Added tokens with lstrip/rstrip take the whitespace beside them, in place, as transformers.js does. */
  private trimAroundAdded(sections: string[]): string[] {
    for (let i = 0; i < sections.length; i++) {
      const token = this.added.get(sections[i]!);
      if (!token) continue;
      if (token.lstrip && i > 0) sections[i - 1] = sections[i - 1]!.trimEnd();
      if (token.rstrip && i < sections.length - 1) sections[i + 1] = sections[i + 1]!.trimStart();
    }
    return sections;
  }

  private findSlot(left: number, right: number): number {
    let slot = (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x632be5ab, 0x85ebca77)) & this.pairMask;
    for (;;) {
      const entry = this.pairSlots[slot]!;
      if (entry === 0) return slot;
      const rank = entry - 1;
      if (this.merges[3 * rank] === left && this.merges[3 * rank + 1] === right) return slot;
      slot = (slot + 1) & this.pairMask;
    }
  }

  private rankOf(left: number, right: number): number {
    if (left < 0 || right < 0) return -1;
    return this.pairSlots[this.findSlot(left, right)]! - 1;
  }

  /** One normalised section without added tokens: BPE, byte fallback, then <unk> runs fused. */
  private encodeSection(section: string): number[] {
    const cached = this.encoded.get(section);
    if (cached) return cached;
    const chars = Array.from(section);
    const n = chars.length;
    // Symbols are piece ids; a character that is no piece is -(1 + its index) until the end.
    const symbols = new Int32Array(n);
    chars.forEach((char, i) => (symbols[i] = this.charIds.get(char) ?? -(1 + i)));
    if (n > 1) this.merge(symbols, n);

    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const symbol = symbols[i]!;
      if (symbol === MERGED_AWAY) continue;
      if (symbol >= 0) {
        ids.push(symbol);
        continue;
      }
      const bytes = this.settings.byteFallback ? [...this.utf8.encode(chars[-symbol - 1]!)].map((b) => this.byteIds[b]!) : [];
      if (bytes.length > 0 && bytes.every((id) => id >= 0)) ids.push(...bytes);
      else if (this.unkId !== undefined) ids.push(this.unkId);
    }
    const result = this.settings.fuseUnk && this.unkId !== undefined ? ids.filter((id, i) => id !== this.unkId || ids[i - 1] !== this.unkId) : ids;
    if (this.encoded.size >= CACHE_CAPACITY) this.encoded.clear();
    if (section.length < 256) this.encoded.set(section, result);
    return result;
  }

  /** Merges adjacent symbols in place, lowest rank first, the leftmost among equal ranks. */
  private merge(symbols: Int32Array, n: number): void {
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new NumberHeap();
    const consider = (at: number) => {
      const after = next[at]!;
      if (after < 0) return;
      const rank = this.rankOf(symbols[at]!, symbols[after]!);
      if (rank >= 0) heap.push(rank * n + at);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / n);
      const at = key - rank * n;
      const after = next[at]!;
      // A stale candidate: its symbols have merged since it was queued.
      if (symbols[at] === MERGED_AWAY || after < 0 || symbols[at] !== this.merges[3 * rank] || symbols[after] !== this.merges[3 * rank + 1]) continue;
      symbols[at] = this.merges[3 * rank + 2]!;
      symbols[after] = MERGED_AWAY;
      next[at] = next[after]!;
      if (next[at]! >= 0) prev[next[at]!] = at;
      if (prev[at]! >= 0) consider(prev[at]!);
      consider(at);
    }
  }
}

/** Marks a symbol that merged into the one on its left. Unknown characters are -1 .. -n, so this is below. */
const MERGED_AWAY = -0x7fffffff;

function decoderStep(step: DecoderStep): (tokens: string[]) => string[] {
  switch (step.type) {
    case 'Replace': {
      const pattern = literalRegExp(step.pattern);
      return (tokens) => tokens.map((token) => token.replaceAll(pattern, step.content));
    }
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip':
      return (tokens) => tokens.map((token) => strip(token, step));
    case 'ByteFallback':
      return byteFallback;
  }
}

/** Runs of <0xNN> pieces become their UTF-8 text (U+FFFD where a character is incomplete). */
function byteFallback(tokens: string[]): string[] {
  const decoder = new TextDecoder();
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    out.push(decoder.decode(Uint8Array.from(bytes)));
    bytes = [];
  };
  for (const token of tokens) {
    const byte = token.length === 6 && token.startsWith('<0x') && token.endsWith('>') ? parseInt(token.slice(3, 5), 16) : NaN;
    if (!Number.isNaN(byte)) {
      bytes.push(byte);
      continue;
    }
    flush();
    out.push(token);
  }
  flush();
  return out;
}

function strip(token: string, step: { content: string; start: number; stop: number }): string {
  let start = 0;
  for (let i = 0; i < step.start && token[i] === step.content; i++) start = i + 1;
  let stop = token.length;
  for (let i = 0; i < step.stop && token[token.length - i - 1] === step.content; i++) stop = token.length - i - 1;
  return token.slice(start, stop);
}
