/** The engine's state, device and model in the status bar; a click opens the PaliGemma menu. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DtypeChoice, ModelDtype } from '../protocol.js';
import type { SettingsStore } from './config.js';
import type { BackendSwitch } from './engine/backendSwitch.js';
import type { RemoteBackend } from './engine/remoteBackend.js';
import type { EngineState } from './engine/visionEngine.js';

const ICONS: Record<EngineState, string> = {
  off: '$(circle-outline)',
  starting: '$(loading~spin)',
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  busy: '$(loading~spin)',
  stopped: '$(error)',
  idle: '$(circle-outline)',
};

export function createStatusBar(backends: BackendSwitch, settings: SettingsStore): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('paligemma.status', vscode.StatusBarAlignment.Right, 100);
  item.name = vscode.l10n.t('PaliGemma');
  item.command = 'paligemma.statusMenu';
  const update = (): void => {
    const current = settings.get();
    const engine = backends.local;
    const model = engine.model ? path.basename(engine.model.modelDir) : current.modelPath ? path.basename(current.modelPath) : vscode.l10n.t('no model');
    const stateText: Record<EngineState, string> = {
      off: vscode.l10n.t('off'),
      starting: vscode.l10n.t('starting'),
      loading: vscode.l10n.t('loading'),
      ready: vscode.l10n.t('ready'),
      busy: vscode.l10n.t('busy'),
      stopped: vscode.l10n.t('stopped'),
      idle: vscode.l10n.t('unloaded (idle)'),
    };
    if (backends.active !== engine) {
      showRemote(item, backends.remote, stateText);
      return;
    }
    const device = engine.model?.device;
    // Downloaded models live in folders named owner--name: the name alone says which model it is.
    const shortModel = model.replace(/^[^-]+--/, '');
    item.text = `${ICONS[engine.state]} PaliGemma: ${stateText[engine.state]}${device ? ` · ${device}` : ''} · ${shortModel}`;
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**PaliGemma** — ${stateText[engine.state]}\n\n`);
    tooltip.appendMarkdown(`${vscode.l10n.t('Model')}: ${model}\n\n`);
    if (engine.model) tooltip.appendMarkdown(`${vscode.l10n.t('Weights')}: ${weightsLabel(engine.model.dtype, engine.model.dtypeChoice, engine.model.dtypeReason)}\n\n`);
    if (device) tooltip.appendMarkdown(`${vscode.l10n.t('Device')}: ${device}\n\n`);
    if (engine.model?.deviceNote) tooltip.appendMarkdown(`${engine.model.deviceNote}\n\n`);
    if (engine.runtimeLabel) tooltip.appendMarkdown(`${vscode.l10n.t('Runtime')}: ${engine.runtimeLabel}\n\n`);
    if (engine.sharedEnginePid !== undefined) {
      tooltip.appendMarkdown(`${vscode.l10n.t('Engine: shared by your windows and tools (pid {0}); `pali ps` shows it, `pali stop` stops it', engine.sharedEnginePid)}\n\n`);
    }
    for (const note of engine.notes) tooltip.appendMarkdown(`- ${note}\n`);
    if (settings.ignoredForTrust.length) {
      tooltip.appendMarkdown(`\n$(shield) ${vscode.l10n.t('Restricted Mode: ignored the workspace\'s {0}', settings.ignoredForTrust.join(', '))}\n`);
    }
    item.tooltip = tooltip;
    item.backgroundColor = engine.state === 'stopped' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    item.show();
  };
  update();
  return vscode.Disposable.from(item, backends.onDidChangeState(update), settings.onDidChange(update));
}

/** The remote backend: which server, its model, and how fast it answered last (time to first token). */
function showRemote(item: vscode.StatusBarItem, remote: RemoteBackend, stateText: Record<EngineState, string>): void {
  let host = remote.url;
  try {
    host = new URL(remote.url).host;
  } catch {
    // shown as written: the request will say what is wrong with it
  }
  const timings = remote.lastTimings;
  const speed = timings ? ` · ${(timings.firstTokenMs / 1000).toFixed(1)} s` : '';
  item.text = `$(remote) PaliGemma: ${stateText[remote.state]} · ${host || vscode.l10n.t('no server')}${speed}`;
  const tooltip = new vscode.MarkdownString(undefined, true);
  tooltip.appendMarkdown(`**PaliGemma** — ${vscode.l10n.t('remote backend')}, ${stateText[remote.state]}\n\n`);
  tooltip.appendMarkdown(`${vscode.l10n.t('Server')}: ${remote.url || vscode.l10n.t('not set (paligemma.remote.url)')}\n\n`);
  if (remote.modelName) tooltip.appendMarkdown(`${vscode.l10n.t('Model')}: ${remote.modelName}\n\n`);
  if (timings) {
    tooltip.appendMarkdown(`${vscode.l10n.t('Last answer: first text after {0} s, done after {1} s', (timings.firstTokenMs / 1000).toFixed(2), (timings.totalMs / 1000).toFixed(2))}\n\n`);
  }
  if (remote.lastError) tooltip.appendMarkdown(`$(error) ${remote.lastError}\n\n`);
  item.tooltip = tooltip;
  item.backgroundColor = remote.state === 'stopped' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  item.show();
}

/** Which weights run, and why when `auto` chose them. */
function weightsLabel(dtype: ModelDtype, choice: DtypeChoice, reason?: string): string {
  const names: Record<ModelDtype, string> = {
    int4: vscode.l10n.t('int4 (4-bit, a quarter of the memory)'),
    int8: vscode.l10n.t('int8 (8-bit weights on the integer GEMM: the fastest first answer on a CPU)'),
    fp16: vscode.l10n.t('fp16 (half precision)'),
    fp32: vscode.l10n.t('fp32 (exact)'),
  };
  if (choice !== 'auto') return names[dtype];
  return reason ? vscode.l10n.t('{0}, chosen automatically ({1})', names[dtype], reason) : vscode.l10n.t('{0}, chosen automatically for this device', names[dtype]);
}

export async function showStatusMenu(engine: { pid: number | undefined }): Promise<void> {
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: `$(file-media) ${vscode.l10n.t('Describe Image')}`, command: 'paligemma.describeImage' },
    { label: `$(library) ${vscode.l10n.t('Select Model')}`, command: 'paligemma.selectModel' },
    { label: `$(debug-restart) ${vscode.l10n.t('Restart Engine')}`, command: 'paligemma.restartEngine', description: engine.pid ? `pid ${engine.pid}` : undefined },
    { label: `$(output) ${vscode.l10n.t('Show Engine Log')}`, command: 'paligemma.showLog' },
  ];
  const choice = await vscode.window.showQuickPick(items, { title: vscode.l10n.t('PaliGemma') });
  if (choice) await vscode.commands.executeCommand(choice.command);
}
