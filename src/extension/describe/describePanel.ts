/**
 * The Describe Image panel: shows the image and streams a caption, with Ask, Detect and OCR, Copy and
 * Insert at cursor, and a paste/drop zone for screenshots (VS Code's clipboard API is text-only; the
 * webview's paste event sees images). Strict CSP with a nonce; only media/ is a local resource root; the
 * image travels as a data URL. State lives in the webview (getState/setState), and a serializer revives
 * the panel after a reload.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { IMAGE_MIME_TYPES } from '../../common/imageFiles.js';
import { requestForVerb } from '../../common/prompts.js';
import type { ImageSource } from '../../protocol.js';
import type { Settings } from '../config.js';
import { EngineError, type VisionEngine } from '../engine/visionEngine.js';
import { toImageSource } from '../imageSources.js';
import { insertText, type InsertionTarget } from '../textInsertion.js';
import { parseFromWebview, type FromWebview, type PanelAction, type PanelState, type ToWebview } from './panelMessages.js';
import { describeError } from '../../common/errors.js';

export const DESCRIBE_VIEW_TYPE = 'paligemma.describe';

/** What the panel needs from the extension. */
export interface DescribeDeps {
  context: vscode.ExtensionContext;
  engine: VisionEngine;
  settings: () => Settings;
  /** Where Insert at Cursor puts text. */
  insertionTarget: () => InsertionTarget | undefined;
}

export class DescribePanel {
  private static current: DescribePanel | undefined;
  private image: { source: ImageSource; state: PanelState; name: string; dataUrl: string } | undefined;
  private running: vscode.CancellationTokenSource | undefined;
  private requestId = 0;
  private readonly disposables: vscode.Disposable[] = [];

  static async show(deps: DescribeDeps, uri?: vscode.Uri): Promise<DescribePanel> {
    deps.engine.warmUp('the Describe panel opened');
    if (!DescribePanel.current) {
      const panel = vscode.window.createWebviewPanel(DESCRIBE_VIEW_TYPE, vscode.l10n.t('Describe Image'), vscode.ViewColumn.Beside, webviewOptions(deps.context));
      DescribePanel.current = new DescribePanel(panel, deps);
    } else {
      DescribePanel.current.panel.reveal(vscode.ViewColumn.Beside);
    }
    if (uri) await DescribePanel.current.setImageFromUri(uri, true);
    return DescribePanel.current;
  }

