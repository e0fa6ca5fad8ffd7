/**
 * PaliGemma's prefix-LM mask as an additive bias for our masked decoder: a query at absolute position i sees
 * key j when j <= i (causal), or when both lie in the prefix (image + <bos> + prompt + "\n", bidirectional).
 */
import { MASKED_BIAS } from '../onnx/decoderGraph.js';

/** [queryLength, queryStart + queryLength] bias for queries queryStart.. over all keys so far. */
export function prefixLmBias(prefixLength: number, queryStart: number, queryLength: number): Float32Array {
  const total = queryStart + queryLength;
  const bias = new Float32Array(queryLength * total);
  for (let s = 0; s < queryLength; s++) {
    const i = queryStart + s;
    for (let j = i + 1; j < total; j++) {
      if (!(i < prefixLength && j < prefixLength)) bias[s * total + j] = MASKED_BIAS;
    }
  }
  return bias;
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
export function paddedPrefixLmBias(rows: PaddedRow[], queryStart: number, queryLength: number): Float32Array {
  const total = queryStart + queryLength;
  const bias = new Float32Array(rows.length * queryLength * total);
  rows.forEach((row, r) => {
    const prefixEnd = row.padding + row.prefixLength;
    for (let s = 0; s < queryLength; s++) {
      const i = queryStart + s;
      for (let j = 0; j < total; j++) {
        const visible = i < row.padding ? j === i : j >= row.padding && (j <= i || (i < prefixEnd && j < prefixEnd));
        if (!visible) bias[(r * queryLength + s) * total + j] = MASKED_BIAS;
      }
    }
  });
  return bias;
}
