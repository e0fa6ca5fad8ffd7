/**
 * The decode loop: prefill the prefix, then pick one token at a time (greedy or sampled) until an end
 * token or the limit, streaming text as it forms. The CLI and the engine server both call it.
 */
import { abortError, UserError } from '../../common/errors.js';
import type { PaliGemmaModel } from '../model.js';
import { emptyCache, runDecoder, type DecoderStep } from '../paligemma/decoderRunner.js';
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

/**
 * One answer as it is built, token by token: the choice of each token (greedy or sampled, with HF's
 * min_new_tokens), the streamed text, and when it ends. The single-request loop below and the batch decoder
 * (batchDecoder.ts) both drive it, so a row of a batch picks exactly as a request alone does.
 */
export class AnswerInProgress {
  readonly generated: number[] = [];
  private readonly random: SeededRandom | null;
  private readonly stream: TextStream;
  done = false;

  constructor(private readonly model: PaliGemmaModel, private readonly options: GenerateOptions) {
    this.random = options.sampling ? new SeededRandom(options.sampling.seed, 'sampling') : null;
    this.stream = new TextStream((ids) => model.tokenizer.decode(ids));
  }

  /** Picks the next token from `logits`; returns it when the answer goes on, null when it has ended. */
  next(logits: Float32Array): number | null {
    // HF's MinNewTokensLengthLogitsProcessor: the end tokens' logits are -inf until the minimum is reached.
    if (this.generated.length < (this.options.minNewTokens ?? 0)) for (const eos of this.model.eosTokenIds) logits[eos] = -Infinity;
    const token = this.options.sampling && this.random ? sampleToken(logits, this.options.sampling, this.random) : argmax(logits);
    // As HF's generate: <eos> ends the answer and is returned with it; max_new_tokens counts it.
    this.generated.push(token);
    if (this.model.eosTokenIds.has(token)) return this.end();
    const piece = this.stream.push(this.generated);
    if (piece) this.options.onText?.(piece);
    return this.generated.length >= this.options.maxNewTokens ? this.end() : token;
  }

  private end(): null {
    this.done = true;
    const rest = this.stream.finish(this.generated);
    if (rest) this.options.onText?.(rest);
    return null;
  }

  get text(): string {
    return this.model.tokenizer.decode(this.generated);
  }
}

export interface Prefilled {
  promptIds: number[];
  /** The prefix's decoder output: the first token's logits and the KV cache. */
  step: DecoderStep;
  prefillMs: number;
}

/**
 * Answer positions the KV cache reserves at the prefill: captions and most OCR fit, and at 448 px each
 * slot of the 3B costs 37 KB, so reserving a 1,024-token maximum would hold 38 MB that most answers never use.
 */
const RESERVED_ANSWER_SLOTS = 128;

/** Checks the request and runs the prefix through the decoder: the first half of every generation. */
export async function prefill(model: PaliGemmaModel, image: EncodedImage, prompt: string, options: GenerateOptions): Promise<Prefilled> {
  if (options.signal?.aborted) throw abortError();
  const promptIds = buildPromptIds(model, prompt);
  checkRequest(model, promptIds.length, options);
  const prefixEmbeds = await embedPrefix(model, promptIds, image);
  const started = now();
  // Room for a typical answer up front; a longer one grows the cache as it goes (kvCache.ts).
  const reserve = promptIds.length + Math.min(options.maxNewTokens, RESERVED_ANSWER_SLOTS);
  const step = await runDecoder(model, prefixEmbeds, promptIds.length, emptyCache(model, reserve), promptIds.length);
  return { promptIds, step, prefillMs: now() - started };
}

export function resultOf(model: PaliGemmaModel, image: EncodedImage, prefilled: Prefilled, answer: AnswerInProgress, decodeMs: number, decodeSteps: number, firstLogits?: Float32Array): GenerateResult {
  return {
    text: answer.text,
    generatedIds: answer.generated,
    promptIds: prefilled.promptIds,
    device: model.device,
    timings: {
      ...image.timings,
      prefillMs: prefilled.prefillMs,
      decodeMs,
      tokensPerS: decodeMs > 0 ? (decodeSteps * 1000) / decodeMs : 0,
    },
    firstLogits,
  };
}

/** Generates the answer (the suffix) for `prompt` about an encoded image. */
export async function generate(model: PaliGemmaModel, image: EncodedImage, prompt: string, options: GenerateOptions): Promise<GenerateResult> {
  const prefilled = await prefill(model, image, prompt, options);
  if (options.signal?.aborted) throw abortError();
  const firstLogits = options.keepFirstLogits ? prefilled.step.logits.slice() : undefined;
  const answer = new AnswerInProgress(model, options);
  const decodeStart = now();
  let decodeSteps = 0;
  let step = prefilled.step;
  for (let token = answer.next(step.logits); token !== null; token = answer.next(step.logits)) {
    if (options.signal?.aborted) throw abortError();
    step = await runDecoder(model, await embedTokens(model, [token]), 1, step.cache, prefilled.promptIds.length);
    decodeSteps++;
  }
  return resultOf(model, image, prefilled, answer, now() - decodeStart, decodeSteps, firstLogits);
}
