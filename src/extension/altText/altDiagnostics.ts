/**
 * Alt-text problems in the Problems panel (missing, empty, placeholder), with stable codes, updated as
 * documents change. Severity and on/off come from settings.
 */
import * as vscode from 'vscode';
import { checkAltText } from '../../common/altText/altRules.js';
import { SUPPORTED_LANGUAGES } from '../../common/altText/findReferences.js';
import type { SettingsStore } from '../config.js';
import { altProblemMessage } from './altMessages.js';
import { referencesIn, toRange } from './documentReferences.js';

export const DIAGNOSTIC_SOURCE = 'PaliGemma';
const SUPPORTED = new Set<string>(SUPPORTED_LANGUAGES);

/** `onImages` hears of each document in which diagnostics found image references (a hover may follow). */
export function registerAltDiagnostics(settings: SettingsStore, onImages: (document: vscode.TextDocument) => void): vscode.Disposable {
  const collection = vscode.languages.createDiagnosticCollection('paligemma.altText');
  const timers = new Map<string, NodeJS.Timeout>();
  const update = (document: vscode.TextDocument) => {
    if (!SUPPORTED.has(document.languageId)) return;
    const current = settings.get();
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
      const diagnostic = new vscode.Diagnostic(toRange(document, where.start, where.end), altProblemMessage(problem, reference), current.severity);
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
    settings.onDidChange(({ changed }) => {
      if (changed.has('diagnostics') || changed.has('severity')) vscode.workspace.textDocuments.forEach(update);
    }),
    { dispose: () => timers.forEach(clearTimeout) },
  );
}
