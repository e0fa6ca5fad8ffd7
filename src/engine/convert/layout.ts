/**
 * File names of the onnx-community layout that transformers.js loads, with its dtype suffixes, plus our
 * masked decoder beside them.
 */
import type { ModelDtype } from '../../common/dtypes.js';
import type { WeightDtype } from '../onnx/layers.js';

export type { ModelDtype };
export type Component = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged' | 'decoder_model_masked';

/** transformers.js's file suffix for each weight precision ('_quantized' is what it loads for 'q8'). */
export const WEIGHT_SUFFIX: Record<WeightDtype, string> = { fp32: '', fp16: '_fp16', int4: '_q4', int8: '_quantized' };

/**
 * The weights each component stores for a model dtype. The decoder's linear layers and LM head take the
 * dtype. With int4 the vision tower is 8-bit (MatMulNBits, blocks of 32): on paligemma-3b-224 its
 * weights take 0.49 GB instead of 1.66 GB, for image features at cosine 0.99985 of float32's
 * (`npm run bench:fidelity`). The embedding table stays float32: it is read a row at a time from disk and
 * costs no memory.
 */
export function componentDtype(component: Component, dtype: ModelDtype): WeightDtype {
  if (component === 'decoder_model_merged' || component === 'decoder_model_masked') return dtype;
  if (component === 'vision_encoder' && dtype === 'int4') return 'int8';
  return 'fp32';
}

export function componentFile(component: Component, dtype: ModelDtype): string {
  return `onnx/${component}${WEIGHT_SUFFIX[componentDtype(component, dtype)]}.onnx`;
}
