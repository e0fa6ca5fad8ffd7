/**
 * "Select Model": presets (size, resolution, licence), models already downloaded, or a local folder. Gated
 * Google checkpoints explain the licence step and link to it; downloads use the token from SecretStorage,
 * else HF_TOKEN.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { MODEL_PRESETS, type ModelPreset } from './modelPresets.js';
import { downloadRepo, type DownloadProgress } from './modelDownloader.js';
import { describeError } from '../../common/errors.js';

export const TOKEN_SECRET = 'paligemma.huggingFaceToken';

export async function huggingFaceToken(secrets: vscode.SecretStorage): Promise<string | undefined> {
  return (await secrets.get(TOKEN_SECRET)) || process.env.HF_TOKEN || undefined;
}

export async function setHuggingFaceToken(secrets: vscode.SecretStorage): Promise<void> {
  const value = await vscode.window.showInputBox({
    title: vscode.l10n.t('Hugging Face token'),
    prompt: vscode.l10n.t('A read token from huggingface.co/settings/tokens. It is kept in VS Code\'s secret storage.'),
    password: true,
    ignoreFocusOut: true,
  });
  if (value === undefined) return;
  if (value.trim()) await secrets.store(TOKEN_SECRET, value.trim());
  else await secrets.delete(TOKEN_SECRET);
}

/** The hub to download from: huggingface.co, or a mirror or private hub named by HF_ENDPOINT (as in huggingface_hub). */
function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

function modelsRoot(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'models');
}

function presetFolder(context: vscode.ExtensionContext, preset: ModelPreset): string {
  return path.join(modelsRoot(context), preset.repo.replace('/', '--'));
}

async function useModel(folder: string): Promise<void> {
  await vscode.workspace.getConfiguration('paligemma').update('modelPath', folder, vscode.ConfigurationTarget.Global);
  vscode.window.setStatusBarMessage(vscode.l10n.t('PaliGemma model: {0}', path.basename(folder)), 5000);
}

export async function selectModel(context: vscode.ExtensionContext): Promise<void> {
  type Item = vscode.QuickPickItem & { preset?: ModelPreset; local?: boolean };
  const items: Item[] = MODEL_PRESETS.map((preset) => {
    const downloaded = fs.existsSync(path.join(presetFolder(context, preset), 'config.json'));
    return {
      label: `${downloaded ? '$(check)' : '$(cloud-download)'} ${preset.label}`,
      description: `${preset.resolution}px · ${preset.size} · ${preset.license}${preset.gated ? ` · ${vscode.l10n.t('licence to accept')}` : ''}`,
      detail: preset.repo,
      preset,
    };
  });
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: `$(folder-opened) ${vscode.l10n.t('Local folder…')}`, detail: vscode.l10n.t('A Hugging Face checkpoint or an onnx-community export on disk'), local: true });
  const choice = await vscode.window.showQuickPick(items, { title: vscode.l10n.t('Select a PaliGemma model'), matchOnDetail: true });
  if (!choice) return;
  if (choice.local) {
    const folder = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, title: vscode.l10n.t('Model folder') });
    if (!folder?.[0]) return;
    if (!fs.existsSync(path.join(folder[0].fsPath, 'config.json'))) {
      void vscode.window.showErrorMessage(vscode.l10n.t('{0} has no config.json: choose a PaliGemma checkpoint or export folder.', folder[0].fsPath));
      return;
    }
    await useModel(folder[0].fsPath);
    return;
  }
  const preset = choice.preset!;
  const folder = presetFolder(context, preset);
  if (fs.existsSync(path.join(folder, 'config.json'))) {
    await useModel(folder);
    return;
  }
  const accessToken = await huggingFaceToken(context.secrets);
  if (preset.gated && !accessToken) {
    const open = vscode.l10n.t('Open Licence Page');
    const setToken = vscode.l10n.t('Set Token');
    const answer = await vscode.window.showInformationMessage(
      vscode.l10n.t('{0} is gated: accept Google\'s licence on its Hugging Face page, then set a Hugging Face token.', preset.repo),
      open, setToken,
    );
    if (answer === open) void vscode.env.openExternal(vscode.Uri.parse(`${hubEndpoint()}/${preset.repo}`));
    if (answer === setToken) await setHuggingFaceToken(context.secrets);
    return;
  }
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Downloading {0}', preset.repo), cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      const subscription = token.onCancellationRequested(() => controller.abort());
      try {
        await downloadRepo({
          repo: preset.repo,
          revision: preset.revision,
          include: preset.include,
          destination: folder,
          accessToken,
          hubUrl: hubEndpoint(),
          signal: controller.signal,
          onProgress: (report) => progress.report({ message: progressMessage(report), increment: (report.increment / Math.max(1, report.total)) * 100 }),
        });
        await useModel(folder);
      } catch (error) {
        if (error instanceof Error && error.name === 'AbortError') {
          void vscode.window.showInformationMessage(vscode.l10n.t('Download paused: selecting the model again resumes it.'));
          return;
        }
        const message = describeError(error);
        const hint = /401|403/.test(message) ? ` ${vscode.l10n.t('Check that the licence is accepted and the token can read gated repositories.')}` : '';
        void vscode.window.showErrorMessage(vscode.l10n.t('Download of {0} failed: {1}', preset.repo, message) + hint);
      } finally {
        subscription.dispose();
      }
    },
  );
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function progressMessage(report: DownloadProgress): string {
  if (report.phase === 'present') return vscode.l10n.t('{0} already here', report.file);
  if (report.phase === 'verifying') return vscode.l10n.t('checking {0}', report.file);
  const left = report.secondsLeft !== undefined ? `, ${vscode.l10n.t('{0} s left', String(report.secondsLeft))}` : '';
  return `${report.file} — ${formatBytes(report.done)} / ${formatBytes(report.total)}${left}`;
}
