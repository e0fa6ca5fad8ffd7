/**
 * Runs the Gemma decoder one chunk at a time with its KV cache. The first call (the prefill) takes the whole
 * prefix, which the graph attends bidirectionally; later calls take one token each, which attend causally.
 */
import type * as ort from 'onnxruntime-node';
import { f32ToF16 } from '../checkpoint/floatFormats.js';
import type { PaliGemmaModel } from '../model.js';
import { maskFeeds } from './prefixLmMask.js';
import { tensor } from '../runtime/onnxRuntime.js';
import { KvCache } from './kvCache.js';

/**
 * An empty cache for one sequence, with room for `reserveSlots` positions (the prefix plus the longest
 * answer), allocated once.
 */
export function emptyCache(model: PaliGemmaModel, reserveSlots = 0): KvCache {
  return new KvCache(model, 1, reserveSlots);
}

export interface DecoderStep {
  /** Logits of the chunk's last position, float32 [vocab]. */
  logits: Float32Array;
  /** The cache passed in, extended in place by the chunk. */
  cache: KvCache;
}

/**
 * Runs `embeds` ([sequenceLength, hidden], float32) after `cache`. Positions are PaliGemma's: the cache
 * position plus one. `prefixLength` is where the bidirectional prefix ends; the merged layout graph
 * has no mask, so with it a chunk must be the whole prefix or lie wholly after it.
 */
export async function runDecoder(
  model: PaliGemmaModel,
  embeds: Float32Array,
  sequenceLength: number,
  cache: KvCache,
  prefixLength: number,
): Promise<DecoderStep> {
  const hidden = model.config.text.hidden_size;
  const positions = new BigInt64Array(sequenceLength);
  for (let s = 0; s < sequenceLength; s++) positions[s] = BigInt(cache.length + s + 1);
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: model.decoderActivations === 'float16'
      ? tensor('float16', f32ToF16(embeds), [1, sequenceLength, hidden])
      : tensor('float32', embeds, [1, sequenceLength, hidden]),
    position_ids: tensor('int64', positions, [1, sequenceLength]),
    ...cache.feeds(),
  };
  if (model.maskedDecoder) {
    const sliding = model.sessions.decoder.inputNames.includes('sliding_attention_bias') ? model.config.text.sliding_window : null;
    Object.assign(feeds, maskFeeds(prefixLength, cache.length, sequenceLength, sliding));
  } else if (sequenceLength > 1 && cache.length < prefixLength && cache.length + sequenceLength !== prefixLength) {
    throw new Error('the merged decoder can only run the whole prefix, or chunks after it');
  }
  const outputs = await model.sessions.decoder.run(feeds, ['logits', ...KvCache.outputsOf(model.sessions.decoder)]);
  cache.absorb(outputs, sequenceLength);
  const logitsTensor = outputs.logits!;
  const vocab = logitsTensor.dims.at(-1)!;
  const rows = logitsTensor.dims.at(-2)!;
  // Copy into a V8-owned array: the last row only, whatever the graph returned.
  const data = logitsTensor.data as Float32Array;
  const logits = new Float32Array(data.subarray((rows - 1) * vocab, rows * vocab));
  return { logits, cache };
}
