/**
 * Images outside the workspace folders, through `..` or a symbolic link, are read only with the user's
 * consent, given per file and remembered for this workspace. A document in a cloned repository must not
 * make the extension read ~/.ssh/id_rsa.png because it names ../../.ssh/id_rsa.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const STATE_KEY = 'paligemma.imagesOutsideWorkspace';

export class OutsideConsent {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly state: vscode.Memento) {}

  has(uri: vscode.Uri): boolean {
    return this.state.get<string[]>(STATE_KEY, []).includes(uri.toString());
  }

  /** Asks, in a modal dialog that names the file, and remembers a yes. */
  async ask(uri: vscode.Uri): Promise<boolean> {
    const allow = vscode.l10n.t('Allow');
    const choice = await vscode.window.showWarningMessage(
      vscode.l10n.t('Allow PaliGemma to read {0}? It is outside this workspace.', uri.scheme === 'file' ? uri.fsPath : uri.toString()),
      { modal: true, detail: vscode.l10n.t('The image is sent to the local engine only, to suggest its alt text.') },
      allow,
    );
    if (choice !== allow) return false;
    await this.state.update(STATE_KEY, [...new Set([...this.state.get<string[]>(STATE_KEY, []), uri.toString()])]);
    this.changed.fire();
    return true;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** Whether `file` (a local path) really lies inside `folder`, symbolic links resolved on both. */
export function realPathInside(file: string, folder: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync.native(p);
    } catch {
      return path.resolve(p); // not there (yet): judged by its name, and reading it fails later
    }
  };
  const relative = path.relative(real(folder), real(file));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
