/**
 * Alt-text problems in the Problems panel (missing, empty, placeholder), with stable codes, updated as
 * documents change. Severity and on/off come from settings.
 */
import * as vscode from 'vscode';
import { checkAltText } from '../../common/altText/altRules.js';
import type { Settings } from '../config.js';
import { referencesIn, toRange } from './documentReferences.js';

export const DIAGNOSTIC_SOURCE = 'PaliGemma';
const SUPPORTED = new Set(['markdown', 'html', 'javascriptreact', 'typescriptreact']);

/** `onImages` hears of each document in which diagnostics found image references (a hover may follow). */
export function registerAltDiagnostics(settings: () => Settings, onImages: (document: vscode.TextDocument) => void): vscode.Disposable {
  const collection = vscode.languages.createDiagnosticCollection('paligemma.altText');
  const timers = new Map<string, NodeJS.Timeout>();
  const update = (document: vscode.TextDocument) => {
    if (!SUPPORTED.has(document.languageId)) return;
    const current = settings();
    if (!current.diagnostics) {
      collection.delete(document.uri);
      return;
    }
    const diagnostics: vscode.Diagnostic[] = [];
    const references = referencesIn(document);
    if (references.length) onImages(document);
    for (const reference of references) {
      const problem = checkAltText(reference);
      if (!problem) continue;
      const where = reference.alt.kind === 'literal' && reference.alt.valueRange.end > reference.alt.valueRange.start
        ? reference.alt.valueRange
        : reference.range;
      const diagnostic = new vscode.Diagnostic(toRange(document, where.start, where.end), problem.message, current.severity);
      diagnostic.source = DIAGNOSTIC_SOURCE;
      diagnostic.code = problem.code;
      diagnostics.push(diagnostic);
    }
    collection.set(document.uri, diagnostics);
  };
  const schedule = (document: vscode.TextDocument) => {
    const key = document.uri.toString();
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => update(document), 250));
  };
  vscode.workspace.textDocuments.forEach(update);
  return vscode.Disposable.from(
    collection,
    vscode.workspace.onDidOpenTextDocument(update),
    vscode.workspace.onDidChangeTextDocument((event) => schedule(event.document)),
    vscode.workspace.onDidCloseTextDocument((document) => collection.delete(document.uri)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('paligemma.altText')) vscode.workspace.textDocuments.forEach(update);
    }),
    { dispose: () => timers.forEach(clearTimeout) },
  );
}
