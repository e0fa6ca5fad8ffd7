/**
 * Where an image comes from: a file (explorer, quick pick, the active image preview) read through VS Code's
 * file system (so virtual workspaces work), or pasted bytes. The engine receives bytes or a local path.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { IMAGE_EXTENSIONS, isImageFile } from '../common/imageFiles.js';
import type { ImageSource } from '../protocol.js';
const IMAGE_GLOB = `**/*.{${IMAGE_EXTENSIONS.join(',')}}`;

export function isImageUri(uri: vscode.Uri): boolean {
  return isImageFile(uri.path);
}

/** The image shown in the active editor tab (VS Code's image preview is a custom editor). */
export function activeImageUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputCustom && isImageUri(input.uri)) return input.uri;
  return undefined;
}

/** A local path when the image is on disk, else its bytes read through the workspace file system. */
export async function toImageSource(uri: vscode.Uri): Promise<ImageSource> {
  if (uri.scheme === 'file') return { path: uri.fsPath };
  const bytes = await vscode.workspace.fs.readFile(uri);
  return { base64: Buffer.from(bytes).toString('base64'), name: path.basename(uri.path) };
}

/** The quick pick: the active image, workspace images, or a file on disk. */
export async function pickImage(title: string): Promise<vscode.Uri | undefined> {
  type Item = vscode.QuickPickItem & { uri?: vscode.Uri; browse?: boolean };
  const items: Item[] = [];
  const active = activeImageUri();
  if (active) items.push({ label: `$(eye) ${path.basename(active.path)}`, description: vscode.l10n.t('active image'), uri: active });
  items.push({ label: `$(folder-opened) ${vscode.l10n.t('Choose a file on disk…')}`, browse: true });
  const quickPick = vscode.window.createQuickPick<Item>();
  quickPick.title = title;
  quickPick.placeholder = vscode.l10n.t('Pick an image');
  quickPick.items = items;
  quickPick.busy = true;
  quickPick.show();
  void vscode.workspace.findFiles(IMAGE_GLOB, '**/node_modules/**', 500).then((files) => {
    const workspaceItems: Item[] = files
      .sort((a, b) => a.path.localeCompare(b.path))
      .map((uri) => ({ label: `$(file-media) ${path.basename(uri.path)}`, description: vscode.workspace.asRelativePath(uri, false), uri }));
    if (workspaceItems.length) quickPick.items = [...items, { label: vscode.l10n.t('workspace'), kind: vscode.QuickPickItemKind.Separator }, ...workspaceItems];
    quickPick.busy = false;
  });
  const choice = await new Promise<Item | undefined>((resolve) => {
    quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]));
    quickPick.onDidHide(() => resolve(undefined));
  });
  quickPick.dispose();
  if (!choice) return undefined;
  if (choice.browse) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { [vscode.l10n.t('Images')]: [...IMAGE_EXTENSIONS] }, title });
    return picked?.[0];
  }
  return choice.uri;
}
