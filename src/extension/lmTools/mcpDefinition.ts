/**
 * Offers the bundled `pali mcp` to VS Code's MCP clients (vscode.lm.registerMcpServerDefinitionProvider), for
 * agents that prefer MCP to language model tools. It runs on VS Code's own runtime as Node (or the user's
 * paligemma.nodePath), with the user's model and cache; VS Code declares the workspace folders as its roots.
 * With paligemma.sharedEngine it runs `pali mcp --shared`, which asks the shared engine that the windows use
 * (one model in memory for both). With the remote backend it runs `pali mcp --remote` on the same server, so no model loads on this machine;
 * the API key is read from secret storage only when VS Code starts the server (resolveMcpServerDefinition),
 * so it is never part of a definition that VS Code may keep.
 * In an untrusted workspace it offers nothing: an agent must not read the workspace's files through it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SettingsStore } from '../config.js';
import { REMOTE_API_KEY_SECRET } from '../engine/remoteBackend.js';
import { engineEnvironment } from '../../common/engineEnvironment.js';

export const MCP_PROVIDER_ID = 'paligemma.mcp';

export function registerMcpDefinition(context: vscode.ExtensionContext, settings: SettingsStore, cacheDir: string): vscode.Disposable {
  const changed = new vscode.EventEmitter<void>();
  const provider: vscode.McpServerDefinitionProvider<vscode.McpStdioServerDefinition> = {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: () => {
      if (!vscode.workspace.isTrusted) return [];
      const current = settings.get();
      const pali = path.join(context.extensionPath, 'dist', 'pali.js');
      const remote = current.backend === 'remote' && current.remoteUrl.trim() !== '';
      const args = remote
        ? [pali, 'mcp', '--remote', current.remoteUrl.trim()]
        : [
          pali, 'mcp', '--dtype', current.dtype, '--device', current.device, ...(current.modelPath ? ['--model', current.modelPath] : []),
          ...(current.sharedEngine ? ['--shared', '--keep-alive', String(current.keepAliveMinutes)] : []),
        ];
      const nodePath = current.nodePath.trim();
      // The engine's malloc settings (engineProcess.ts), the server loading a model as the engine does.
      const { MALLOC_ARENA_MAX, GLIBC_TUNABLES } = engineEnvironment(process.env);
      const env: Record<string, string> = { PALI_CACHE_DIR: cacheDir, MALLOC_ARENA_MAX: MALLOC_ARENA_MAX!, GLIBC_TUNABLES: GLIBC_TUNABLES!, ...(nodePath ? {} : { ELECTRON_RUN_AS_NODE: '1' }) };
      const version = String((context.extension.packageJSON as { version?: string }).version ?? '0');
      const label = remote ? vscode.l10n.t('PaliGemma (remote vision)') : vscode.l10n.t('PaliGemma (local vision)');
      return [new vscode.McpStdioServerDefinition(label, nodePath || process.execPath, args, env, version)];
    },
    resolveMcpServerDefinition: async (server) => {
      if (!server.args.includes('--remote')) return server;
      const apiKey = await context.secrets.get(REMOTE_API_KEY_SECRET);
      if (apiKey) server.env = { ...server.env, PALI_API_KEY: apiKey };
      return server;
    },
  };
  return vscode.Disposable.from(
    changed,
    vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider),
    vscode.workspace.onDidGrantWorkspaceTrust(() => changed.fire()),
    settings.onDidChange((change) => {
      if (['modelPath', 'dtype', 'device', 'nodePath', 'backend', 'remoteUrl', 'sharedEngine', 'keepAliveMinutes'].some((key) => change.changed.has(key as never))) changed.fire();
    }),
  );
}
