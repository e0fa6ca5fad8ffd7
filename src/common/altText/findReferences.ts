/** The one entry point: image references in a document, by VS Code language id. */
import { findHtmlReferences } from './htmlReferences.js';
import { findJsxReferences } from './jsxReferences.js';
import { findMarkdownReferences } from './markdownReferences.js';
import type { ImageReference } from './types.js';

export const SUPPORTED_LANGUAGES = ['markdown', 'html', 'javascriptreact', 'typescriptreact'] as const;

export function findImageReferences(text: string, languageId: string, fileName?: string): ImageReference[] {
  switch (languageId) {
    case 'markdown':
      return findMarkdownReferences(text);
    case 'html':
      return findHtmlReferences(text);
    case 'javascriptreact':
      return findJsxReferences(text, fileName ?? 'file.jsx');
    case 'typescriptreact':
      return findJsxReferences(text, fileName ?? 'file.tsx');
    default:
      return [];
  }
}
