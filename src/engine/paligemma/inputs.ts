/**
 * PaliGemma's inputs: the image through preprocessing and the vision tower to its features, the prompt to
 * PaliGemmaProcessor's ids, and both to the prefix embeddings that the decoder takes.
 */
import { abortError, UserError } from '../../common/errors.js';
import { decodeImageFile, type DecodeOptions, type RgbImage } from '../image/decode.js';
import { imageToPixelValues } from '../image/preprocess.js';
import type { PaliGemmaModel } from '../model.js';
import { tensor } from '../runtime/onnxRuntime.js';

export interface EncodedImage {
  width: number;
  height: number;
  /** [num_image_tokens, hidden] float32: the projector's output divided by sqrt(hidden). */
  features: Float32Array;
  timings: { preprocessMs: number; visionMs: number };
}

const now = () => performance.now();

/**
 * Decodes and preprocesses an image file, then runs the vision encoder once. `signal` is checked between
 * the stages (an ONNX Runtime run cannot be interrupted): a cancelled request stops after preprocessing.
 */
export async function encodeImage(model: PaliGemmaModel, image: string | RgbImage, decodeOptions?: DecodeOptions, signal?: AbortSignal): Promise<EncodedImage> {
  const start = now();
  const rgb = typeof image === 'string' ? await decodeImageFile(image, decodeOptions) : image;
  const pixels = imageToPixelValues(rgb, model.imageProcessor);
  const { width, height } = model.imageProcessor;
  const preprocessed = now();
  throwIfAborted(signal);
  const outputs = await model.sessions.vision.run({ pixel_values: tensor('float32', pixels, [1, 3, height, width]) });
  throwIfAborted(signal);
  const features = new Float32Array(outputs.image_features!.data as Float32Array);
  return { width: rgb.width, height: rgb.height, features, timings: { preprocessMs: preprocessed - start, visionMs: now() - preprocessed } };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
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
