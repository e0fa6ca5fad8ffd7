/**
 * Decoding several requests together (continuous batching, as vLLM schedules it, at step boundaries). Each
 * request is prefilled alone (its first token is exactly what it gets alone), then joins the batch: one
 * decoder run per step feeds every row its last token. On a CPU a decode step streams every weight once,
 * whatever the batch, so B rows cost little more than one. A prefill is compute-bound instead: two at once
 * run their GEMMs no faster than one (measured with bench/floors.ts: int4 at the 3B's shape, 233-251
 * GFLOP/s for 262 rows, 225-227 for 524), so batching prefills would buy nothing.
 *
 * Rows of different lengths share one KV cache, [rows, kv_heads, slots, head_dim], left-padded: row r's
 * first `padding[r]` slots hold nothing, and its attention bias (paligemma/prefixLmMask.ts) hides them. Its
 * positions are its own (slot - padding + 1), so RoPE sees what it sees alone. Rows join and leave between
 * steps; the cache is rebuilt then (a copy), never during a step. Needs the masked decoder: the merged
 * layout graph cannot mask padding.
 *
 * Every step is one job on the engine's queue, so a new request's prefill runs between two steps and waits
 * for no batch to finish.
 */
import type * as ort from 'onnxruntime-node';
import { abortError } from '../../common/errors.js';
import type { PaliGemmaModel } from '../model.js';
import { KvCache, type CacheData } from '../paligemma/kvCache.js';
import { embedTokens, type EncodedImage } from '../paligemma/inputs.js';
import { paddedPrefixLmBias } from '../paligemma/prefixLmMask.js';
import { f32ToF16 } from '../checkpoint/floatFormats.js';
import { tensor } from '../runtime/onnxRuntime.js';
import { AnswerInProgress, prefill, resultOf, type GenerateOptions, type GenerateResult, type Prefilled } from './generate.js';

interface Row {
  image: EncodedImage;
  prefilled: Prefilled;
  answer: AnswerInProgress;
  options: GenerateOptions;
  /** The token to feed at the next step. */
  token: number;
  /** Its own cache until it joins the batch. */
  ownCache?: KvCache;
  decodeStart: number;
  decodeSteps: number;
  resolve: (result: GenerateResult) => void;
  reject: (error: unknown) => void;
}

interface BatchCache {
  /** past_key_values.{i}.{key,value}: [rows, kv, slots, head_dim]. */
  kv: KvCache;
  /** Left padding of each row, in slots. */
  padding: number[];
}

/** Runs `work` as one job on the engine's queue. */
export type Enqueue = (work: () => Promise<void>) => Promise<void>;

export class BatchDecoder {
  private rows: Row[] = [];
  private joining: Row[] = [];
  private cache: BatchCache | null = null;
  private stepQueued = false;
  private readonly kvHeads: number;
  private readonly headDim: number;

  constructor(private readonly model: PaliGemmaModel, readonly maxBatch: number, private readonly enqueue: Enqueue) {
    this.kvHeads = model.config.text.num_key_value_heads;
    this.headDim = model.config.text.head_dim;
  }

  /** Rows decoding now, and prefilled rows waiting for a place. */
  get size(): number {
    return this.rows.length + this.joining.length;
  }

  /** Rows in the batch now: at most maxBatch. */
  get decoding(): number {
    return this.rows.length;
  }

  /**
   * Generates as `generate` does, decoding in the batch. Call it from a job on the engine's queue: it
   * prefills there, and returns (wrapped, so that the job does not wait for it) the promise that the
   * batch's later steps settle.
   */
  async start(image: EncodedImage, prompt: string, options: GenerateOptions): Promise<{ result: Promise<GenerateResult> }> {
    const prefilled = await prefill(this.model, image, prompt, options);
    if (options.signal?.aborted) throw abortError();
    const answer = new AnswerInProgress(this.model, options);
    const decodeStart = performance.now();
    const token = answer.next(prefilled.step.logits);
    if (token === null) return { result: Promise.resolve(resultOf(this.model, image, prefilled, answer, performance.now() - decodeStart, 0)) };
    const result = new Promise<GenerateResult>((resolve, reject) => {
      this.joining.push({ image, prefilled, answer, options, token, ownCache: prefilled.step.cache, decodeStart, decodeSteps: 0, resolve, reject });
    });
    this.scheduleStep();
    return { result };
  }

  private scheduleStep(): void {
    if (this.stepQueued || (!this.rows.length && !this.joining.length)) return;
    this.stepQueued = true;
    void this.enqueue(async () => {
      this.stepQueued = false;
      try {
        await this.step();
      } catch (error) {
        for (const row of [...this.rows, ...this.joining]) row.reject(error);
        this.rows = [];
        this.joining = [];
        this.cache = null;
      }
      this.scheduleStep();
    });
  }

  private async step(): Promise<void> {
    this.dropCancelled();
    this.admit();
    if (!this.rows.length || !this.cache) return;
    const { model } = this;
    const batch = this.rows.length;
    const hidden = model.config.text.hidden_size;
    const { kv, padding } = this.cache;
    const slots = kv.length;
    const embeds = await embedTokens(model, this.rows.map((r) => r.token));
    const positions = BigInt64Array.from(padding, (pad) => BigInt(slots - pad + 1));
    const maskRows = this.rows.map((row, r) => ({ padding: padding[r]!, prefixLength: row.prefilled.promptIds.length }));
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: model.decoderActivations === 'float16' ? tensor('float16', f32ToF16(embeds), [batch, 1, hidden]) : tensor('float32', embeds, [batch, 1, hidden]),
      position_ids: tensor('int64', positions, [batch, 1]),
      attention_bias: tensor('float32', paddedPrefixLmBias(maskRows, slots, 1), [batch, 1, 1, slots + 1]),
    };
    if (model.sessions.decoder.inputNames.includes('sliding_attention_bias')) {
      feeds.sliding_attention_bias = tensor('float32', paddedPrefixLmBias(maskRows, slots, 1, model.config.text.sliding_window), [batch, 1, 1, slots + 1]);
    }
    Object.assign(feeds, kv.feeds());
    const outputs = await model.sessions.decoder.run(feeds, ['logits', ...KvCache.outputsOf(model.sessions.decoder)]);
    kv.absorb(outputs, 1);

