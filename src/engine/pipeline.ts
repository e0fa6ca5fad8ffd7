/**
 * PaliGemma end to end: image -> pixels -> image features -> prefix embeddings -> prefill -> decode -> text.
 * One function per stage, in the order data flows; the CLI and the engine server both call these.
 */
import { UserError } from './errors.js';
import { argmax, sampleToken, type SamplingOptions } from './generate/sampling.js';
import { TextStream } from './generate/textStream.js';
import { decodeImageFile, type DecodeOptions, type RgbImage } from './image/decode.js';
import { imageToPixelValues } from './image/preprocess.js';
import type { PaliGemmaModel } from './model.js';
import { SeededRandom } from './random.js';
import { emptyCache, runDecoder } from './runtime/decoderRunner.js';
import { tensor } from './runtime/onnxRuntime.js';

export interface EncodedImage {
  width: number;
  height: number;
  /** [num_image_tokens, hidden] float32: the projector's output divided by sqrt(hidden). */
  features: Float32Array;
  timings: { preprocessMs: number; visionMs: number };
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Absent: greedy decoding. */
  sampling?: SamplingOptions & { seed: number };
  signal?: AbortSignal;
  /** Called with each new piece of text as it is generated. */
  onText?: (piece: string) => void;
  /** Keep the first generated step's full logits (for `--logits-out`). */
  keepFirstLogits?: boolean;
  /** HF's min_new_tokens: <eos> cannot be chosen before this many tokens (the benchmark forces a length). */
  minNewTokens?: number;
}

export interface GenerateResult {
  text: string;
  generatedIds: number[];
  promptIds: number[];
  device: string;
  timings: { preprocessMs: number; visionMs: number; prefillMs: number; decodeMs: number; tokensPerS: number };
  firstLogits?: Float32Array;
}

const now = () => performance.now();

export function abortError(): Error {
  const error = new Error('the request was cancelled');
  error.name = 'AbortError';
  return error;
}

/** Decodes and preprocesses an image file, then runs the vision encoder once. */
export async function encodeImage(model: PaliGemmaModel, image: string | RgbImage, decodeOptions?: DecodeOptions): Promise<EncodedImage> {
  const start = now();
  const rgb = typeof image === 'string' ? await decodeImageFile(image, decodeOptions) : image;
  const pixels = imageToPixelValues(rgb, model.imageProcessor);
  const { width, height } = model.imageProcessor;
  const preprocessed = now();
  const outputs = await model.sessions.vision.run({ pixel_values: tensor('float32', pixels, [1, 3, height, width]) });
  const features = new Float32Array(outputs.image_features!.data as Float32Array);
  return { width: rgb.width, height: rgb.height, features, timings: { preprocessMs: preprocessed - start, visionMs: now() - preprocessed } };
}

const IMAGE_TOKEN = '<image>';

/**
 * PaliGemmaProcessor's prefix as ids: `<image>` x N, `<bos>`, the prompt and "\n". A prompt that already
 * holds the `<image>` token has it expanded in place, with `<bos>` after it, as the processor does
 * (text before the image stays before it). We pass one image, so the prompt may hold one `<image>` at most.
 */
export function buildPromptIds(model: PaliGemmaModel, prompt: string): number[] {
  const imageIds = new Array<number>(model.config.num_image_tokens).fill(model.imageTokenId);
  const parts = prompt.split(IMAGE_TOKEN);
  if (parts.length > 2) {
    throw new UserError(`the prompt holds ${parts.length - 1} ${IMAGE_TOKEN} tokens, but one image is given: use one at most`);
  }
  const [before, after] = parts.length === 2 ? parts : ['', prompt];
  const textIds = (text: string) => (text ? model.tokenizer.encode(text) : []);
  return [...textIds(before!), ...imageIds, model.bosTokenId, ...model.tokenizer.encode(`${after}\n`)];
}

/** Embeds token ids, then puts image features in place of the <image> tokens, in order (HF's masked_scatter). */
export async function embedPrefix(model: PaliGemmaModel, ids: number[], image: EncodedImage): Promise<Float32Array> {
  const hidden = model.config.text.hidden_size;
  const embeds = await embedTokens(model, ids);
  let featureRow = 0;
  const featureRows = image.features.length / hidden;
  ids.forEach((id, position) => {
    if (id !== model.imageTokenId) return;
    if (featureRow >= featureRows) throw new UserError('the prompt has more <image> tokens than the image has features');
    embeds.set(image.features.subarray(featureRow * hidden, (featureRow + 1) * hidden), position * hidden);
    featureRow++;
  });
  if (featureRow !== featureRows) throw new UserError(`the prompt has ${featureRow} <image> tokens for ${featureRows} image features`);
  return embeds;
}

export function embedTokens(model: PaliGemmaModel, ids: number[]): Promise<Float32Array> {
  return model.embeddings.lookup(ids);
}

/** Generates the answer (the suffix) for `prompt` about an encoded image. */
export async function generate(model: PaliGemmaModel, image: EncodedImage, prompt: string, options: GenerateOptions): Promise<GenerateResult> {
  const throwIfAborted = () => {
    if (options.signal?.aborted) throw abortError();
  };
  throwIfAborted();
  const promptIds = buildPromptIds(model, prompt);
  const prefixEmbeds = await embedPrefix(model, promptIds, image);

  const prefillStart = now();
  let step = await runDecoder(model, prefixEmbeds, promptIds.length, emptyCache(model), promptIds.length);
  const prefillMs = now() - prefillStart;
  const firstLogits = options.keepFirstLogits ? step.logits.slice() : undefined;

  const random = options.sampling ? new SeededRandom(options.sampling.seed, 'sampling') : null;
  const generated: number[] = [];
  const pick = (logits: Float32Array) => {
    // HF's MinNewTokensLengthLogitsProcessor: the end tokens' logits are -inf until the minimum is reached.
    if (generated.length < (options.minNewTokens ?? 0)) for (const eos of model.eosTokenIds) logits[eos] = -Infinity;
    return options.sampling && random ? sampleToken(logits, options.sampling, random) : argmax(logits);
  };
  const stream = new TextStream((ids) => model.tokenizer.decode(ids));
  const decodeStart = now();
  let decodeSteps = 0;
  // As HF's generate: <eos> ends the answer and is returned with it; max_new_tokens counts it.
  while (generated.length < options.maxNewTokens) {
    const next = pick(step.logits);
    generated.push(next);
    if (model.eosTokenIds.has(next)) break;
    const piece = stream.push(generated);
    if (piece) options.onText?.(piece);
    if (generated.length >= options.maxNewTokens) break;
    throwIfAborted();
    step = await runDecoder(model, await embedTokens(model, [next]), 1, step.cache, promptIds.length);
    decodeSteps++;
  }
  const rest = stream.finish(generated);
  if (rest) options.onText?.(rest);
  const decodeMs = now() - decodeStart;
  return {
    text: model.tokenizer.decode(generated),
    generatedIds: generated,
    promptIds: promptIds,
    device: model.device,
    timings: {
      ...image.timings,
      prefillMs: prefillMs,
      decodeMs: decodeMs,
      tokensPerS: decodeMs > 0 ? (decodeSteps * 1000) / decodeMs : 0,
    },
    firstLogits,
  };
}
