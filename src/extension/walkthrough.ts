/**
 * The Get Started walkthrough's commands: a sample image to describe, a scratch document for OCR paste,
 * and a Markdown file with images to fix, copied out of the extension so that edits never touch it.
 */
import * as vscode from 'vscode';

export function registerWalkthroughCommands(context: vscode.ExtensionContext, describe: (uri: vscode.Uri) => Thenable<unknown>): vscode.Disposable {
  const media = vscode.Uri.joinPath(context.extensionUri, 'media', 'walkthrough');
  return vscode.Disposable.from(
    vscode.commands.registerCommand('paligemma.describeSample', () => describe(vscode.Uri.joinPath(media, 'sample.png'))),
    vscode.commands.registerCommand('paligemma.openOcrPractice', async () => {
      const document = await vscode.workspace.openTextDocument({ language: 'markdown', content: '# OCR practice\n\nPaste a screenshot below, then choose "Paste as text (OCR)":\n\n' });
      const editor = await vscode.window.showTextDocument(document);
      const end = document.lineAt(document.lineCount - 1).range.end;
      editor.selection = new vscode.Selection(end, end);
    }),
    vscode.commands.registerCommand('paligemma.openAltTextSample', async () => {
      const folder = vscode.Uri.joinPath(context.globalStorageUri, 'walkthrough');
      await vscode.workspace.fs.createDirectory(folder);
      for (const name of ['sample.md', 'sample.png']) {
        await vscode.workspace.fs.copy(vscode.Uri.joinPath(media, name), vscode.Uri.joinPath(folder, name), { overwrite: true });
      }
      await vscode.window.showTextDocument(vscode.Uri.joinPath(folder, 'sample.md'));
    }),
  );
}
