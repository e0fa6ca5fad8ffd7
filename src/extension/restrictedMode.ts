/**
 * Restricted Mode: VS Code already ignores a workspace's values for the settings we declare restricted
 * (model path, node path, remote images), and then hides them from `inspect()` too. To tell the user why
 * their workspace's model is not used, read the workspace's own settings files for those keys.
 */
import { parse } from 'jsonc-parser';
import * as vscode from 'vscode';
import { RESTRICTED_KEYS } from './restrictedKeys.js';

async function readJsonc(uri: vscode.Uri): Promise<Record<string, unknown> | undefined> {
  try {
    const value = parse(Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8'));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The restricted settings this untrusted workspace sets (and VS Code ignores); [] when trusted. */
export async function ignoredRestrictedSettings(): Promise<string[]> {
  if (vscode.workspace.isTrusted) return [];
  const found = new Set<string>();
  const sections: Record<string, unknown>[] = [];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const settings = await readJsonc(vscode.Uri.joinPath(folder.uri, '.vscode', 'settings.json'));
    if (settings) sections.push(settings);
  }
  const workspaceFile = vscode.workspace.workspaceFile;
  if (workspaceFile && workspaceFile.scheme !== 'untitled') {
    const settings = (await readJsonc(workspaceFile))?.settings;
    if (settings && typeof settings === 'object') sections.push(settings as Record<string, unknown>);
  }
  for (const section of sections) for (const key of RESTRICTED_KEYS) if (key in section) found.add(key);
  return [...found];
}
