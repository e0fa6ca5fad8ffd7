/**
 * The messages between the extension host and the engine process, over vscode-jsonrpc. Both sides import
 * this module; it holds only message names and their types, never logic.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { DetectedBox } from './common/locTokens.js';
import type { DeviceChoice } from './common/devices.js';
import type { DtypeChoice, ModelDtype } from './common/dtypes.js';
import type { TaskRequest } from './common/prompts.js';

export type { DeviceChoice, DtypeChoice, ModelDtype };

/**
 * Bumped whenever a message below changes. A shared engine's socket is named with it and its handshake
 * carries it, so that a client never talks to an engine of another version (engine/shared/).
 */
export const PROTOCOL_VERSION = 1;

export interface LoadModelParams {
  /** A Hugging Face checkpoint folder or an onnx-community export. */
  modelDir: string;
  /** `auto`: int8 or int4 on a CPU (by its instructions), fp16 on a GPU (common/dtypes.ts). */
  dtype: DtypeChoice;
  device: DeviceChoice;
  /** The engine's memory limit in MB (paligemma.engineMemoryLimitGB); none when absent or 0. */
  memoryLimitMB?: number;
  /**
   * For a shared engine: minutes to keep the model loaded after this request without another one (0: keep
   * it). The latest request's value holds, as with Ollama's keep_alive. An engine of a window's own ignores it.
   */
  keepAliveMinutes?: number;
}

export interface ModelInfo {
  modelDir: string;
  /** Where the ONNX graphs are (the conversion cache for checkpoints). */
  onnxDir: string;
  /** What runs; `dtypeChoice` is what was asked for (`auto` or this). */
  dtype: ModelDtype;
  dtypeChoice: DtypeChoice;
  /** With `auto`: why this dtype (the device, the CPU's instructions). */
  dtypeReason?: string;
  device: string;
  /** Something to know about the device (WebGPU on a software adapter). */
  deviceNote?: string;
  /** Devices tried before `device`, and why they were not used. */
  fallbacks: { device: string; error: string }[];
  generation: 1 | 2;
  imageSize: number;
}

/** An image by path, or its bytes (a pasted screenshot) in base64. */
export type ImageSource = { path: string } | { base64: string; name: string };

export interface GenerateParams {
  image: ImageSource;
  /** A task (caption, ocr, answer, detect, ...) or a raw prompt. */
  task: TaskRequest | { prompt: string };
  maxNewTokens?: number;
  /**
   * For a shared engine: minutes to keep the model loaded after this request without another one (0: keep
   * it). The latest request's value holds, as with Ollama's keep_alive. An engine of a window's own ignores it.
   */
  keepAliveMinutes?: number;
  /** Sampling instead of greedy decoding (temperature above 0). */
  sampling?: { temperature: number; topP: number; topK: number; seed: number };
  /** `background` (hover prefetch) waits behind every user request; `user` is the default. */
  priority?: 'user' | 'background';
  /** The engine's memory limit in MB, checked after the request; none when absent or 0. */
  memoryLimitMB?: number;
  /** Images with more pixels are refused before decoding (the paligemma.maxImagePixels setting). */
  maxImagePixels?: number;
  /** Chosen by the client so that streamed pieces can be matched to this request. */
  streamId?: string;
  /** Return the prompt's token ids too (`pali generate --json` prints them). */
  withPromptIds?: boolean;
  /** big_vision's vae-oid.npz for segmentation (paligemma.segmentation.vaePath); else found or downloaded. */
  vaePath?: string;
}

/** A segmented object: its box and its mask over the whole image, as uncompressed COCO RLE. */
export interface SegmentMessage {
  label: string;
  box: { xMin: number; yMin: number; xMax: number; yMax: number };
  mask: { size: [number, number]; counts: number[] };
}

/**
 * Masks for an answer that came from elsewhere (the remote backend's server): the engine decodes its
 * <seg> tokens with the VQ-VAE; no model is needed. The size is the image's, as displayed (EXIF applied).
 */
