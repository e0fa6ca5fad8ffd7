/**
 * What an image is for decides what its alt text says (WAI's alt decision tree): an informative image is
 * described, a functional one (a link or button) says what it does, a complex one (chart, diagram) gets a
 * longer description, a decorative one gets none.
 */
import type { TaskRequest } from '../prompts.js';

export type ImagePurpose = 'informative' | 'functional' | 'decorative' | 'complex';

export const PURPOSES: ImagePurpose[] = ['informative', 'functional', 'complex', 'decorative'];

/** The PaliGemma request for a purpose, or null for decorative images (their alt is empty). */
export function altTextRequest(purpose: ImagePurpose, language = 'en'): TaskRequest | null {
  switch (purpose) {
    case 'informative':
      return { task: 'caption', language };
    case 'complex':
      return { task: 'describe', language };
    case 'functional':
      return { task: 'answer', language, text: 'what action does this button or icon stand for?' };
    case 'decorative':
      return null;
  }
}

/** Model output as alt text: one line, no trailing period doubling, capitalised like a sentence. */
export function toAltText(modelText: string): string {
  const line = modelText.replace(/<(loc|seg)\d+>/g, '').replace(/\s+/g, ' ').trim();
  if (!line) return '';
  return line[0]!.toUpperCase() + line.slice(1);
}
