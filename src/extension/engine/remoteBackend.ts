/**
 * The remote backend: a `pali serve` or vLLM server on a shared GPU machine, reached over the
 * OpenAI-compatible API (common/remote/chatClient.ts). Nothing is loaded locally. The image's bytes go as a
 * data: URL, the task as PaliGemma's raw prompt; detection boxes are computed here from the <loc> tokens
 * and the image's size, read from its header; segmentation masks by the local engine process, which
 * decodes the <seg> tokens with the small VQ-VAE and loads no model. The API key lives in VS Code's secret
 * storage.
 */
import * as fs from 'node:fs/promises';
import * as vscode from 'vscode';
import { boxesForTask } from '../../common/locTokens.js';
import { parseSegments, segmentBox } from '../../common/segmentTokens.js';
import { apiRoot, chatCompletion, listModels, RemoteError } from '../../common/remote/chatClient.js';
import { remoteTask, type RemoteTask } from '../../common/remote/remoteTask.js';
import type { GenerateResultMessage, SegmentAnswerResult } from '../../protocol.js';
import { signalOf } from '../cancellation.js';
import type { Settings } from '../config.js';
import { EngineError, type EngineGenerateParams, type EngineState, type VisionEngine } from './visionEngine.js';
import { describeError } from '../../common/errors.js';

export const REMOTE_API_KEY_SECRET = 'paligemma.remote.apiKey';

/** Decodes an answer's <seg> tokens into masks over an image of this size (EngineClient.segmentAnswer). */
export type MaskDecoding = (text: string, imageWidth: number, imageHeight: number, token: vscode.CancellationToken) => Promise<SegmentAnswerResult>;

export class RemoteBackend implements VisionEngine, vscode.Disposable {
  private readonly stateChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeState = this.stateChanged.event;
  state: EngineState = 'off';
  /** The model the server serves, asked once per URL. */
  modelName: string | undefined;
  /** The last answer's time to first token and total time, for the status bar. */
  lastTimings: { firstTokenMs: number; totalMs: number } | undefined;
  lastError: string | undefined;
  private modelLookup: Promise<string> | undefined;
  private busyCount = 0;

  constructor(
    private readonly settings: () => Settings,
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
    private readonly decodeMasks: MaskDecoding,
  ) {}

  get url(): string {
    return this.settings().remoteUrl;
  }

  private setState(state: EngineState): void {
    if (this.state !== state) {
      this.state = state;
      this.stateChanged.fire();
    }
  }

  private async endpoint() {
    const url = this.settings().remoteUrl.trim();
    if (!url) throw new EngineError(vscode.l10n.t('No remote server: set paligemma.remote.url to its address (for example http://gpu-box:8000), or set paligemma.backend to local.'), 'no-server');
    try {
      apiRoot(url);
    } catch (error) {
      throw new EngineError(`paligemma.remote.url: ${(error as Error).message}`, 'no-server');
    }
    return { url, apiKey: (await this.secrets.get(REMOTE_API_KEY_SECRET)) || undefined };
  }

  private model(signal?: AbortSignal): Promise<string> {
    this.modelLookup ??= this.endpoint().then(async (endpoint) => {
      this.setState('starting');
      const [first] = await listModels(endpoint, signal);
      this.modelName = first;
      this.log.info(`remote: ${apiRoot(endpoint.url)} serves ${first}`);
      return first!;
    });
    // A failed lookup is asked again next time (the server may come up).
    this.modelLookup.then(() => this.setState(this.busyCount ? 'busy' : 'ready'), () => {
      this.modelLookup = undefined;
    });
    return this.modelLookup;
  }

  /** Settings or the key changed: ask the (maybe other) server for its model again. */
  reset(): void {
    this.modelLookup = undefined;
    this.modelName = undefined;
    this.lastTimings = undefined;
    this.lastError = undefined;
    this.setState('off');
  }

  warmUp(reason: string): void {
    this.model().catch((error) => {
      this.lastError = describeError(error);
      this.log.warn(`remote: not reached ahead of ${reason}: ${this.lastError}`);
      this.setState('stopped');
    });
  }

