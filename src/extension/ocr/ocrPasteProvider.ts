/**
 * "Paste as text (OCR)": a paste edit for images in every text editor. provideDocumentPasteEdits only reads
 * the image bytes; the slow model call happens in resolveDocumentPasteEdit, which VS Code runs once the
 * user picks (or is given) this edit, and cancels when the user moves on. It yields to the Markdown
 * extension's image paste unless paligemma.ocr.defaultPaste is on.
 */
import * as vscode from 'vscode';
import type { Settings } from '../config.js';
import type { VisionEngine } from '../engine/visionEngine.js';
import { describeError } from '../../common/errors.js';

export const OCR_PASTE_KIND = vscode.DocumentDropOrPasteEditKind.Empty.append('text', 'paligemma', 'ocr');
const MARKDOWN_IMAGE_KIND = vscode.DocumentDropOrPasteEditKind.Empty.append('markdown', 'link');

class OcrPasteEdit extends vscode.DocumentPasteEdit {
  constructor(readonly image: { base64: string; name: string }) {
    super('', vscode.l10n.t('Paste as text (OCR)'), OCR_PASTE_KIND);
  }
}

export class OcrPasteProvider implements vscode.DocumentPasteEditProvider<OcrPasteEdit> {
  constructor(private readonly engine: VisionEngine, private readonly settings: () => Settings) {}

  async provideDocumentPasteEdits(
    _document: vscode.TextDocument,
    _ranges: readonly vscode.Range[],
    dataTransfer: vscode.DataTransfer,
    _context: vscode.DocumentPasteEditContext,
    token: vscode.CancellationToken,
  ): Promise<OcrPasteEdit[] | undefined> {
    for (const [mime, item] of dataTransfer) {
      if (!mime.startsWith('image/')) continue;
      const file = item.asFile();
      if (!file) continue;
      const bytes = await file.data();
      if (token.isCancellationRequested) return undefined;
      const edit = new OcrPasteEdit({ base64: Buffer.from(bytes).toString('base64'), name: file.name || `pasted.${mime.slice(6)}` });
      if (!this.settings().ocrDefaultPaste) edit.yieldTo = [MARKDOWN_IMAGE_KIND];
      return [edit];
    }
    return undefined;
  }

  async resolveDocumentPasteEdit(edit: OcrPasteEdit, token: vscode.CancellationToken): Promise<OcrPasteEdit> {
    try {
      const result = await this.engine.generate({ image: edit.image, task: { task: 'ocr' }, maxNewTokens: Math.max(this.settings().maxNewTokens, 256) }, token);
      edit.insertText = result.text;
    } catch (error) {
      if (!token.isCancellationRequested) void vscode.window.showErrorMessage(vscode.l10n.t('OCR failed: {0}', describeError(error)));
      edit.insertText = '';
    }
    return edit;
  }
}

export function registerOcrPaste(engine: VisionEngine, settings: () => Settings): vscode.Disposable {
  return vscode.languages.registerDocumentPasteEditProvider({ pattern: '**' }, new OcrPasteProvider(engine, settings), {
    providedPasteEditKinds: [OCR_PASTE_KIND],
    pasteMimeTypes: ['image/*'],
  });
}
