/**
 * The decoder's KV cache, held in buffers the engine owns and grows in place.
 *
 * Our masked decoder graph returns only the keys and values of the chunk it ran (`chunk_key_values.*`),
 * and the engine appends them here. Before, every step returned the whole cache (`present.*`): at 448 px
 * that is 36 MB of new ArrayBuffers per token, which onnxruntime-node copies out of ONNX Runtime, and V8's
 * external-memory pressure then ran a scavenge and a mark-compact nearly every step (60-100 ms of a
 * 240 ms step, measured with --trace-gc). Graphs of the onnx-community layout (ONNX exports, the merged
 * decoder) still return `present.*`; the cache then takes that whole.
 *
 * Each tensor is [rows, kv_heads, length, head_dim], packed, so that a prefix of the buffer is the input
 * the graph takes with no copy. Appending moves each (row, head) block to its longer stride, last block
 * first; with one row and one KV head (PaliGemma 1) nothing moves.
 */
import type * as ort from 'onnxruntime-node';
import type { PaliGemmaModel } from '../model.js';
import { tensor } from '../runtime/onnxRuntime.js';

export type CacheData = Float32Array | Uint16Array;
type CacheKind = 'float32' | 'float16';

/** Past inputs of the decoder graph, in the onnx-community naming. */
const pastName = (layer: number, kind: 'key' | 'value') => `past_key_values.${layer}.${kind}`;
/** Outputs of our masked graph: the chunk's own keys and values. */
export const chunkName = (layer: number, kind: 'key' | 'value') => `chunk_key_values.${layer}.${kind}`;
/** Outputs of the onnx-community layout: the whole cache after the chunk. */
const presentName = (layer: number, kind: 'key' | 'value') => `present.${layer}.${kind}`;

/** Growth beyond what was reserved: room for a quarter more, so that appends rarely reallocate. */
const GROWTH = 1.25;

/** One cache tensor: `blocks` = rows * kv_heads blocks of `length` slots of `slotSize` numbers. */
class GrowingBlocks {
  private data: CacheData;
  length = 0;

  constructor(private readonly kind: CacheKind, private readonly blocks: number, private readonly slotSize: number, reserveSlots: number) {
    this.data = this.allocate(reserveSlots);
  }

  view(): CacheData {
    return this.data.subarray(0, this.blocks * this.length * this.slotSize);
  }

  /** Appends `slots` slots to every block from `chunk`, [blocks, slots, slotSize]. */
  append(chunk: CacheData, slots: number): void {
    const d = this.slotSize;
    const oldLength = this.length;
    const newLength = oldLength + slots;
    if (this.blocks * newLength * d > this.data.length) {
      const grown = this.allocate(Math.ceil(newLength * GROWTH));
      for (let b = 0; b < this.blocks; b++) grown.set(this.data.subarray(b * oldLength * d, (b + 1) * oldLength * d), b * newLength * d);
      this.data = grown;
    } else {
      // Destinations lie after their sources, so moving the last block first never overwrites one unmoved.
      for (let b = this.blocks - 1; b >= 1; b--) this.data.copyWithin(b * newLength * d, b * oldLength * d, (b + 1) * oldLength * d);
    }
    for (let b = 0; b < this.blocks; b++) this.data.set(chunk.subarray(b * slots * d, (b + 1) * slots * d), b * newLength * d + oldLength * d);
    this.length = newLength;
  }

  /** Takes `data`, [blocks, length, slotSize], as the whole tensor (a graph that returns `present.*`). */
  replace(data: CacheData, length: number): void {
    this.data = data;
    this.length = length;
  }

  private allocate(slots: number): CacheData {
    const size = this.blocks * slots * this.slotSize;
    return this.kind === 'float16' ? new Uint16Array(size) : new Float32Array(size);
  }
}

export class KvCache {
  private readonly tensors = new Map<string, GrowingBlocks>();
  private readonly kind: CacheKind;
  private readonly kvHeads: number;
  private readonly headDim: number;

  /**
   * An empty cache for `rows` sequences. `reserveSlots` is the length it is expected to reach (prefix plus
   * answer), allocated once up front.
   */
  constructor(model: PaliGemmaModel, readonly rows = 1, reserveSlots = 0) {
    const { num_hidden_layers: layers, num_key_value_heads: kvHeads, head_dim: headDim } = model.config.text;
    this.kind = model.decoderActivations;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    for (let i = 0; i < layers; i++) {
      for (const kind of ['key', 'value'] as const) this.tensors.set(pastName(i, kind), new GrowingBlocks(this.kind, rows * kvHeads, headDim, reserveSlots));
    }
  }

  /**
   * A cache that takes `data` (past_key_values.* -> [rows, kv_heads, length, head_dim]) as it is, with no
   * copy: the batch decoder builds one whenever rows join or leave. The first append then reallocates.
   */
  static adopt(model: PaliGemmaModel, rows: number, length: number, data: ReadonlyMap<string, CacheData>): KvCache {
    const cache = new KvCache(model, rows, 0);
    for (const [name, blocks] of cache.tensors) {
      const source = data.get(name);
      if (!source) throw new Error(`the KV cache has no ${name}`);
      blocks.replace(source, length);
    }
    return cache;
  }

  /** Slots per row. */
  get length(): number {
    return this.tensors.values().next().value?.length ?? 0;
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }

  /** The cache as [rows, kv_heads, length, head_dim] data, a view that the next append may overwrite. */
  data(name: string): CacheData {
    const blocks = this.tensors.get(name);
    if (!blocks) throw new Error(`the KV cache has no ${name}`);
    return blocks.view();
  }

  /** The decoder's past_key_values.* inputs: views of the cache, no copy. */
  feeds(): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.tensors.keys()) feeds[name] = tensor(this.kind, this.data(name), [this.rows, this.kvHeads, this.length, this.headDim]);
    return feeds;
  }

  /**
   * The outputs to fetch from `session` besides the logits: the chunk's keys and values where the graph
   * returns them, else the whole `present.*` cache.
   */
  static outputsOf(session: ort.InferenceSession): string[] {
    const chunk = session.outputNames.filter((name) => name.startsWith('chunk_key_values.'));
    return chunk.length ? chunk : session.outputNames.filter((name) => name.startsWith('present.'));
  }

  /** Adds a decoder run's outputs for a chunk of `chunkLength` positions. */
  absorb(outputs: ort.InferenceSession.OnnxValueMapType, chunkLength: number): void {
    const total = this.length + chunkLength;
    this.tensors.forEach((blocks, name) => {
      const [, layer, kind] = name.split('.') as [string, string, 'key' | 'value'];
      const chunk = outputs[chunkName(Number(layer), kind)];
      if (chunk) {
        blocks.append(chunk.data as CacheData, chunkLength);
        return;
      }
      const present = outputs[presentName(Number(layer), kind)];
      if (!present) throw new Error(`the decoder returned neither ${chunkName(Number(layer), kind)} nor ${presentName(Number(layer), kind)}`);
      blocks.replace(present.data as CacheData, total);
    });
  }
}
