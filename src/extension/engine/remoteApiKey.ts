/** The remote server's API key: asked for once, kept in VS Code's secret storage, never in settings. */
import * as vscode from 'vscode';
import { REMOTE_API_KEY_SECRET } from './remoteBackend.js';

/** Asks for the key; an empty answer removes it. Returns false when the user dismissed the box. */
export async function setRemoteApiKey(secrets: vscode.SecretStorage): Promise<boolean> {
  const value = await vscode.window.showInputBox({
    title: vscode.l10n.t('Remote PaliGemma server: API key'),
    prompt: vscode.l10n.t('The key that the server was started with (pali serve --api-key, vllm serve --api-key). Kept in VS Code\'s secret storage; leave empty to remove it.'),
    password: true,
    ignoreFocusOut: true,
  });
  if (value === undefined) return false;
  if (value.trim()) await secrets.store(REMOTE_API_KEY_SECRET, value.trim());
  else await secrets.delete(REMOTE_API_KEY_SECRET);
  return true;
}