  async generate(params: EngineGenerateParams, token: vscode.CancellationToken, onPiece?: (piece: string) => void): Promise<GenerateResultMessage> {
    const caller = signalOf(token);
    this.busyCount++;
    try {
      const bytes = 'path' in params.image ? await readFileFor(params.image.path) : Buffer.from(params.image.base64, 'base64');
      const name = 'path' in params.image ? params.image.path : params.image.name;
      const { image, prompt } = userTask(bytes, name, params.task);
      const { maxImagePixels } = this.settings();
      if (maxImagePixels > 0 && image.width * image.height > maxImagePixels) {
        throw new EngineError(vscode.l10n.t('The image is {0}x{1} pixels, more than paligemma.maxImagePixels ({2}).', image.width, image.height, maxImagePixels), 'user');
      }
      const endpoint = await this.endpoint();
      const model = await this.model(caller.signal);
      this.setState('busy');
      const sampling = params.sampling && params.sampling.temperature > 0 ? params.sampling : undefined;
      const result = await chatCompletion(endpoint, {
        model,
        imageDataUrl: image.dataUrl,
        prompt,
        maxTokens: params.maxNewTokens ?? this.settings().maxNewTokens,
        sampling,
        signal: caller.signal,
        onPiece,
      });
      this.lastTimings = { firstTokenMs: result.firstTokenMs, totalMs: result.totalMs };
      this.lastError = undefined;
      const decodeMs = result.totalMs - result.firstTokenMs;
      const segmenting = 'task' in params.task && params.task.task === 'segment';
      const segmentation = segmenting ? await this.masksFor(result.text, image.width, image.height, token) : undefined;
      return {
        text: result.text,
        boxes: segmentation ? segmentation.boxes : boxesForTask(params.task, result.text, image.width, image.height),
        segments: segmentation?.segments,
        notes: segmentation?.notes,
        imageWidth: image.width,
        imageHeight: image.height,
        // The server does not send token ids; only their count, when it reports usage.
        generatedIds: [],
        promptTokens: result.promptTokens ?? 0,
        finishReason: result.finishReason,
        device: `remote (${new URL(apiRoot(endpoint.url)).host})`,
        cachedImage: false,
        timings: {
          preprocessMs: 0,
          visionMs: 0,
          prefillMs: result.firstTokenMs,
          decodeMs,
          tokensPerS: result.completionTokens && decodeMs > 0 ? (result.completionTokens - 1) / (decodeMs / 1000) : 0,
        },
      };
    } catch (error) {
      throw this.translate(error, token);
    } finally {
      caller.dispose();
      this.busyCount--;
      if (this.modelName) this.setState(this.busyCount ? 'busy' : 'ready');
      else if (this.state === 'starting') this.setState('off');
      // The timings or the last error changed even when the state did not: the status bar shows them.
      this.stateChanged.fire();
    }
  }

  /**
   * Masks from the local engine process. Should it fail (it cannot start, or no VQ-VAE can be had offline),
   * each object still shows its box, and a note says why there is no mask.
   */
  private async masksFor(text: string, width: number, height: number, token: vscode.CancellationToken) {
    try {
      const { segments, notes } = await this.decodeMasks(text, width, height, token);
      // As the local engine answers: masks (each with its box), no separate boxes.
      return { segments, notes, boxes: undefined };
    } catch (error) {
      if (token.isCancellationRequested) throw error;
      const why = describeError(error);
      this.log.warn(`remote: no masks for the segmentation: ${why}`);
      const parsed = parseSegments(text);
      return {
        segments: undefined,
        notes: [...parsed.notes, vscode.l10n.t('No masks ({0}): each object shows its box.', why.replace(/\.$/, ''))],
        boxes: parsed.segments.map((s) => ({ label: s.label, ...segmentBox(s.locs, width, height) })),
      };
    }
  }

  private translate(error: unknown, token: vscode.CancellationToken): EngineError {
    if (token.isCancellationRequested || (error instanceof Error && error.name === 'AbortError')) return new EngineError(vscode.l10n.t('Cancelled.'), 'cancelled');
    if (error instanceof EngineError) return error;
    const status = error instanceof RemoteError ? error.status : undefined;
    let message = describeError(error);
    if (status === 401 || status === 403) message = vscode.l10n.t('{0}: set it with "PaliGemma: Set Remote API Key".', message);
    this.lastError = message;
    this.log.error(`remote: ${message}`);
    // A server that answered 4xx refused this request; anything else means it could not serve it.
    if (status !== undefined && status >= 400 && status < 500) return new EngineError(message, 'user');
    if (status === undefined) this.setState('stopped');
    return new EngineError(vscode.l10n.t('The remote PaliGemma server failed: {0}', message), 'internal');
  }

  dispose(): void {
    this.stateChanged.dispose();
  }
}

/** The request to send; what cannot be sent (not an image, no object names) is the user's to fix. */
function userTask(bytes: Buffer, name: string, task: EngineGenerateParams['task']): RemoteTask {
  try {
    return remoteTask(bytes, name, task);
  } catch (error) {
    throw new EngineError((error as Error).message, 'user');
  }
}

async function readFileFor(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    throw new EngineError(vscode.l10n.t('Cannot read {0}: {1}', file, (error as NodeJS.ErrnoException).code ?? String(error)), 'user');
  }
}
