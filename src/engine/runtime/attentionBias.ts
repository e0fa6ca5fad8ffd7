/**
 * PaliGemma's attention masks as additive biases for our masked decoder, built as newest HF builds them:
 * - full attention: a query at absolute position i sees key j when j <= i (causal), or when both lie in the
 *   prefix (image + <bos> + prompt + "\n", bidirectional);
 * - Gemma 2's sliding-window layers: or(and(causal, window), prefix block). Outside the prefix block a
 *   key must also lie inside the window (j > i - window); pairs inside the prefix attend both ways whatever
 *   their distance, so at 896 px the last prefix tokens still see the first image patches.
 */
import { MASKED_BIAS } from '../onnx/decoderGraph.js';

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
