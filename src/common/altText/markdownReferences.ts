/**
 * Images in Markdown, found by markdown-it itself (so code spans, escapes and reference definitions are
 * handled as the renderer handles them): inline `![alt](src)` and reference `![alt][ref]` images, plus
 * <img> tags in raw HTML. markdown-it has no column positions for inline tokens, so its image rule is
 * wrapped to record the raw markup, which is then found in the source from the token's line onwards.
 */
import MarkdownIt from 'markdown-it';
import { findHtmlReferences } from './htmlReferences.js';
import type { ImageReference } from './types.js';

type InlineRule = (state: InlineState, silent: boolean) => boolean;
interface InlineState {
  pos: number;
  src: string;
  tokens: { type: string; meta: unknown }[];
  md: { helpers: { parseLinkLabel(state: InlineState, start: number, disableNested?: boolean): number } };
}
interface RawImage {
  raw: string;
  /** Offsets of the alt text inside `raw`. */
  labelStart: number;
  labelEnd: number;
}

const DECORATIVE_COMMENT = /^[ \t]*<!--\s*decorative\s*-->/i;

function createParser(): MarkdownIt {
  const md = new MarkdownIt({ html: true });
  const rules = (md.inline.ruler as unknown as { __rules__: { name: string; fn: InlineRule }[] }).__rules__;
  const image = rules.find((rule) => rule.name === 'image')!.fn;
  md.inline.ruler.at('image', (state: InlineState, silent: boolean) => {
    const start = state.pos;
    if (!image(state, silent)) return false;
    if (!silent) {
      const end = state.pos;
      const labelEnd = state.md.helpers.parseLinkLabel(state, start + 1, false);
      state.pos = end;
      const token = state.tokens[state.tokens.length - 1]!;
      const meta: RawImage = { raw: state.src.slice(start, end), labelStart: 2, labelEnd: labelEnd - start };
      token.meta = meta;
    }
    return true;
  });
  return md;
}

let parser: MarkdownIt | undefined;

function lineOffsets(text: string): number[] {
  const offsets = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') offsets.push(i + 1);
  return offsets;
}

export function findMarkdownReferences(text: string): ImageReference[] {
  parser ??= createParser();
  const tokens = parser.parse(text, {});
  const lines = lineOffsets(text);
  const references: ImageReference[] = [];
  let searchFrom = 0;
  for (const block of tokens) {
    const blockStart = block.map ? lines[block.map[0]]! : searchFrom;
    if (block.type === 'html_block' && block.map) {
      for (const reference of findHtmlReferences(block.content)) references.push(shift(reference, blockStart));
      continue;
    }
    if (block.type !== 'inline' || !block.children) continue;
    let from = Math.max(searchFrom, blockStart);
    for (const child of block.children) {
      if (child.type === 'image' && child.meta) {
        const { raw, labelStart, labelEnd } = child.meta as RawImage;
        const start = text.indexOf(raw, from);
        if (start < 0) continue; // markup broken across indented lines: rare, and never guessed at
        const end = start + raw.length;
        const value = raw.slice(labelStart, labelEnd);
        references.push({
          syntax: 'markdown',
          tag: '![]',
          src: child.attrGet('src') ?? undefined,
          range: { start, end },
          alt: { kind: 'literal', value, valueRange: { start: start + labelStart, end: start + labelEnd } },
          decorative: DECORATIVE_COMMENT.test(text.slice(end, end + 40)),
          hidden: false,
          labelled: false,
        });
        from = end;
      } else if (child.type === 'html_inline') {
        const start = text.indexOf(child.content, from);
        if (start < 0) continue;
        for (const reference of findHtmlReferences(child.content)) references.push(shift(reference, start));
        from = start + child.content.length;
      }
    }
    searchFrom = from;
  }
  return references;
}

function shift(reference: ImageReference, by: number): ImageReference {
  const move = (r: { start: number; end: number }) => ({ start: r.start + by, end: r.end + by });
  const alt = reference.alt.kind === 'missing' ? { kind: 'missing' as const, insertAt: reference.alt.insertAt + by }
    : reference.alt.kind === 'literal' ? { ...reference.alt, valueRange: move(reference.alt.valueRange) }
    : reference.alt;
  return { ...reference, range: move(reference.range), alt };
}
