/**
 * Which program runs the engine, in the order they are tried (as rust-analyzer's bootstrap finds its
 * server): VS Code's own runtime as Node (ELECTRON_RUN_AS_NODE), the configured `node`, a `node` on
 * PATH, then onnxruntime-web's WebAssembly build (no native addon) in VS Code's runtime. Electron is a
 * hostile host for native addons, so each candidate must pass the engine's self test before a model is
 * loaded in it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

export interface EngineRuntime {
  /** Shown in the status bar and the log. */
  label: string;
  command: string;
  env: Record<string, string>;
}

function findOnPath(name: string): string | null {
  const extensions = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const extension of extensions) {
      const candidate = path.join(dir, name + extension);
      try {
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // Not here.
      }
    }
  }
  return null;
}

export function engineRuntimes(configuredNode: string): EngineRuntime[] {
  const runtimes: EngineRuntime[] = [];
  const isElectron = Boolean(process.versions.electron);
  runtimes.push({ label: isElectron ? vscode.l10n.t('VS Code (Electron as Node)') : vscode.l10n.t("VS Code's Node {0}", process.version), command: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1' } });
  if (configuredNode) runtimes.push({ label: vscode.l10n.t('configured node ({0})', configuredNode), command: configuredNode, env: {} });
  const onPath = findOnPath('node');
  if (onPath && !runtimes.some((r) => r.command === onPath)) runtimes.push({ label: vscode.l10n.t('node on PATH ({0})', onPath), command: onPath, env: {} });
  // Last resort: no native addon at all, onnxruntime-web's WebAssembly build in VS Code's own runtime.
  runtimes.push({ label: vscode.l10n.t("WebAssembly (onnxruntime-web) in VS Code's runtime"), command: process.execPath, env: { ELECTRON_RUN_AS_NODE: '1', PALI_RUNTIME: 'wasm' } });
  return runtimes;
}