    const logits = outputs.logits!.data as Float32Array;
    const vocab = outputs.logits!.dims.at(-1)!;
    const finished: number[] = [];
    this.rows.forEach((row, r) => {
      row.decodeSteps++;
      const next = row.answer.next(logits.slice(r * vocab, (r + 1) * vocab));
      if (next === null) {
        row.resolve(resultOf(model, row.image, row.prefilled, row.answer, performance.now() - row.decodeStart, row.decodeSteps));
        finished.push(r);
      } else {
        row.token = next;
      }
    });
    if (finished.length) this.keepRows(this.rows.map((_, r) => r).filter((r) => !finished.includes(r)));
  }

  /** Rows whose request was cancelled leave now, each rejected with an AbortError. */
  private dropCancelled(): void {
    for (const row of this.joining.filter((r) => r.options.signal?.aborted)) row.reject(abortError());
    this.joining = this.joining.filter((r) => !r.options.signal?.aborted);
    const keep = this.rows.map((_, r) => r).filter((r) => !this.rows[r]!.options.signal?.aborted);
    for (const row of this.rows.filter((r) => r.options.signal?.aborted)) row.reject(abortError());
    if (keep.length !== this.rows.length) this.keepRows(keep);
  }

  /** Moves waiting rows into the batch, up to maxBatch, left-padding everyone to the longest. */
  private admit(): void {
    const room = this.maxBatch - this.rows.length;
    if (room <= 0 || !this.joining.length) return;
    const joiners = this.joining.splice(0, room);
    const oldSlots = this.cache?.kv.length ?? 0;
    const slots = Math.max(oldSlots, ...joiners.map((j) => j.ownCache!.length));
    const rowLength = (r: number) => (r < this.rows.length ? oldSlots - this.cache!.padding[r]! : joiners[r - this.rows.length]!.ownCache!.length);
    const total = this.rows.length + joiners.length;
    const padding = Array.from({ length: total }, (_, r) => slots - rowLength(r));
    const data = new Map<string, CacheData>();
    for (const name of joiners[0]!.ownCache!.names) {
      const sample = joiners[0]!.ownCache!.data(name);
      const merged = sample instanceof Uint16Array ? new Uint16Array(total * this.kvHeads * slots * this.headDim) : new Float32Array(total * this.kvHeads * slots * this.headDim);
      for (let r = 0; r < total; r++) {
        // Source: the batch's row r, or a joiner's own [1, kv, length, head_dim] cache.
        const source = r < this.rows.length ? this.cache!.kv.data(name) : joiners[r - this.rows.length]!.ownCache!.data(name);
        const sourceRow = r < this.rows.length ? r : 0;
        const sourceSlots = r < this.rows.length ? oldSlots : rowLength(r);
        const sourcePad = r < this.rows.length ? this.cache!.padding[r]! : 0;
        this.copyRow(source, sourceRow, sourceSlots, sourcePad, merged, r, slots, padding[r]!, rowLength(r));
      }
      data.set(name, merged);
    }
    for (const joiner of joiners) delete joiner.ownCache;
    this.rows.push(...joiners);
    this.cache = { kv: KvCache.adopt(this.model, total, slots, data), padding };
  }

  /** Keeps only `kept` rows, dropping the padding columns that every remaining row has. */
  private keepRows(kept: number[]): void {
    const old = this.cache!;
    this.rows = kept.map((r) => this.rows[r]!);
    if (!kept.length) {
      this.cache = null;
      return;
    }
    const trim = Math.min(...kept.map((r) => old.padding[r]!));
    const oldSlots = old.kv.length;
    const slots = oldSlots - trim;
    const padding = kept.map((r) => old.padding[r]! - trim);
    const data = new Map<string, CacheData>();
    for (const name of old.kv.names) {
      const source = old.kv.data(name);
      const target = source instanceof Uint16Array ? new Uint16Array(kept.length * this.kvHeads * slots * this.headDim) : new Float32Array(kept.length * this.kvHeads * slots * this.headDim);
      kept.forEach((r, i) => this.copyRow(source, r, oldSlots, old.padding[r]!, target, i, slots, padding[i]!, oldSlots - old.padding[r]!));
      data.set(name, target);
    }
    this.cache = { kv: KvCache.adopt(this.model, kept.length, slots, data), padding };
  }

  /** Copies one row's `length` valid slots per head, from after its padding in the source to after its padding in the target. */
  private copyRow(source: CacheData, sourceRow: number, sourceSlots: number, sourcePad: number, target: CacheData, targetRow: number, targetSlots: number, targetPad: number, length: number): void {
    const d = this.headDim;
    for (let h = 0; h < this.kvHeads; h++) {
      const from = ((sourceRow * this.kvHeads + h) * sourceSlots + sourcePad) * d;
      const to = ((targetRow * this.kvHeads + h) * targetSlots + targetPad) * d;
      target.set(source.subarray(from, from + length * d), to);
    }
  }
}
