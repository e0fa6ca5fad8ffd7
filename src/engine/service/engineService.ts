/**
 * What the engine process offers its clients: load a model, then generate for an image and a task, with
 * streamed text, cancellation, one request at a time and cached image features. Transport-free: the
 * JSON-RPC server (jsonRpcServer.ts), the MCP server and the OpenAI-compatible server each hand a call its own
 * listeners, so none keeps a map from streams to callers; tests drive it through a real `pali serve`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { boxesForTask } from '../../common/locTokens.js';
import { taskPrompt } from '../../common/prompts.js';
import type { EngineStatus, GenerateParams, GenerateResultMessage, LoadModelParams, ModelInfo, SegmentAnswerParams, SegmentAnswerResult } from '../../protocol.js';
import { abortError, describeError, UserError } from '../../common/errors.js';
import { decodeImageBytes } from '../image/decode.js';
import { loadModel, type PaliGemmaModel } from '../model.js';
import { encodeImage, type EncodedImage } from '../paligemma/inputs.js';
import { BatchDecoder } from '../generate/batchDecoder.js';
import { segmentAnswer, Segmenter } from '../segmentation/segmenter.js';
import { findVaeFile } from '../segmentation/vaeFile.js';
import { generate, type GenerateResult } from '../generate/generate.js';
import { FeatureCache } from './featureCache.js';
import { IdleCollector } from './idleCollector.js';
import { RequestQueue, type Priority } from './requestQueue.js';

/** What one call hears while it runs: its answer's text as it streams, and progress (downloads, loading). */
export interface CallListeners {
  onText?: (piece: string) => void;
  onProgress?: (message: string) => void;
  /** The first decode step's logits (`pali generate --logits-out`, a debugging tool); not for batched decoding. */
  onFirstLogits?: (logits: Float32Array) => void;
}

/** A request to generate, as front doors make it: the wire protocol's stream id stays with the transport. */
export type GenerateCall = Omit<GenerateParams, 'streamId' | 'keepAliveMinutes'>;

const DEFAULT_MAX_NEW_TOKENS = 128;

export class EngineService {
  private model: PaliGemmaModel | null = null;
  private modelInfo: ModelInfo | null = null;
  private loading = false;
  private readonly queue = new RequestQueue();
  private readonly idle = new IdleCollector();
  private readonly features = new FeatureCache();
  /** The mask VQ-VAE, loaded on the first segmentation and kept for the next. */
  private segmenter: { file: string; segmenter: Segmenter } | undefined;
  /** With maxBatch above 1 and a masked decoder: requests decode together (generate/batchDecoder.ts). */
  private batcher: { model: PaliGemmaModel; decoder: BatchDecoder } | undefined;

  /**
   * `log`: a line for each model loaded and unloaded (a shared engine's log says what it held when).
   * `onUnloadedOverLimit`: the model was unloaded over a client's memory limit (a shared engine tells every client).
   */
  constructor(private readonly options: {
    cacheRoot?: string; maxImagePixels?: number; maxBatch?: number; log?: (line: string) => void; onUnloadedOverLimit?: (why: string) => void;
  } = {}) {}

  /** When the last request ended (or the service was made): a shared engine unloads after keepAlive of this. */
  lastActiveAt = Date.now();

  /** Set by stopIntake: requests made after it are refused. */
  private stopping = false;

  /** Queues one request; the heap is collected once the engine has been idle a while after it. */
  private serve<T>(work: () => Promise<T>, signal?: AbortSignal, priority: Priority = 'user'): Promise<T> {
    return this.queue.run(async () => {
      this.idle.requestStarted();
      try {
        return await work();
      } finally {
        this.idle.requestEnded();
        this.lastActiveAt = Date.now();
      }
    }, signal, priority);
  }

  get loaded(): boolean {
    return this.model !== null;
  }

  /** Nothing running or waiting. */
  get idleNow(): boolean {
    return !this.queue.busy && this.queue.queued === 0;
  }

  /** Resolves once every request queued before it has been answered (it queues behind them all). */
  drain(): Promise<void> {
    return this.serve(async () => {}, undefined, 'background');
  }

  /** Refuses requests from now on, and resolves once those already queued have been answered. */
  async stopIntake(): Promise<void> {
    const drained = this.drain();
    this.stopping = true;
    await drained;
  }

  /**
   * Unloads the model in the queue, after every request waiting, so that none finds its model released
   * under it (an unload outside the queue could start while a request that just arrived loads or runs).
   */
  unloadWhenIdle(): Promise<void> {
    return this.serve(() => this.unload(), undefined, 'background');
  }

  status(): EngineStatus {
    return {
      pid: process.pid,
      state: this.loading ? 'loading' : this.queue.busy ? 'busy' : 'idle',
      model: this.modelInfo,
      queued: this.queue.queued,
      memory: { residentMB: Math.round(process.memoryUsage.rss() / 2 ** 20), heapMB: Math.round(process.memoryUsage().heapUsed / 2 ** 20) },
    };
  }

