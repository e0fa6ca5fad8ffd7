// Test-only (the e2e suite installs it beside PaliGemma): reads .tool-calls.json in the workspace, calls each
// tool through vscode.lm.invokeTool as an agent would, and writes the tools it sees and each call's text
// parts (or error) to .tool-results.json. "List Commands" writes the registered command ids that start
// with the prefix in .commands-prefix to .commands.json.
// It also pastes an image into Markdown as a link, with the kind VS Code's Markdown extension gives its own
// image paste on the desktop (code-server's offers none for a pasted image): PaliGemma's "Paste as text
// (OCR)" yields to that kind unless paligemma.ocr.defaultPaste is on. VS Code orders providers of equal
// score built-in ones last, then newest first; Markdown's is built-in and this one is not, so it activates
// at start-up ('*'), before PaliGemma, to be ordered as Markdown's is.
const vscode = require('vscode');

const MARKDOWN_IMAGE_KIND = vscode.DocumentDropOrPasteEditKind.Empty.append('markdown', 'link', 'image');

exports.activate = (context) => {
  context.subscriptions.push(vscode.languages.registerDocumentPasteEditProvider({ language: 'markdown' }, {
    async provideDocumentPasteEdits(_document, _ranges, dataTransfer) {
      for (const [mime, item] of dataTransfer) {
        const file = mime.startsWith('image/') ? item.asFile() : undefined;
        if (file) return [new vscode.DocumentPasteEdit(`![](${file.name})`, 'Insert image link', MARKDOWN_IMAGE_KIND)];
      }
      return undefined;
    },
  }, { providedPasteEditKinds: [MARKDOWN_IMAGE_KIND], pasteMimeTypes: ['image/*'] }));
  context.subscriptions.push(vscode.commands.registerCommand('toolCaller.run', async () => {
    const folder = vscode.workspace.workspaceFolders[0].uri;
    const calls = JSON.parse(Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder, '.tool-calls.json'))).toString('utf8'));
    const results = [];
    for (const call of calls) {
      try {
        const result = await vscode.lm.invokeTool(call.tool, { input: call.input, toolInvocationToken: undefined }, new vscode.CancellationTokenSource().token);
        results.push({ tool: call.tool, text: result.content.filter((part) => part instanceof vscode.LanguageModelTextPart).map((part) => part.value).join('') });
      } catch (error) {
        results.push({ tool: call.tool, error: error instanceof Error ? error.message : String(error) });
      }
    }
    const tools = vscode.lm.tools.map((tool) => ({ name: tool.name, tags: tool.tags }));
    await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(folder, '.tool-results.json'), Buffer.from(JSON.stringify({ tools, results }, null, 2)));
  }));
  context.subscriptions.push(vscode.commands.registerCommand('toolCaller.listCommands', async () => {
    const folder = vscode.workspace.workspaceFolders[0].uri;
    const prefix = Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder, '.commands-prefix'))).toString('utf8').trim();
    const commands = (await vscode.commands.getCommands(true)).filter((id) => id.startsWith(prefix)).sort();
    await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(folder, '.commands.json'), Buffer.from(JSON.stringify(commands, null, 2)));
  }));
};
