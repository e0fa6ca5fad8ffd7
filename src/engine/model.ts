/**
 * A loaded PaliGemma: its config, tokenizer, image processor settings and ONNX Runtime sessions. The folder
 * may be a Hugging Face checkpoint (converted once, then cached) or a ready-made onnx-community export.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { autoDtype, type DtypeChoice } from '../common/dtypes.js';
import { readJsonFile } from './checkpoint/checkpoint.js';
import { endTokenIds, readPaliGemmaConfig, type PaliGemmaConfig } from './checkpoint/config.js';
import { convertCheckpoint, defaultCacheRoot } from './convert/convert.js';
import { componentFile, WEIGHT_SUFFIX, type Component, type ModelDtype } from './paligemma/components.js';
import { UserError } from '../common/errors.js';
import { readImageProcessorConfig, type ImageProcessorConfig } from './image/preprocess.js';
import { thisCpu } from './runtime/cpuFeatures.js';
import { createSessionsOnDevice, type Device, type DeviceAttempt, type DeviceChoice, type DeviceFiles } from './runtime/device.js';
import { probeWebGpu } from './runtime/webgpuProbe.js';
import { findEmbeddingTable, openEmbeddingTable, sessionEmbeddings, type TokenEmbeddings } from './paligemma/tokenEmbeddings.js';
import { loadTokenizer, type LoadedTokenizer } from './text/tokenizer.js';

export interface LoadOptions {
  /** `auto` picks by device and CPU: int8 or int4 on a CPU, fp16 on a GPU (common/dtypes.ts). */
  dtype: DtypeChoice;
  device: DeviceChoice;
  cacheRoot?: string;
  onProgress?: (message: string) => void;
}

export interface PaliGemmaModel {
  /** The folder the sessions were loaded from (the converted cache folder for checkpoints). */
  dir: string;
  config: PaliGemmaConfig;
  tokenizer: LoadedTokenizer;
  imageProcessor: ImageProcessorConfig;
  imageTokenId: number;
  bosTokenId: number;
  eosTokenIds: Set<number>;
  device: Device;
  deviceFallbacks: DeviceAttempt[];
  dtype: ModelDtype;
  /** With `auto`: why this dtype (the device, the CPU's instructions). */
  dtypeReason?: string;
  /** Something the user should know about the device, e.g. that WebGPU runs on a software adapter. */
  deviceNote?: string;
  /** How each CPU session was made: from a copy prepared for this CPU, prepared now, or plainly (why). */
  sessionLoads: Record<string, string>;
  /** Token ids -> embeddings: rows read from the table on disk, or the export's embedding session. */
  embeddings: TokenEmbeddings;
  sessions: {
    vision: ort.InferenceSession;
    /** Our masked decoder (attention_bias in, last logits out), or the plain layout decoder of an export. */
    decoder: ort.InferenceSession;
  };
  /** True when `decoder` takes attention_bias and returns the last position's logits only. */
  maskedDecoder: boolean;
  /** The element type of the decoder's inputs_embeds and KV cache: float16 for fp16 exports. */
  decoderActivations: 'float32' | 'float16';
  release(): Promise<void>;
}

function isOnnxExport(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'onnx')) && !fs.existsSync(path.join(dir, 'model.safetensors')) &&
    !fs.existsSync(path.join(dir, 'model.safetensors.index.json'));
}

/**
 * The file for a component: ours for the dtype (paligemma/components.ts); else the dtype's suffix on every
 * component, as onnx-community exports name their files (vision_encoder_q4.onnx); else float32.
 */
function findComponent(dir: string, component: Component, dtype: ModelDtype): string | null {
  const candidates = [componentFile(component, dtype), `onnx/${component}${WEIGHT_SUFFIX[dtype]}.onnx`, componentFile(component, 'fp32')];
  const found = candidates.find((file) => fs.existsSync(path.join(dir, file)));
  return found ? path.join(dir, found) : null;
}

function activationTypeOf(decoder: ort.InferenceSession): 'float32' | 'float16' {
  const embeds = decoder.inputMetadata.find((input) => input.name === 'inputs_embeds');
  return embeds?.isTensor && embeds.type === 'float16' ? 'float16' : 'float32';
}

/** The graphs our engine runs for a dtype: the masked decoder when present (else the export's merged one). */
function componentFiles(dir: string, dtype: ModelDtype): { files: Record<string, string>; masked: boolean } {
  const masked = findComponent(dir, 'decoder_model_masked', dtype);
  const merged = findComponent(dir, 'decoder_model_merged', dtype);
  if (!masked && !merged) throw new UserError(`${dir}/onnx has no decoder_model_merged graph for dtype ${dtype}`);
  // Sessions are created in this order, and the decoder comes first: creating it needs transient memory
  // (optimisation, weight prepacking) beyond what it keeps, and that peak should not sit on top of the
  // vision tower's weights. Measured on paligemma-3b-224 fp32: peak RSS 13.8 GB vision-first, 12.2 GB this way.
  const files: Record<string, string> = { decoder: (masked ?? merged)! };
  for (const component of ['vision_encoder', 'embed_tokens'] as const) {
    const file = findComponent(dir, component, dtype);
    if (!file) throw new UserError(`${dir}/onnx has no ${component} graph: the export is incomplete`);
    files[component] = file;
  }
  return { files, masked: masked !== null };
}

