/**
 * The decode loop: prefill the prefix, then pick one token at a time (greedy or sampled) until an end
 * token or the limit, streaming text as it forms. The CLI and the engine server both call it.
 */
import { abortError, UserError } from '../errors.js';
import type { PaliGemmaModel } from '../model.js';
import { emptyCache, runDecoder } from '../paligemma/decoderRunner.js';
import { buildPromptIds, embedPrefix, embedTokens, type EncodedImage } from '../paligemma/inputs.js';
import { SeededRandom } from '../random.js';
import { argmax, sampleToken, type SamplingOptions } from './sampling.js';
import { TextStream } from './textStream.js';

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

/**
 * Refuses what no model run can answer, as HF's generate does, before any work: fewer than one new token,
 * more positions than the model has (a 100 kB prompt, max_new_tokens 1e9), or sampling values outside
 * their range.
 */
function checkRequest(model: PaliGemmaModel, promptLength: number, options: GenerateOptions): void {
  const { maxNewTokens, sampling } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new UserError(`max_new_tokens must be a whole number of at least 1, not ${maxNewTokens}`);
  const positions = model.config.text.max_position_embeddings;
  if (promptLength + maxNewTokens > positions) {
    throw new UserError(`the prompt (${promptLength} tokens with the image) and max_new_tokens (${maxNewTokens}) exceed the model's ${positions} positions`);
  }
  if (!sampling) return;
  if (!Number.isFinite(sampling.temperature) || sampling.temperature < 0) throw new UserError(`temperature must be a number of at least 0, not ${sampling.temperature}`);
  if (!Number.isInteger(sampling.topK) || sampling.topK < 0) throw new UserError(`top_k must be a whole number of at least 0, not ${sampling.topK}`);
  if (!(sampling.topP > 0 && sampling.topP <= 1)) throw new UserError(`top_p must be above 0 and at most 1, not ${sampling.topP}`);
}

/** Generates the answer (the suffix) for `prompt` about an encoded image. */
export async function generate(model: PaliGemmaModel, image: EncodedImage, prompt: string, options: GenerateOptions): Promise<GenerateResult> {
  const throwIfAborted = () => {
    if (options.signal?.aborted) throw abortError();
  };
  throwIfAborted();
  const promptIds = buildPromptIds(model, prompt);
  checkRequest(model, promptIds.length, options);
  const prefixEmbeds = await embedPrefix(model, promptIds, image);

  const prefillStart = now();
  let step = await runDecoder(model, prefixEmbeds, promptIds.length, emptyCache(model), promptIds.length);
  const prefillMs = now() - prefillStart;
  throwIfAborted();
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
