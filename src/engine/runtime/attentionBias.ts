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