/** The model folder's other files: config, generation config, tokenizer and the image processor's settings. */
async function readModelFiles(dir: string, cacheRoot: string): Promise<{ config: PaliGemmaConfig; endTokens: number[]; tokenizer: LoadedTokenizer; imageProcessor: ImageProcessorConfig }> {
  const config = readPaliGemmaConfig(readJsonFile(path.join(dir, 'config.json'), 'config'));
  const generationFile = path.join(dir, 'generation_config.json');
  const generationConfig = fs.existsSync(generationFile) ? readJsonFile(generationFile, 'generation config') : null;
  const endTokens = endTokenIds(generationConfig, config, generationFile);
  const tokenizer = await loadTokenizer(dir, cacheRoot);
  const preprocessor = readJsonFile(path.join(dir, 'preprocessor_config.json'), 'image processor config');
  return { config, endTokens, tokenizer, imageProcessor: readImageProcessorConfig(preprocessor, config.vision.image_size) };
}

export async function loadModel(modelDir: string, options: LoadOptions): Promise<PaliGemmaModel> {
  const isExport = isOnnxExport(modelDir);
  // The dtype may depend on the device (`auto`), so the graphs are found, or converted once into the
  // cache, for each device as it is tried.
  let chosen: { dir: string; dtype: ModelDtype; dtypeReason?: string; masked: boolean; table: ReturnType<typeof findEmbeddingTable> } | undefined;
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const filesFor = async (device: Device): Promise<DeviceFiles> => {
    const cpu = thisCpu();
    // On WebGPU, `auto` needs to know whether the adapter runs float16 (measured once per machine).
    const gpu = options.dtype === 'auto' && device === 'webgpu' ? { float16: (await probeWebGpu(cacheRoot)).float16 } : undefined;
    const auto = options.dtype === 'auto' ? autoDtype(device, isExport ? 'export' : { integerDotProduct: cpu.integerDotProduct, kernel: cpu.integerGemm }, gpu) : null;
    const dtype = auto?.dtype ?? (options.dtype as ModelDtype);
    const dir = isExport
      ? modelDir
      : convertCheckpoint({ modelDir, dtype, cacheRoot, onProgress: options.onProgress }).dir;
    const { files, masked } = componentFiles(dir, dtype);
    // A plain float32 table is read row by row from disk, never loaded whole (paligemma/tokenEmbeddings.ts).
    const table = findEmbeddingTable(files.embed_tokens!);
    if (table) delete files.embed_tokens;
    chosen = { dir, dtype, dtypeReason: auto?.reason, masked, table };
    // int8's integer GEMM weights are what a CPU session spends its load repacking (float ones would double
    // gigabytes on disk for less). int4's MatMulNBits is not prepared: ONNX Runtime 1.30 reloads its saved
    // packs wrong (every logit 0, seen on the forged models), while int8's reload is exact to the bit
    // (test/engine/runtime/preparedSessions.test.ts).
    return { files, prepareOnCpu: dtype === 'int8' };
  };
  options.onProgress?.('loading the model');
  const { device, sessions, fallbacks, note, loads } = await createSessionsOnDevice(filesFor, options.device, cacheRoot, options.onProgress);
  const { dir, dtype, dtypeReason, masked, table } = chosen!;
  let modelFiles: Awaited<ReturnType<typeof readModelFiles>>;
  let embeddings: TokenEmbeddings;
  try {
    modelFiles = await readModelFiles(dir, cacheRoot);
    embeddings = table ? openEmbeddingTable(table) : sessionEmbeddings(sessions.embed_tokens!);
  } catch (error) {
    // A broken config or tokenizer must not leave the sessions' memory behind in a long-lived engine.
    await Promise.all(Object.values(sessions).map((s) => s.release().catch(() => {})));
    throw error;
  }
  const { config, endTokens, tokenizer, imageProcessor } = modelFiles;
  return {
    dir,
    config,
    tokenizer,
    imageProcessor,
    imageTokenId: tokenizer.tokenToId('<image>') ?? config.image_token_index,
    bosTokenId: tokenizer.tokenToId(tokenizer.bosToken) ?? config.bos_token_id,
    eosTokenIds: new Set(endTokens),
    device,
    deviceFallbacks: fallbacks,
    ...(note ? { deviceNote: note } : {}),
    dtype,
    dtypeReason,
    sessionLoads: loads,
    embeddings,
    sessions: { vision: sessions.vision_encoder!, decoder: sessions.decoder! },
    maskedDecoder: masked,
    decoderActivations: activationTypeOf(sessions.decoder!),
    release: async () => {
      await Promise.all([...Object.values(sessions).filter((s) => s !== sessions.embed_tokens).map((s) => s.release()), embeddings.close()]);
    },
  };
}
