/**
 * Offers the bundled `pali mcp` to VS Code's MCP clients (vscode.lm.registerMcpServerDefinitionProvider), for
 * agents that prefer MCP to language model tools. It runs on VS Code's own runtime as Node (or the user's
 * paligemma.nodePath), with the user's model and cache; VS Code declares the workspace folders as its roots.
 * In an untrusted workspace it offers nothing: an agent must not read the workspace's files through it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SettingsStore } from '../config.js';

export const MCP_PROVIDER_ID = 'paligemma.mcp';

export function registerMcpDefinition(context: vscode.ExtensionContext, settings: SettingsStore, cacheDir: string): vscode.Disposable {
  const changed = new vscode.EventEmitter<void>();
  const provider: vscode.McpServerDefinitionProvider<vscode.McpStdioServerDefinition> = {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: () => {
      if (!vscode.workspace.isTrusted) return [];
      const current = settings.get();
      const pali = path.join(context.extensionPath, 'dist', 'pali.js');
      const args = [pali, 'mcp', '--dtype', current.dtype, '--device', current.device, ...(current.modelPath ? ['--model', current.modelPath] : [])];
      const nodePath = current.nodePath.trim();
      const env: Record<string, string> = { PALI_CACHE_DIR: cacheDir, ...(nodePath ? {} : { ELECTRON_RUN_AS_NODE: '1' }) };
      const version = String((context.extension.packageJSON as { version?: string }).version ?? '0');
      return [new vscode.McpStdioServerDefinition(vscode.l10n.t('PaliGemma (local vision)'), nodePath || process.execPath, args, env, version)];
    },
  };
  return vscode.Disposable.from(
    changed,
    vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider),
    vscode.workspace.onDidGrantWorkspaceTrust(() => changed.fire()),
    settings.onDidChange((change) => {
      if (['modelPath', 'dtype', 'device', 'nodePath'].some((key) => change.changed.has(key as never))) changed.fire();
    }),
  );
}
