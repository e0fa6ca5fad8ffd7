/** What the alt-text features know about an image reference in a document. Offsets are UTF-16 indices. */

export type ReferenceSyntax = 'markdown' | 'html' | 'jsx';

export interface TextRange {
  start: number;
  end: number;
}

export type AltText =
  /** No alt attribute (HTML, JSX): one goes in at `insertAt`, right after the tag name. */
  | { kind: 'missing'; insertAt: number }
  /** Literal text: Markdown's brackets or a quoted attribute. `valueRange` covers the text only. */
  | { kind: 'literal'; value: string; valueRange: TextRange }
  /** A JSX expression such as alt={t('logo')}: computed at run time, so never judged. */
  | { kind: 'dynamic' };

export interface ImageReference {
  syntax: ReferenceSyntax;
  /** `![]` for Markdown, else the element's tag name as written (img, input, area, Image). */
  tag: string;
  /** The image's address as written; undefined for <area>, which points at a link, not an image. */
  src?: string;
  /** The whole Markdown image, or the HTML/JSX start tag. */
  range: TextRange;
  alt: AltText;
  /** Marked as decorative on purpose: role="presentation"/"none", aria-hidden, or <!-- decorative -->. */
  decorative: boolean;
  /** aria-hidden="true": hidden from assistive technology, so it needs no alt (axe, markdownlint). */
  hidden: boolean;
  /** A non-empty aria-label or aria-labelledby names it instead of alt (axe, eslint-plugin-jsx-a11y). */
  labelled: boolean;
}
