/**
 * "OCR Image into Editor": reads the text of an image file (from the explorer, the open image preview, or a
 * quick pick) and inserts it at the cursor of the last text editor, where the cursor's spot stands when the
 * text arrives. Cancellable from the progress notification.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Settings } from '../config.js';
import { EngineError, type VisionEngine } from '../engine/visionEngine.js';
import { activeImageUri, pickImage, toImageSource } from '../imageSources.js';
import { insertWhenReady, type InsertionTarget } from '../textInsertion.js';
import { describeError } from '../../common/errors.js';

export async function ocrImageIntoEditor(
  engine: VisionEngine,
  settings: () => Settings,
  insertionTarget: () => InsertionTarget | undefined,
  uri?: vscode.Uri,
): Promise<void> {
  const target = insertionTarget();
  if (!target) {
    void vscode.window.showInformationMessage(vscode.l10n.t('Open a text editor first: the text goes in at its cursor.'));
    return;
  }
  const image = uri instanceof vscode.Uri ? uri : activeImageUri() ?? (await pickImage(vscode.l10n.t('OCR Image into Editor')));
  if (!image) return;
  const source = await toImageSource(image);
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Reading text in {0}', path.basename(image.path)), cancellable: true },
    async (_progress, token) => {
      const text = engine.generate({ image: source, task: { task: 'ocr' }, maxNewTokens: Math.max(settings().maxNewTokens, 256) }, token).then((r) => r.text);
      try {
        const inserted = await insertWhenReady(target.document, target.position, text);
        if (!inserted && !token.isCancellationRequested) void vscode.window.showInformationMessage(vscode.l10n.t('No text was inserted: the image has no text, or its document was closed.'));
        // The image preview may have hidden the document: show where the text went.
        if (inserted && !vscode.window.visibleTextEditors.some((editor) => editor.document === target.document)) {
          await vscode.window.showTextDocument(target.document, { preview: false });
        }
      } catch (error) {
        if (error instanceof EngineError && error.kind === 'cancelled') return;
        void vscode.window.showErrorMessage(vscode.l10n.t('OCR failed: {0}', describeError(error)));
      }
    },
  );
}
