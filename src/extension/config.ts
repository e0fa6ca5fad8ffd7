/**
 * The one place that reads PaliGemma's settings. In an untrusted workspace VS Code itself drops the
 * workspace's values of the restricted settings (package.json, capabilities.untrustedWorkspaces);
 * restrictedMode.ts finds them to say so.
 */
import * as vscode from 'vscode';
import type { DeviceChoice, DtypeChoice } from '../protocol.js';

export type Prefetch = 'off' | 'visible' | 'document';

export interface Settings {
  modelPath: string;
  dtype: DtypeChoice;
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
}

const SEVERITIES: Record<string, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('paligemma');
  return {
    modelPath: config.get<string>('modelPath', ''),
    dtype: config.get<DtypeChoice>('dtype', 'auto'),
    device: config.get<DeviceChoice>('device', 'auto'),
    language: config.get<string>('language', 'en'),
    maxNewTokens: config.get<number>('maxNewTokens', 64),
    prefetch: config.get<Prefetch>('altText.prefetch', 'off'),
    diagnostics: config.get<boolean>('altText.diagnostics', true),
    severity: SEVERITIES[config.get<string>('altText.severity', 'warning')] ?? vscode.DiagnosticSeverity.Warning,
    ocrDefaultPaste: config.get<boolean>('ocr.defaultPaste', false),
    nodePath: config.get<string>('nodePath', ''),
    maxImagePixels: config.get<number>('maxImagePixels', 100_000_000),
    allowRemoteImages: config.get<boolean>('allowRemoteImages', false),
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
