/** The extension through VS Code's API: its commands, and what its providers return for a document. */
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

export function registerExtensionTests(): void {
  suite('PaliGemma extension API', () => {
    let document: vscode.TextDocument;
    const imageStart = () => document.positionAt(document.getText().indexOf('![](photo.png)') + 4);

    suiteSetup(async () => {
      const extension = vscode.extensions.all.find((e) => e.packageJSON.name === 'paligemma-local');
      assert.ok(extension, 'the extension is installed');
      await extension.activate();
      const folder = vscode.workspace.workspaceFolders![0]!.uri;
      document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'notes.md'));
      await vscode.window.showTextDocument(document);
    });

    test('every contributed command is registered', async () => {
      const registered = new Set(await vscode.commands.getCommands(true));
      const contributed: { command: string }[] = vscode.extensions.all.find((e) => e.packageJSON.name === 'paligemma-local')!.packageJSON.contributes.commands;
      for (const { command } of contributed) assert.ok(registered.has(command), command);
    });

    test('a missing alt is a diagnostic with a stable code', async () => {
      for (let i = 0; i < 40 && !vscode.languages.getDiagnostics(document.uri).length; i++) await new Promise((r) => setTimeout(r, 100));
      const codes = vscode.languages.getDiagnostics(document.uri).map((d) => d.code);
      assert.deepEqual(codes, ['alt-missing']);
    });

    test('the hover offers to generate alt text without waiting on a model', async () => {
      const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', document.uri, imageStart());
      const text = hovers.flatMap((h) => h.contents).map((c) => (c instanceof vscode.MarkdownString ? c.value : String(c))).join('\n');
      assert.match(text, /Generate alt text/);
    });

    test('"Mark as decorative" edits the document so the problem goes away', async () => {
      const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', document.uri, new vscode.Range(imageStart(), imageStart()));
      const decorative = actions.find((a) => a.title.startsWith('Mark as decorative'));
      assert.ok(decorative?.edit, 'the quick fix carries its edit');
      assert.ok(await vscode.workspace.applyEdit(decorative.edit));
      assert.match(document.getText(), /!\[\]\(photo\.png\)<!-- decorative -->/);
    });
  });
}
