/**
 * The one place that reads PaliGemma's settings. In an untrusted workspace the restricted settings
 * (model path, node path, remote images) come from the user's own settings only, never the workspace's,
 * and the UI says so.
 */
import * as vscode from 'vscode';
import type { DeviceChoice, ModelDtype } from '../protocol.js';

export type Prefetch = 'off' | 'visible' | 'document';

export interface Settings {
  modelPath: string;
  dtype: ModelDtype;
  device: DeviceChoice;
  language: string;
  maxNewTokens: number;
  prefetch: Prefetch;
  diagnostics: boolean;
  severity: vscode.DiagnosticSeverity;
  ocrDefaultPaste: boolean;
  nodePath: string;
  maxImagePixels: number;
  allowRemoteImages: boolean;
  /** Restricted settings that the workspace tried to set and that were ignored because it is untrusted. */
  ignoredForTrust: string[];
}

export const RESTRICTED_SETTINGS = ['modelPath', 'nodePath', 'allowRemoteImages'] as const;

const SEVERITIES: Record<string, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

function restricted<T>(config: vscode.WorkspaceConfiguration, key: string, fallback: T, ignored: string[]): T {
  if (vscode.workspace.isTrusted) return config.get<T>(key, fallback);
  const inspected = config.inspect<T>(key);
  const fromWorkspace = inspected?.workspaceFolderValue ?? inspected?.workspaceValue;
  if (fromWorkspace !== undefined) ignored.push(`paligemma.${key}`);
  return inspected?.globalValue ?? inspected?.defaultValue ?? fallback;
}

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('paligemma');
  const ignored: string[] = [];
  return {
    modelPath: restricted(config, 'modelPath', '', ignored),
    dtype: config.get<ModelDtype>('dtype', 'fp32'),
    device: config.get<DeviceChoice>('device', 'auto'),
    language: config.get<string>('language', 'en'),
    maxNewTokens: config.get<number>('maxNewTokens', 64),
    prefetch: config.get<Prefetch>('altText.prefetch', 'off'),
    diagnostics: config.get<boolean>('altText.diagnostics', true),
    severity: SEVERITIES[config.get<string>('altText.severity', 'warning')] ?? vscode.DiagnosticSeverity.Warning,
    ocrDefaultPaste: config.get<boolean>('ocr.defaultPaste', false),
    nodePath: restricted(config, 'nodePath', '', ignored),
    maxImagePixels: config.get<number>('maxImagePixels', 100_000_000),
    allowRemoteImages: restricted(config, 'allowRemoteImages', false, ignored),
    ignoredForTrust: ignored,
  };
}

export function onSettingsChanged(listener: (settings: Settings) => void): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('paligemma')) listener(readSettings());
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => listener(readSettings())),
  );
}
