/**
 * The text edits behind the quick fixes, as offsets: set an image's alt text (escaped for its syntax), or
 * mark it decorative. Pure, so the escaping is tested in plain Node.
 */
import type { ImageReference } from './types.js';

export interface TextEdit {
  start: number;
  end: number;
  newText: string;
}

function escapeFor(reference: ImageReference, text: string): string {
  if (reference.syntax === 'markdown') return text.replace(/[\\[\]]/g, (c) => `\\${c}`).replace(/\s+/g, ' ');
  // HTML and JSX attribute strings: JSX has no backslash escapes, but both read character references.
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/</g, '&lt;').replace(/\s+/g, ' ');
}

/** The edits that give `reference` the alt text `text`; `documentText` tells whether an attribute is quoted. */
export function setAltTextEdits(reference: ImageReference, text: string, documentText: string): TextEdit[] {
  const escaped = escapeFor(reference, text);
  const { alt } = reference;
  if (alt.kind === 'missing') return [{ start: alt.insertAt, end: alt.insertAt, newText: ` alt="${escaped}"` }];
  if (alt.kind === 'dynamic') return [];
  const { start, end } = alt.valueRange;
  if (reference.syntax !== 'markdown') {
    const before = documentText[start - 1];
    if (before !== '"' && before !== "'") {
      // alt=unquoted or a bare `alt`: write a quoted value.
      return [{ start, end, newText: `${before === '=' ? '' : '='}"${escaped}"` }];
    }
  }
  return [{ start, end, newText: escaped }];
}

/** Marks the image decorative: an empty alt plus role="presentation", or <!-- decorative --> in Markdown. */
export function markDecorativeEdits(reference: ImageReference, documentText: string): TextEdit[] {
  if (reference.syntax === 'markdown') {
    const clear = reference.alt.kind === 'literal' ? setAltTextEdits(reference, '', documentText) : [];
    return [...clear, { start: reference.range.end, end: reference.range.end, newText: '<!-- decorative -->' }];
  }
  const edits = setAltTextEdits(reference, '', documentText);
  const tagEnd = reference.alt.kind === 'missing' ? reference.alt.insertAt : reference.range.start + 1 + reference.tag.length;
  return [...edits, { start: tagEnd, end: tagEnd, newText: ' role="presentation"' }];
}