  /** A client's request after stopIntake (the engine's own work, such as batched decode steps, goes on). */
  private refusedWhileStopping(): Promise<never> | null {
    return this.stopping ? Promise.reject(new UserError('the engine is stopping: ask again in a moment, and a new one starts')) : null;
  }

  loadModel(params: LoadModelParams, signal?: AbortSignal, listeners: CallListeners = {}): Promise<ModelInfo> {
    return this.refusedWhileStopping() ?? this.serve(() => this.ensureModel(params, listeners), signal);
  }

  /** The model `params` names, loaded in place of the current one unless that is it already. In the queue. */
  private async ensureModel(params: LoadModelParams, listeners: CallListeners): Promise<ModelInfo> {
    const current = this.modelInfo;
    if (current && current.modelDir === params.modelDir && current.dtypeChoice === params.dtype &&
      (params.device === 'auto' || current.device === params.device)) return current;
    this.loading = true;
    try {
      await this.unload();
      const started = performance.now();
      const model = await loadModel(params.modelDir, {
        dtype: params.dtype,
        device: params.device,
        cacheRoot: this.options.cacheRoot,
        onProgress: listeners.onProgress,
      });
      this.model = model;
      const maxBatch = this.options.maxBatch ?? 1;
      if (maxBatch > 1 && model.maskedDecoder) this.batcher = { model, decoder: new BatchDecoder(model, maxBatch, (work) => this.serve(work)) };
      const info: ModelInfo = {
        modelDir: params.modelDir,
        onnxDir: model.dir,
        dtype: model.dtype,
        dtypeChoice: params.dtype,
        ...(model.dtypeReason ? { dtypeReason: model.dtypeReason } : {}),
        device: model.device,
        ...(model.deviceNote ? { deviceNote: model.deviceNote } : {}),
        fallbacks: model.deviceFallbacks,
        generation: model.config.generation,
        imageSize: model.config.vision.image_size,
      };
      this.modelInfo = info;
      this.options.log?.(`pali: loaded ${params.modelDir} (${model.dtype} on ${model.device}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      await this.enforceMemoryLimit(params.memoryLimitMB, 'loading the model');
      return info;
    } finally {
      this.loading = false;
    }
  }

  /**
   * Answers a cancelled request at once; its work stops at the next stage boundary or decode step (an ONNX
   * Runtime run cannot be interrupted), and the queue starts the next request only then.
   */
  generate(params: GenerateCall, signal?: AbortSignal, listeners: CallListeners = {}, requiredModel?: LoadModelParams): Promise<GenerateResultMessage> {
    return this.refusedWhileStopping() ?? untilAborted(this.generateQueued(params, signal, listeners, requiredModel), signal);
  }

  /**
   * `requiredModel`: the model this request's client chose, for an engine that several clients share. It
   * is loaded (the loaded one swapped out) when the request's turn comes, that is once the queue has
   * finished what came before it.
   */
  private async generateQueued(params: GenerateCall, signal: AbortSignal | undefined, listeners: CallListeners, requiredModel?: LoadModelParams): Promise<GenerateResultMessage> {
    let batched: { result: Promise<GenerateResult>; model: PaliGemmaModel; encoded: EncodedImage; cachedImage: boolean } | undefined;
    const single = await this.serve(async () => {
      if (requiredModel) await this.ensureModel(requiredModel, listeners);
      const model = this.model;
      if (!model || !this.modelInfo) throw new UserError('no model is loaded: choose one with "PaliGemma: Select Model"');
      const prompt = 'prompt' in params.task ? params.task.prompt : taskPromptOrUserError(params.task);
      const { bytes, label } = readImageSource(params);
      const maxPixels = params.maxImagePixels ?? this.options.maxImagePixels;
      // The limit is part of the key: features cached under a higher limit must not answer a lower one.
      const key = `${this.modelInfo.onnxDir}:${maxPixels ?? ''}:${createHash('sha256').update(bytes).digest('hex')}`;
      let encoded = this.features.get(key);
      const cachedImage = encoded !== undefined;
      if (!encoded) {
        encoded = await encodeImage(model, await decodeImageBytes(bytes, label, { maxPixels }), undefined, signal);
        this.features.set(key, encoded);
      }
      const options = {
        maxNewTokens: params.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
        sampling: params.sampling && params.sampling.temperature > 0 ? params.sampling : undefined,
        signal,
        onText: listeners.onText,
        keepFirstLogits: listeners.onFirstLogits !== undefined,
      };
      if (this.batcher?.model === model) {
        // Prefill now; decoding goes on in the batch, one queued step at a time (generate/batchDecoder.ts).
        batched = { result: (await this.batcher.decoder.start(encoded, prompt, options)).result, model, encoded, cachedImage };
        return undefined;
      }
      const result = await generate(model, encoded, prompt, options);
      if (result.firstLogits) listeners.onFirstLogits?.(result.firstLogits);
      await this.enforceMemoryLimit(params.memoryLimitMB, 'on this request');
      return this.resultMessage(model, params, encoded, cachedImage, result);
    }, signal, params.priority ?? 'user');
    const message = single ?? await (async () => {
      const { result, model, encoded, cachedImage } = batched!;
      return this.resultMessage(model, params, encoded, cachedImage, await result);
    })();
    if ('task' in params.task && params.task.task === 'segment') {
      const { segments, notes } = await segmentAnswer(message.text, message.imageWidth, message.imageHeight, () => this.loadSegmenter(params.vaePath, signal, listeners.onProgress));
      return { ...message, segments, notes };
    }
    return message;
  }

  /** Masks for another engine's answer (the remote backend): the VQ-VAE only, no model. */
  segmentAnswer(params: SegmentAnswerParams, signal?: AbortSignal, listeners: CallListeners = {}): Promise<SegmentAnswerResult> {
    const { text, imageWidth, imageHeight } = params;
    if (!(Number.isInteger(imageWidth) && imageWidth > 0 && Number.isInteger(imageHeight) && imageHeight > 0)) {
      throw new UserError(`the image size must be positive whole pixels, not ${imageWidth}x${imageHeight}`);
    }
    return this.refusedWhileStopping() ?? this.serve(async () => {
      const { segments, notes } = await segmentAnswer(text, imageWidth, imageHeight, () => this.loadSegmenter(params.vaePath, signal, listeners.onProgress));
      return { segments, notes };
    }, signal);
  }

  private async loadSegmenter(vaePath: string | undefined, signal: AbortSignal | undefined, onProgress: ((message: string) => void) | undefined): Promise<Segmenter> {
    const file = await findVaeFile({ vaeFile: vaePath || undefined, modelDir: this.modelInfo?.modelDir, cacheRoot: this.options.cacheRoot, onProgress, signal });
    if (this.segmenter?.file !== file) {
      await this.segmenter?.segmenter.release();
      this.segmenter = { file, segmenter: await Segmenter.load(file) };
    }
    return this.segmenter.segmenter;
  }

  private resultMessage(model: PaliGemmaModel, params: GenerateCall, encoded: EncodedImage, cachedImage: boolean, result: GenerateResult): GenerateResultMessage {
    return {
      text: result.text,
      boxes: boxesForTask(params.task, result.text, encoded.width, encoded.height),
      imageWidth: encoded.width,
      imageHeight: encoded.height,
      generatedIds: result.generatedIds,
      promptTokens: result.promptIds.length,
      ...(params.withPromptIds ? { promptIds: result.promptIds } : {}),
      finishReason: model.eosTokenIds.has(result.generatedIds.at(-1) ?? -1) ? 'stop' : 'length',
      device: result.device,
      cachedImage,
      timings: cachedImage ? { ...result.timings, preprocessMs: 0, visionMs: 0 } : result.timings,
    };
  }

  /**
   * paligemma.engineMemoryLimitGB: over the limit, the model is unloaded (its memory returned) and the
   * request refused with the figures, rather than the system running out of memory later.
   */
  private async enforceMemoryLimit(limitMB: number | undefined, during: string): Promise<void> {
    if (!limitMB) return;
    const usedMB = Math.round(process.memoryUsage.rss() / 2 ** 20);
    if (usedMB <= limitMB) return;
    await this.unload();
    this.options.onUnloadedOverLimit?.(`the engine used ${usedMB} MB, over a limit of ${limitMB} MB (paligemma.engineMemoryLimitGB)`);
    throw new UserError(`the engine used ${usedMB} MB ${during}, over its limit of ${limitMB} MB (paligemma.engineMemoryLimitGB): the model was unloaded. Raise the limit, or use int4 weights or a smaller model`, { modelUnloaded: true });
  }

  async unload(): Promise<void> {
    this.features.clear();
    const model = this.model;
    this.model = null;
    this.modelInfo = null;
    this.batcher = undefined;
    await model?.release();
    if (model) this.options.log?.(`pali: unloaded ${model.dir}`);
    await this.segmenter?.segmenter.release();
    this.segmenter = undefined;
  }
}

function taskPromptOrUserError(task: Parameters<typeof taskPrompt>[0]): string {
  try {
    return taskPrompt(task);
  } catch (error) {
    throw new UserError(describeError(error));
  }
}

function readImageSource(params: GenerateCall): { bytes: Buffer; label: string } {
  if ('path' in params.image) {
    try {
      return { bytes: fs.readFileSync(params.image.path), label: params.image.path };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new UserError(code === 'ENOENT' ? `image ${params.image.path} does not exist` : `cannot read image ${params.image.path}: ${code}`);
    }
  }
  return { bytes: Buffer.from(params.image.base64, 'base64'), label: params.image.name };
}

/** `work`, or an AbortError as soon as `signal` aborts, whichever comes first. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError());
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
