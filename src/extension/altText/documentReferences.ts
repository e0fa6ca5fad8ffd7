/** Image references of an open document, parsed once per document version. */
import * as vscode from 'vscode';
import { findImageReferences, SUPPORTED_LANGUAGES } from '../../common/altText/findReferences.js';
import type { ImageReference } from '../../common/altText/types.js';

export const ALT_TEXT_SELECTOR: vscode.DocumentSelector = SUPPORTED_LANGUAGES.map((language) => ({ language }));

const parsed = new WeakMap<vscode.TextDocument, { version: number; references: ImageReference[] }>();

export function referencesIn(document: vscode.TextDocument): ImageReference[] {
  const cached = parsed.get(document);
  if (cached?.version === document.version) return cached.references;
  const references = findImageReferences(document.getText(), document.languageId, document.fileName);
  parsed.set(document, { version: document.version, references });
  return references;
}

export function referenceAt(document: vscode.TextDocument, position: vscode.Position): ImageReference | undefined {
  const offset = document.offsetAt(position);
  return referencesIn(document).find((r) => r.range.start <= offset && offset <= r.range.end);
}

export function toRange(document: vscode.TextDocument, start: number, end: number): vscode.Range {
  return new vscode.Range(document.positionAt(start), document.positionAt(end));
}
