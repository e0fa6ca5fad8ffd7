/**
 * The alt-text rules behind the diagnostics, with stable codes. Pure: tested in plain Node.
 */
import type { ImageReference } from './types.js';

export type AltProblemCode = 'alt-missing' | 'alt-empty' | 'alt-placeholder';

export interface AltProblem {
  code: AltProblemCode;
  message: string;
}

/** Words that say nothing about an image, VS Code's own pasted "Alt text" placeholder among them. */
const PLACEHOLDERS = new Set(['alt text', 'alt', 'image', 'img', 'picture', 'photo', 'screenshot', 'graphic', 'icon', 'untitled']);

function fileNameOf(src: string | undefined): { base: string; stem: string } | null {
  if (!src) return null;
  const path = decodeURIComponentSafe(src.split(/[?#]/)[0]!);
  const base = path.split(/[\\/]/).pop() ?? '';
  if (!base) return null;
  return { base: base.toLowerCase(), stem: base.replace(/\.[^.]+$/, '').toLowerCase() };
}

/** decodeURIComponent that leaves malformed escapes (a literal % in a file name) as they are. */
export function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Is `alt` a placeholder: the file's name, "image", "Alt text" and the like? */
export function isPlaceholderAlt(alt: string, src: string | undefined): boolean {
  const normalised = alt.trim().toLowerCase().replace(/\s+/g, ' ');
  if (PLACEHOLDERS.has(normalised)) return true;
  const file = fileNameOf(src);
  if (!file) return false;
  const loose = (s: string) => s.replace(/[-_\s]+/g, ' ').trim();
  return normalised === file.base || normalised === file.stem || loose(normalised) === loose(file.stem);
}

/**
 * The rules, chosen to agree with the linters people run (markdownlint MD045, axe-core's image-alt,
 * input-image-alt and area-alt, eslint-plugin-jsx-a11y's alt-text) on missing alt text, and to go further on
 * the placeholders they let through. test/cli/altTextLinters.test.ts runs them side by side.
 */
export function checkAltText(reference: ImageReference): AltProblem | null {
  const { alt } = reference;
  if (alt.kind === 'dynamic') return null;
  // Hidden from assistive technology, or named by aria-label(ledby): nothing is read from alt.
  if (reference.hidden || (reference.labelled && (alt.kind === 'missing' || !alt.value.trim()))) return null;
  if (alt.kind === 'missing') {
    return { code: 'alt-missing', message: `<${reference.tag}> has no alt text: screen readers will read its file name or nothing` };
  }
  const value = alt.value.trim();
  if (!value) {
    // A button or a link region always needs a name: an empty alt is never decorative there.
    if (reference.tag === 'input' || reference.tag === 'area') return { code: 'alt-missing', message: `<${reference.tag}> has empty alt text: say what it does` };
    if (reference.decorative) return null;
    if (reference.syntax === 'markdown') return { code: 'alt-missing', message: 'Image has no alt text' };
    return { code: 'alt-empty', message: 'Empty alt text hides this image from screen readers; describe it, or mark it as decorative' };
  }
  if (isPlaceholderAlt(value, reference.src)) {
    return { code: 'alt-placeholder', message: `Alt text "${value}" is a placeholder: describe what the image shows` };
  }
  return null;
}
