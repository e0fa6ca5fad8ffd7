/**
 * PaliGemma's attention masks, all in one place: as additive biases that the engine builds for our masked
 * decoder, and as the merged (transformers.js layout) graph computes its window itself. Built as newest HF
 * builds them:
 * - full attention: a query at absolute position i sees key j when j <= i (causal), or when both lie in the
 *   prefix (image + <bos> + prompt + "\n", bidirectional);
 * - Gemma 2's sliding-window layers: or(and(causal, window), prefix block). Outside the prefix block a
 *   key must also lie inside the window (j > i - window); pairs inside the prefix attend both ways whatever
 *   their distance, so at 896 px the last prefix tokens still see the first image patches.
 */
import type * as ort from 'onnxruntime-node';
import type { GraphBuilder } from '../onnx/graphBuilder.js';
import { tensor } from '../runtime/onnxRuntime.js';

/** What masked attention adds; finite so that masked rows never produce NaN. */
export const MASKED_BIAS = -1e9;

/** The sliding window in tokens, or null for full attention. */
export type Window = number | null;

function visible(i: number, j: number, prefixEnd: number, window: Window): boolean {
  if (i < prefixEnd && j < prefixEnd) return true;
  return j <= i && (window === null || i - j < window);
}

/** [queryLength, queryStart + queryLength] bias for queries queryStart.. over all keys so far. */
export function prefixLmBias(prefixLength: number, queryStart: number, queryLength: number, window: Window = null): Float32Array {
  return paddedPrefixLmBias([{ padding: 0, prefixLength }], queryStart, queryLength, window);
}

export interface PaddedRow {
  /** Left padding of this row: its first `padding` slots hold no token. */
  padding: number;
  /** Length of this row's prefix, padding excluded. */
  prefixLength: number;
}

/**
 * [rows, 1, queryLength, total] bias for a left-padded batch: each row is PaliGemma's prefix-LM mask shifted
 * by its padding, and no query sees a padding slot (padding queries see themselves, so no row is empty).
 */
export function paddedPrefixLmBias(rows: PaddedRow[], queryStart: number, queryLength: number, window: Window = null): Float32Array {
  const total = queryStart + queryLength;
  const bias = new Float32Array(rows.length * queryLength * total);
  rows.forEach((row, r) => {
    const prefixEnd = row.padding + row.prefixLength;
    for (let s = 0; s < queryLength; s++) {
      const i = queryStart + s;
      for (let j = 0; j < total; j++) {
        const seen = i < row.padding ? j === i : j >= row.padding && visible(i, j, prefixEnd, window);
        if (!seen) bias[(r * queryLength + s) * total + j] = MASKED_BIAS;
      }
    }
  });
  return bias;
}

/**
 * The masked decoder's mask inputs for queries queryStart.. of one sequence: `attention_bias`, and
 * `sliding_attention_bias` when the graph has Gemma 2's sliding layers.
 */
export function maskFeeds(prefixLength: number, queryStart: number, queryLength: number, slidingWindow: Window): Record<string, ort.Tensor> {
  const shape = [1, 1, queryLength, queryStart + queryLength];
  const feeds: Record<string, ort.Tensor> = { attention_bias: tensor('float32', prefixLmBias(prefixLength, queryStart, queryLength), shape) };
  if (slidingWindow !== null) feeds.sliding_attention_bias = tensor('float32', prefixLmBias(prefixLength, queryStart, queryLength, slidingWindow), shape);
  return feeds;
}

/**
 * The merged graph's window: query i = past + s may not see key j when i - j >= W, unless the chunk starts
 * the cache (past = 0). That chunk is the whole prefix, which attends both ways whatever the distance.
 */
export function slidingWindowInGraph(g: GraphBuilder, embeds: string, pastKey: string, window: number): string {
  const scalarAt = (shapeOf: string, axis: number) =>
    g.op('Squeeze', [g.op('Slice', [g.op('Shape', [shapeOf]), g.int64s([axis]), g.int64s([axis + 1])]), g.int64s([0])]);
  const past = scalarAt(pastKey, 2);
  const total = g.op('Add', [past, scalarAt(embeds, 1)]);
  const one = g.scalar(1, 'int64');
  const queryPositions = g.op('Unsqueeze', [g.op('Range', [past, total, one]), g.int64s([1])]);
  const keyPositions = g.op('Unsqueeze', [g.op('Range', [g.scalar(0, 'int64'), total, one]), g.int64s([0])]);
  const distance = g.op('Sub', [queryPositions, keyPositions]);
  const afterPrefix = g.op('Greater', [past, g.scalar(0, 'int64')]);
  const outside = g.op('And', [g.op('GreaterOrEqual', [distance, g.scalar(window, 'int64')]), afterPrefix]);
  return g.op('Where', [outside, g.scalar(MASKED_BIAS), g.scalar(0)]);
}
