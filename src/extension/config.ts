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
  engineMemoryLimitGB: number;
  /** Minutes an idle model stays loaded; 0: while the window is open. */
  keepAliveMinutes: number;
  /** One engine for all of this user's windows and tools (a Unix socket, or a named pipe on Windows). */
  sharedEngine: boolean;
  allowRemoteImages: boolean;
  backend: 'local' | 'remote';
  remoteUrl: string;
  vaePath: string;
}

const SEVERITIES: Record<string, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

function readSettings(): Settings {
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
    engineMemoryLimitGB: config.get<number>('engineMemoryLimitGB', 0),
    keepAliveMinutes: Math.max(0, config.get<number>('keepAlive', 10)),
    sharedEngine: config.get<boolean>('sharedEngine', true),
    allowRemoteImages: config.get<boolean>('allowRemoteImages', false),
    backend: config.get<string>('backend', 'local') === 'remote' ? 'remote' : 'local',
    remoteUrl: config.get<string>('remote.url', ''),
    vaePath: config.get<string>('segmentation.vaePath', ''),
  };
}

/** Whether the chosen backend has what it needs to answer: a model (local) or a server's address (remote). */
export function backendConfigured(settings: Settings): boolean {
  return settings.backend === 'remote' ? settings.remoteUrl.trim() !== '' : settings.modelPath !== '';
}

/** Settings whose change needs a new engine process: the model it holds, its weights, device and Node. */
const ENGINE_KEYS: (keyof Settings)[] = ['modelPath', 'dtype', 'device', 'nodePath', 'sharedEngine'];

export interface SettingsChange {
  previous: Settings;
  current: Settings;
  /** The fields whose values changed (none when only the trust state did). */
  changed: Set<keyof Settings>;
  /** True when the engine must restart to honour the change (ENGINE_KEYS). */
  needsEngineRestart: boolean;
}

/**
 * The settings, read once and kept up to date; everyone else reads `get()` and listens to
 * `onDidChange`, which fires after the new values are in place. One listener on VS Code's configuration
 * and trust events, so that no feature can see an old snapshot or run before another's refresh.
 */
export class SettingsStore implements vscode.Disposable {
  private current = readSettings();
  private ignored: string[] = [];
  private readonly changed = new vscode.EventEmitter<SettingsChange>();
  readonly onDidChange = this.changed.event;
  private readonly subscriptions: vscode.Disposable[];

  constructor() {
    this.subscriptions = [
      this.changed,
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('paligemma')) this.refresh();
      }),
      // Trust brings the workspace's restricted settings into effect.
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.ignored = [];
        this.refresh();
      }),
    ];
  }

  readonly get = (): Settings => this.current;

  /** The restricted settings that this untrusted workspace sets and VS Code ignores (restrictedMode.ts). */
  get ignoredForTrust(): string[] {
    return this.ignored;
  }

  setIgnoredForTrust(keys: string[]): void {
    this.ignored = keys;
    this.refresh();
  }

  private refresh(): void {
    const previous = this.current;
    this.current = readSettings();
    const changed = new Set((Object.keys(previous) as (keyof Settings)[]).filter((key) => previous[key] !== this.current[key]));
    this.changed.fire({ previous, current: this.current, changed, needsEngineRestart: ENGINE_KEYS.some((key) => changed.has(key)) });
  }

  dispose(): void {
    vscode.Disposable.from(...this.subscriptions).dispose();
  }
}
