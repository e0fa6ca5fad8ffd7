/**
 * paligemma.altText.prefetch: generate suggestions ahead of time for the images visible in the editor, or
 * all in the document, one after another in the background, so hovers can show them at once.
 */
import * as vscode from 'vscode';
import { checkAltText } from '../../common/altText/altRules.js';
import { backendConfigured, type SettingsStore } from '../config.js';
import type { AltTextService } from './altTextService.js';
import { referencesIn, toRange } from './documentReferences.js';

export function registerAltPrefetch(service: AltTextService, settings: SettingsStore): vscode.Disposable {
  let source: vscode.CancellationTokenSource | undefined;
  let timer: NodeJS.Timeout | undefined;
  const run = async (editor: vscode.TextEditor | undefined) => {
    source?.cancel();
    const current = settings.get();
    const mode = current.prefetch;
    if (!editor || mode === 'off' || !backendConfigured(current)) return;
    const pass = (source = new vscode.CancellationTokenSource());
    const document = editor.document;
    const wanted = referencesIn(document).filter((reference) => {
      if (reference.src === undefined || !checkAltText(reference)) return false;
      if (mode === 'document') return true;
      const range = toRange(document, reference.range.start, reference.range.end);
      return editor.visibleRanges.some((visible) => visible.intersection(range));
    });
    for (const reference of wanted) {
      if (pass.token.isCancellationRequested) return;
      if (service.cached(document, reference.src) !== undefined) continue;
      await service.suggest(document, reference.src, 'informative', pass.token, 'background').catch(() => undefined);
    }
  };
  const schedule = (editor: vscode.TextEditor | undefined) => {
    clearTimeout(timer);
    timer = setTimeout(() => void run(editor), 500);
  };
  schedule(vscode.window.activeTextEditor);
  return vscode.Disposable.from(
    vscode.window.onDidChangeActiveTextEditor(schedule),
    vscode.window.onDidChangeTextEditorVisibleRanges((event) => schedule(event.textEditor)),
    // Turning prefetch on (or choosing a model or a server) should fill the editor in view, not wait for a scroll.
    settings.onDidChange(() => schedule(vscode.window.activeTextEditor)),
    { dispose: () => { clearTimeout(timer); source?.cancel(); } },
  );
}