export interface SegmentAnswerParams {
  text: string;
  imageWidth: number;
  imageHeight: number;
  vaePath?: string;
}

export interface SegmentAnswerResult {
  segments: SegmentMessage[];
  /** Objects skipped, and why. */
  notes: string[];
}

export interface GenerateResultMessage {
  text: string;
  /** For detect: boxes in the original image's pixels. */
  boxes?: DetectedBox[];
  /** For segment: each object's box and mask. */
  segments?: SegmentMessage[];
  /** What the answer held that could not be used (a cut-off object), one line each. */
  notes?: string[];
  imageWidth: number;
  imageHeight: number;
  generatedIds: number[];
  /** Tokens of the prompt the model saw, image tokens included. */
  promptTokens: number;
  /** Those tokens' ids, when the request asked for them (withPromptIds). */
  promptIds?: number[];
  /** `stop`: an end token ended the answer; `length`: maxNewTokens did. */
  finishReason: 'stop' | 'length';
  device: string;
  /** True when the image's features came from the engine's cache (a second question about one image). */
  cachedImage: boolean;
  timings: { preprocessMs: number; visionMs: number; prefillMs: number; decodeMs: number; tokensPerS: number };
}

export interface EngineStatus {
  pid: number;
  state: 'idle' | 'loading' | 'busy';
  model: ModelInfo | null;
  queued: number;
  /** Resident memory and the JavaScript heap in use, MB. */
  memory: { residentMB: number; heapMB: number };
  /** A shared engine: the clients connected now (this one included). */
  clients?: number;
}

export interface SelfTestResult {
  /** The runtime's Node version and whether it is Electron running as Node. */
  node: string;
  electron: boolean;
  onnxruntime: string;
  /** Execution providers the onnxruntime binary offers. */
  backends: string[];
}

export interface TextPieceParams {
  streamId: string;
  piece: string;
}

export interface ProgressParams {
  message: string;
}

/**
 * What a shared engine tells every client unasked: `model-unloaded` after keepAlive minutes without a
 * request, or over a client's memory limit (the next request loads it again), `stopping` before it ends on purpose (`pali stop`), so that
 * the connection's close that follows is not taken for a crash.
 */
export interface EngineEventParams {
  event: 'model-unloaded' | 'stopping';
  why: string;
}

/** Error codes of user errors (bad image, missing model...), as opposed to engine faults. */
export const USER_ERROR_CODE = -32001;
/** The data of a USER_ERROR_CODE error, where there is some. */
export interface UserErrorData {
  /** The engine unloaded the model before answering (over paligemma.engineMemoryLimitGB). */
  modelUnloaded?: boolean;
}
/** The reply to a request cancelled with $/cancelRequest (LSP's RequestCancelled). */
export const REQUEST_CANCELLED_CODE = -32800;

export const LoadModelRequest = new RequestType<LoadModelParams, ModelInfo, UserErrorData | void>('pali/loadModel');
export const GenerateRequest = new RequestType<GenerateParams, GenerateResultMessage, UserErrorData | void>('pali/generate');
export const SegmentAnswerRequest = new RequestType<SegmentAnswerParams, SegmentAnswerResult, UserErrorData | void>('pali/segmentAnswer');
export const StatusRequest = new RequestType0<EngineStatus, void>('pali/status');
/** Runs a tiny graph through onnxruntime: the first request after a start, to prove the runtime works. */
export const SelfTestRequest = new RequestType0<SelfTestResult, UserErrorData | void>('pali/selfTest');
/** Asks a shared engine to unload its model and exit once the requests in flight are answered (`pali stop`). */
export const ShutdownRequest = new RequestType0<void, void>('pali/shutdown');
export const TextPieceNotification = new NotificationType<TextPieceParams>('pali/textPiece');
export const ProgressNotification = new NotificationType<ProgressParams>('pali/progress');
export const EngineEventNotification = new NotificationType<EngineEventParams>('pali/engineEvent');
