/**
 * The commands behind the hover links and quick fixes: generate (and cache) a suggestion, insert it,
 * choose a purpose, and fix every image of a file in one reviewed WorkspaceEdit.
 */
import * as vscode from 'vscode';
import { markDecorativeEdits, setAltTextEdits } from '../../common/altText/altEdits.js';
import { checkAltText } from '../../common/altText/altRules.js';
import { toWorkspaceEdit, pickPurpose } from './altCodeActions.js';
import type { AltTextService } from './altTextService.js';
import { referencesIn } from './documentReferences.js';
import { generateAltTextForWorkspace } from './workspaceAltText.js';
import { describeError } from '../../common/errors.js';

async function documentAndReference(uriText: string, start: number) {
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(uriText));
  const reference = referencesIn(document).find((r) => r.range.start === start);
  return { document, reference };
}

export function registerAltCommands(service: AltTextService): vscode.Disposable {
  const generate = async (uriText: string, start: number) => {
    const { document, reference } = await documentAndReference(uriText, start);
    if (!reference) return;
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: vscode.l10n.t('Generating alt text'), cancellable: true },
      async (_progress, token) => {
        try {
          const text = await service.suggest(document, reference.src, 'informative', token);
          vscode.window.setStatusBarMessage(vscode.l10n.t('Alt text ready: hover the image to see it'), 5000);
          return text;
        } catch (error) {
          if (!token.isCancellationRequested) void vscode.window.showErrorMessage(vscode.l10n.t('Alt text failed: {0}', describeError(error)));
          return undefined;
        }
      },
    );
  };

  const insert = async (uriText: string, start: number, text: string) => {
    const { document, reference } = await documentAndReference(uriText, start);
    if (!reference) return;
    await vscode.workspace.applyEdit(toWorkspaceEdit(document, setAltTextEdits(reference, text, document.getText())));
  };

  const forPurpose = async (uriText: string, start: number) => {
    const purpose = await pickPurpose();
    if (!purpose) return;
    const { document, reference } = await documentAndReference(uriText, start);
    if (!reference) return;
    if (purpose === 'decorative') {
      await vscode.workspace.applyEdit(toWorkspaceEdit(document, markDecorativeEdits(reference, document.getText())));
      return;
    }
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Generating alt text'), cancellable: true },
      async (_progress, token) => {
        const text = await service.suggest(document, reference.src, purpose, token);
        const { document: current, reference: still } = await documentAndReference(uriText, start);
        if (still) await vscode.workspace.applyEdit(toWorkspaceEdit(current, setAltTextEdits(still, text, current.getText())));
      },
    );
  };

  const forAll = async (uriText?: string) => {
    const document = uriText ? await vscode.workspace.openTextDocument(vscode.Uri.parse(uriText)) : vscode.window.activeTextEditor?.document;
    if (!document) return;
    const targets = referencesIn(document).filter((r) => r.src !== undefined && checkAltText(r));
    if (!targets.length) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Every image in this file has alt text.'));
      return;
    }
    const version = document.version;
    const edit = new vscode.WorkspaceEdit();
    const failures: string[] = [];
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Generating alt text'), cancellable: true },
      async (progress, token) => {
        for (const [index, reference] of targets.entries()) {
          if (token.isCancellationRequested) return;
          progress.report({ message: `${index + 1}/${targets.length} ${reference.src}`, increment: 100 / targets.length });
          try {
            const text = await service.suggest(document, reference.src, 'informative', token);
            const metadata = { label: vscode.l10n.t('Alt text for {0}', reference.src ?? ''), needsConfirmation: true };
            toWorkspaceEdit(document, setAltTextEdits(reference, text, document.getText()), edit, metadata);
          } catch (error) {
            failures.push(`${reference.src}: ${describeError(error)}`);
          }
        }
      },
    );
    if (document.version !== version) {
      void vscode.window.showWarningMessage(vscode.l10n.t('The file changed while alt text was generated; run the command again.'));
      return;
    }
    if (edit.size > 0) await vscode.workspace.applyEdit(edit, { isRefactoring: true });
    if (failures.length) void vscode.window.showWarningMessage(vscode.l10n.t('No alt text for {0} image(s): {1}', String(failures.length), failures.join('; ')));
  };

  return vscode.Disposable.from(
    vscode.commands.registerCommand('paligemma.generateAltText', generate),
    vscode.commands.registerCommand('paligemma.insertAltText', insert),
    vscode.commands.registerCommand('paligemma.altTextForPurpose', forPurpose),
    vscode.commands.registerCommand('paligemma.generateAllAltText', forAll),
    vscode.commands.registerCommand('paligemma.generateAltTextForWorkspace', () => generateAltTextForWorkspace(service)),
  );
}
