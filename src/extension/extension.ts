/**
 * The composition root (as rust-analyzer's main.ts): creates the engine client, the status bar and each
 * feature, and wires their commands. Nothing starts the engine here: the first request does, or a
 * feature about to need it (an image in an open document, the Describe panel) loads it ahead of time.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { defaultCacheRoot } from '../common/cacheRoot.js';
import { retireOldCache } from './oldCache.js';
import { AltCodeActionProvider } from './altText/altCodeActions.js';
import { registerAltCommands } from './altText/altCommands.js';
import { registerAltDiagnostics } from './altText/altDiagnostics.js';
import { AltHoverProvider } from './altText/altHover.js';
import { registerAltPrefetch } from './altText/altPrefetch.js';
import { AltTextService } from './altText/altTextService.js';
import { OutsideConsent } from './altText/outsideConsent.js';
import { ALT_TEXT_SELECTOR } from './altText/documentReferences.js';
import { SettingsStore } from './config.js';
import { DESCRIBE_VIEW_TYPE, DescribePanel } from './describe/describePanel.js';
import type { PanelState } from './describe/panelMessages.js';
import { BackendSwitch } from './engine/backendSwitch.js';
import { EngineClient } from './engine/engineClient.js';
import { RemoteBackend } from './engine/remoteBackend.js';
import { setRemoteApiKey } from './engine/remoteApiKey.js';
import { activeImageUri, pickImage } from './imageSources.js';
import { selectModel, setHuggingFaceToken } from './models/selectModel.js';
import { ocrImageIntoEditor } from './ocr/ocrCommand.js';
import { registerOcrPaste } from './ocr/ocrPasteProvider.js';
import { ignoredRestrictedSettings } from './restrictedMode.js';
import { createStatusBar, showStatusMenu } from './statusBar.js';
import { InsertionTargets } from './textInsertion.js';
import { registerImageTools } from './lmTools/imageTools.js';
import { registerMcpDefinition } from './lmTools/mcpDefinition.js';
import { registerWalkthroughCommands } from './walkthrough.js';

/** The extension's API for other extensions and tests: the local engine client and the backend in use. */
export interface ExtensionApi {
  engine: EngineClient;
  backends: BackendSwitch;
}

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  const settings = new SettingsStore();
  const getSettings = settings.get;
  const log = vscode.window.createOutputChannel('PaliGemma', { log: true });
  // The cache `pali` uses too: conversions made once for both, and one shared engine for both to find.
  const cacheDir = defaultCacheRoot();
  retireOldCache(path.join(context.globalStorageUri.fsPath, 'cache'), cacheDir, (line) => log.info(line));
  const engine = new EngineClient(path.join(context.extensionPath, 'dist', 'pali.js'), log, getSettings, cacheDir);
  // A server's segmentation answer gets its masks from the local engine process (no model loaded for it).
  const remote = new RemoteBackend(getSettings, context.secrets, log, (text, width, height, token) => engine.segmentAnswer(text, width, height, token));
  const backends = new BackendSwitch(engine, remote, getSettings);
  const outsideConsent = new OutsideConsent(context.workspaceState);
  const altText = new AltTextService(backends, getSettings, outsideConsent);
  const insertionTargets = new InsertionTargets();
  const insertionTarget = () => insertionTargets.current();
  const describeDeps = { context, engine: backends, settings: getSettings, insertionTarget };

  context.subscriptions.push(
    settings,
    log,
    engine,
    remote,
    backends,
    altText,
    insertionTargets,
    createStatusBar(backends, settings),
    settings.onDidChange((change) => {
      const remoteChanged = change.changed.has('backend') || change.changed.has('remoteUrl');
      if (change.changed.has('modelPath') || change.changed.has('language') || remoteChanged) altText.clear();
      if (remoteChanged) {
        remote.reset();
        backends.changed();
      }
      // A model left loaded would hold gigabytes that the remote backend never uses: it loads again
      // when the backend is local and a feature needs it.
      if (change.changed.has('backend') && getSettings().backend === 'remote') void engine.stop();
      void engine.settingsChanged(change);
      // Show Log says when a change took effect, and to what (the end-to-end tests wait for this line
      // rather than sleep). The server's address may hold credentials: only its change is said.
      if (change.changed.size) {
        const said = [...change.changed].sort().map((key) => (key === 'remoteUrl' ? key : `${key}=${JSON.stringify(change.current[key])}`));
        log.info(`settings changed: ${said.join(', ')}`);
      }
    }),
    vscode.commands.registerCommand('paligemma.describeImage', async (uri?: vscode.Uri) => {
      const image = uri instanceof vscode.Uri ? uri : activeImageUri() ?? (await pickImage(vscode.l10n.t('Describe Image')));
      if (image) await DescribePanel.show(describeDeps, image);
    }),
    vscode.window.registerWebviewPanelSerializer(DESCRIBE_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state: PanelState | undefined) => DescribePanel.revive(panel, describeDeps, state),
    }),
    vscode.commands.registerCommand('paligemma.ocrImageIntoEditor', (uri?: vscode.Uri) => ocrImageIntoEditor(backends, getSettings, insertionTarget, uri)),
    registerOcrPaste(backends, getSettings),
    // An image in an open document means a hover or quick fix may follow: load the model ahead of it.
    registerAltDiagnostics(settings, (document) => backends.warmUp(`images in ${path.basename(document.uri.path)}`)),
    vscode.languages.registerHoverProvider(ALT_TEXT_SELECTOR, new AltHoverProvider(altText)),
    vscode.languages.registerCodeActionsProvider(ALT_TEXT_SELECTOR, new AltCodeActionProvider(altText), { providedCodeActionKinds: AltCodeActionProvider.kinds }),
    registerAltCommands(altText),
    outsideConsent,
    // From the hover of an image outside the workspace; not in the palette (it needs the image).
    vscode.commands.registerCommand('paligemma.allowImageOutsideWorkspace', (uri: string) => outsideConsent.ask(vscode.Uri.parse(uri))),
    registerAltPrefetch(altText, settings),
    vscode.commands.registerCommand('paligemma.selectModel', () => selectModel(context)),
    vscode.commands.registerCommand('paligemma.setHuggingFaceToken', () => setHuggingFaceToken(context.secrets)),
    vscode.commands.registerCommand('paligemma.setRemoteApiKey', async () => {
      if (await setRemoteApiKey(context.secrets)) remote.reset();
    }),
    vscode.commands.registerCommand('paligemma.restartEngine', () => engine.restart()),
    vscode.commands.registerCommand('paligemma.showLog', () => log.show()),
    vscode.commands.registerCommand('paligemma.statusMenu', () => showStatusMenu(engine)),
    registerWalkthroughCommands(context, (uri) => DescribePanel.show(describeDeps, uri)),
    // For agents: tools on this engine (no second model in memory), and `pali mcp` for MCP clients.
    registerImageTools(backends, getSettings),
    registerMcpDefinition(context, settings, cacheDir),
  );

  void ignoredRestrictedSettings().then((ignored) => {
    settings.setIgnoredForTrust(ignored);
    if (!ignored.length) return;
    const manage = vscode.l10n.t('Manage Workspace Trust');
    void vscode.window.showWarningMessage(
      vscode.l10n.t('Restricted Mode: PaliGemma ignores this workspace\'s {0}. Trust the workspace to use them.', ignored.join(', ')),
      manage,
    ).then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
  });
  return { engine, backends };
}

export function deactivate(): void {}