  static revive(panel: vscode.WebviewPanel, deps: DescribeDeps, state: PanelState | undefined): void {
    deps.engine.warmUp('the Describe panel was restored');
    panel.webview.options = webviewOptions(deps.context);
    const revived = new DescribePanel(panel, deps);
    DescribePanel.current = revived;
    if (state?.imageUri) void revived.setImageFromUri(vscode.Uri.parse(state.imageUri), false);
    else if (state?.pasted) revived.setPastedImage(state.pasted, false);
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly deps: DescribeDeps,
  ) {
    panel.iconPath = vscode.Uri.joinPath(deps.context.extensionUri, 'media', 'describe-icon.svg');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      // Messages are data from a page that shows untrusted content: malformed ones are dropped.
      panel.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromWebview(raw);
        if (message) this.onMessage(message);
      }),
    );
  }

  /**
   * Messages sent before the webview's script has loaded would be lost (a request's 'start', so its result
   * would have no entry to land in): they wait for its 'ready'.
   */
  private post(message: ToWebview): void {
    if (this.waitingForWebview) this.waitingForWebview.push(message);
    else void this.panel.webview.postMessage(message);
  }

  private waitingForWebview: ToWebview[] | undefined = [];

  private async setImageFromUri(uri: vscode.Uri, caption: boolean): Promise<void> {
    const name = path.basename(uri.path);
    let bytes: Uint8Array;
    try {
      bytes = await vscode.workspace.fs.readFile(uri);
    } catch (error) {
      void vscode.window.showErrorMessage(vscode.l10n.t('Cannot read {0}: {1}', name, describeError(error)));
      return;
    }
    const mime = (IMAGE_MIME_TYPES as Record<string, string>)[path.extname(name).slice(1).toLowerCase()] ?? 'application/octet-stream';
    const dataUrl = `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;
    this.image = { source: await toImageSource(uri), state: { imageUri: uri.toString() }, name, dataUrl };
    this.panel.title = vscode.l10n.t('Describe: {0}', name);
    this.post({ type: 'image', dataUrl, name });
    if (caption) void this.run('caption');
  }

  private setPastedImage(pasted: NonNullable<PanelState['pasted']>, caption: boolean): void {
    this.image = {
      source: { base64: pasted.base64, name: pasted.name },
      state: { pasted },
      name: pasted.name,
      dataUrl: `data:${pasted.mime};base64,${pasted.base64}`,
    };
    this.panel.title = vscode.l10n.t('Describe: {0}', pasted.name);
    this.post({ type: 'image', dataUrl: this.image.dataUrl, name: pasted.name });
    if (caption) void this.run('caption');
  }

  private onMessage(message: FromWebview): void {
    switch (message.type) {
      case 'ready': {
        // The first 'ready' flushes what waited; a later one (the webview reloaded) needs the image again.
        const waiting = this.waitingForWebview;
        this.waitingForWebview = undefined;
        if (waiting?.length) for (const message of waiting) this.post(message);
        else if (this.image) this.post({ type: 'image', dataUrl: this.image.dataUrl, name: this.image.name });
        break;
      }
      case 'run':
        void this.run(message.action, message.text);
        break;
      case 'cancel':
        this.running?.cancel();
        break;
      case 'copy':
        void vscode.env.clipboard.writeText(message.text).then(() => vscode.window.setStatusBarMessage(vscode.l10n.t('Copied'), 2000));
        break;
      case 'insert':
        void this.insert(message.text);
        break;
      case 'pastedImage':
        this.setPastedImage({ base64: message.base64, mime: message.mime, name: message.name }, true);
        break;
    }
  }

  private async insert(text: string): Promise<void> {
    const target = this.deps.insertionTarget();
    if (!target) {
      void vscode.window.showInformationMessage(vscode.l10n.t('Open a text editor to insert into.'));
      return;
    }
    await insertText(target.document, target.position, text);
  }

  private async run(action: PanelAction, text?: string): Promise<void> {
    if (!this.image) return;
    const id = ++this.requestId;
    this.running?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.running = source;
    const task = requestForVerb(action, this.deps.settings().language, text);
    // The engine checks the task (its error is the only check): the webview shows its answer, or its
    // error, under this request's entry.
    this.post({ type: 'start', id, action, question: text });
    const started = Date.now();
    try {
      const result = await this.deps.engine.generate(
        { image: this.image.source, task, maxNewTokens: this.deps.settings().maxNewTokens },
        source.token,
        (piece) => this.post({ type: 'piece', id, piece }),
      );
      this.post({ type: 'result', id, text: result.text, boxes: result.boxes, segments: result.segments, notes: result.notes, imageWidth: result.imageWidth, imageHeight: result.imageHeight, device: result.device, ms: Date.now() - started });
    } catch (error) {
      const message = describeError(error);
      this.post({ type: 'error', id, message });
      if (error instanceof EngineError && error.kind === 'no-model') {
        const select = vscode.l10n.t('Select Model');
        if ((await vscode.window.showWarningMessage(message, select)) === select) void vscode.commands.executeCommand('paligemma.selectModel');
      } else if (error instanceof EngineError && error.kind === 'no-server') {
        const open = vscode.l10n.t('Open Settings');
        if ((await vscode.window.showWarningMessage(message, open)) === open) void vscode.commands.executeCommand('workbench.action.openSettings', 'paligemma.remote.url');
      }
    } finally {
      if (this.running === source) this.running = undefined;
      source.dispose();
    }
  }

  private html(): string {
    const webview = this.panel.webview;
    const media = (...parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(this.deps.context.extensionUri, 'media', ...parts));
    const nonce = randomBytes(16).toString('base64');
    const strings = {
      dropHint: vscode.l10n.t('Paste (Ctrl+V) or drop an image here'),
      caption: vscode.l10n.t('Caption'),
      describe: vscode.l10n.t('Describe'),
      ocr: vscode.l10n.t('Read text (OCR)'),
      ask: vscode.l10n.t('Ask'),
      askPlaceholder: vscode.l10n.t('Ask a question about the image'),
      detect: vscode.l10n.t('Detect'),
      detectPlaceholder: vscode.l10n.t('Objects to find, e.g. cat ; dog'),
      segment: vscode.l10n.t('Segment'),
      segmentPlaceholder: vscode.l10n.t('Objects to outline, e.g. cat ; dog'),
      objects: vscode.l10n.t('Objects found'),
      pixels: vscode.l10n.t('{0} pixels'),
      noObjects: vscode.l10n.t('No object found.'),
      copy: vscode.l10n.t('Copy'),
      insert: vscode.l10n.t('Insert at Cursor'),
      cancel: vscode.l10n.t('Cancel'),
      working: vscode.l10n.t('Working…'),
      noBoxes: vscode.l10n.t('Nothing found.'),
      image: vscode.l10n.t('Image'),
      results: vscode.l10n.t('Results'),
    };
    return `<!DOCTYPE html>
<html lang="${vscode.env.language}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource} data:; style-src ${webview.cspSource} 'nonce-${nonce}'; font-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${media('vendor', 'codicon.css')}" id="vscode-codicon-stylesheet">
<link rel="stylesheet" href="${media('describe.css')}">
<title>${vscode.l10n.t('Describe Image')}</title>
</head>
<body data-strings="${escapeAttribute(JSON.stringify(strings))}">
<main>
  <section class="image-area" aria-label="${strings.image}">
    <div id="drop-zone" class="drop-zone" tabindex="0" role="button" aria-label="${strings.dropHint}">
      <div class="stage" id="stage" hidden><img id="image" alt=""><canvas id="masks" class="masks" aria-hidden="true"></canvas><svg id="boxes" class="boxes" aria-hidden="true"></svg></div>
      <p id="drop-hint" class="hint"><span class="codicon codicon-file-media"></span> ${strings.dropHint}</p>
    </div>
  </section>
  <section class="controls">
    <div class="row">
      <vscode-button id="caption" icon="comment">${strings.caption}</vscode-button>
      <vscode-button id="describe" secondary icon="note">${strings.describe}</vscode-button>
      <vscode-button id="ocr" secondary icon="symbol-text">${strings.ocr}</vscode-button>
    </div>
    <div class="row" role="group" aria-label="${strings.ask}">
      <vscode-textfield id="question" placeholder="${strings.askPlaceholder}" aria-label="${strings.askPlaceholder}"></vscode-textfield>
      <vscode-button id="ask" icon="question">${strings.ask}</vscode-button>
    </div>
    <div class="row" role="group" aria-label="${strings.detect}">
      <vscode-textfield id="objects" placeholder="${strings.detectPlaceholder}" aria-label="${strings.detectPlaceholder}"></vscode-textfield>
      <vscode-button id="detect" icon="search">${strings.detect}</vscode-button>
    </div>
    <div class="row" role="group" aria-label="${strings.segment}">
      <vscode-textfield id="segmentation" placeholder="${strings.segmentPlaceholder}" aria-label="${strings.segmentPlaceholder}"></vscode-textfield>
      <vscode-button id="segment" icon="symbol-color">${strings.segment}</vscode-button>
    </div>
  </section>
  <section aria-label="${strings.results}" aria-live="polite" id="results" class="results"></section>
</main>
<script nonce="${nonce}" type="module" src="${media('vendor', 'vscode-elements.js')}"></script>
<script nonce="${nonce}" src="${media('build', 'describe.js')}"></script>
</body>
</html>`;
  }

  private dispose(): void {
    this.running?.cancel();
    if (DescribePanel.current === this) DescribePanel.current = undefined;
    for (const disposable of this.disposables) disposable.dispose();
  }
}

function webviewOptions(context: vscode.ExtensionContext): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'media')] };
}

/** Text for an HTML attribute value in double quotes. */
function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
