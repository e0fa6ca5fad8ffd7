/**
 * Quick fixes on images: "Insert alt text: «…»" (the text is computed in resolveCodeAction, so listing the
 * fixes stays instant), "Mark as decorative", "Describe purpose…", and "Generate alt text for all images in
 * this file" as one WorkspaceEdit the user reviews.
 */
import * as vscode from 'vscode';
import { markDecorativeEdits, setAltTextEdits, type TextEdit } from '../../common/altText/altEdits.js';
import { checkAltText } from '../../common/altText/altRules.js';
import { PURPOSES, type ImagePurpose } from '../../common/altText/purpose.js';
import type { ImageReference } from '../../common/altText/types.js';
import type { AltTextService } from './altTextService.js';
import { referenceAt, referencesIn, toRange } from './documentReferences.js';
import { describeError } from '../../common/errors.js';

class InsertAltTextAction extends vscode.CodeAction {
  constructor(readonly document: vscode.TextDocument, readonly reference: ImageReference, readonly suggestion: string | undefined) {
    super(suggestion ? vscode.l10n.t('Insert alt text: «{0}»', suggestion) : vscode.l10n.t('Insert alt text (generate with PaliGemma)'), vscode.CodeActionKind.QuickFix);
  }
}

export function toWorkspaceEdit(document: vscode.TextDocument, edits: TextEdit[], edit = new vscode.WorkspaceEdit(), metadata?: vscode.WorkspaceEditEntryMetadata): vscode.WorkspaceEdit {
  for (const e of edits) edit.replace(document.uri, toRange(document, e.start, e.end), e.newText, metadata);
  return edit;
}

export class AltCodeActionProvider implements vscode.CodeActionProvider<vscode.CodeAction> {
  static readonly kinds = [vscode.CodeActionKind.QuickFix, vscode.CodeActionKind.Source.append('paligemma.altText')];

  constructor(private readonly service: AltTextService) {}

  provideCodeActions(document: vscode.TextDocument, range: vscode.Range | vscode.Selection): vscode.CodeAction[] {
    const reference = referenceAt(document, range.start);
    const actions: vscode.CodeAction[] = [];
    if (reference && reference.alt.kind !== 'dynamic') {
      const problem = checkAltText(reference);
      if (reference.src !== undefined) {
        const insert = new InsertAltTextAction(document, reference, this.service.cached(document, reference.src));
        insert.isPreferred = problem !== null;
        actions.push(insert);
      }
      if (!reference.decorative) {
        const decorative = new vscode.CodeAction(vscode.l10n.t('Mark as decorative (alt="")'), vscode.CodeActionKind.QuickFix);
        decorative.edit = toWorkspaceEdit(document, markDecorativeEdits(reference, document.getText()));
        actions.push(decorative);
      }
      if (reference.src !== undefined) {
        const purpose = new vscode.CodeAction(vscode.l10n.t('Describe purpose…'), vscode.CodeActionKind.QuickFix);
        purpose.command = { command: 'paligemma.altTextForPurpose', title: purpose.title, arguments: [document.uri.toString(), reference.range.start] };
        actions.push(purpose);
      }
      for (const action of actions) {
        if (problem) action.diagnostics = vscode.languages.getDiagnostics(document.uri).filter((d) => d.code === problem.code && d.range.intersection(toRange(document, reference.range.start, reference.range.end)));
      }
    }
    if (referencesIn(document).some((r) => r.src !== undefined && checkAltText(r))) {
      const all = new vscode.CodeAction(vscode.l10n.t('Generate alt text for all images in this file'), vscode.CodeActionKind.Source.append('paligemma.altText'));
      all.command = { command: 'paligemma.generateAllAltText', title: all.title, arguments: [document.uri.toString()] };
      actions.push(all);
    }
    return actions;
  }

  async resolveCodeAction(action: vscode.CodeAction, token: vscode.CancellationToken): Promise<vscode.CodeAction> {
    if (!(action instanceof InsertAltTextAction)) return action;
    try {
      const text = action.suggestion ?? (await this.service.suggest(action.document, action.reference.src, 'informative', token));
      action.edit = toWorkspaceEdit(action.document, setAltTextEdits(action.reference, text, action.document.getText()));
    } catch (error) {
      if (!token.isCancellationRequested) void vscode.window.showErrorMessage(vscode.l10n.t('Alt text failed: {0}', describeError(error)));
    }
    return action;
  }
}

export async function pickPurpose(): Promise<ImagePurpose | undefined> {
  const labels: Record<ImagePurpose, [string, string]> = {
    informative: [vscode.l10n.t('Informative'), vscode.l10n.t('It shows something: describe it')],
    functional: [vscode.l10n.t('Functional'), vscode.l10n.t('It is a link or button: say what it does')],
    complex: [vscode.l10n.t('Complex'), vscode.l10n.t('A chart or diagram: a longer description')],
    decorative: [vscode.l10n.t('Decorative'), vscode.l10n.t('It adds nothing: alt=""')],
  };
  const choice = await vscode.window.showQuickPick(
    PURPOSES.map((purpose) => ({ label: labels[purpose][0], detail: labels[purpose][1], purpose })),
    { title: vscode.l10n.t('What is this image for?') },
  );
  return choice?.purpose;
}
