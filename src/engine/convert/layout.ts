/**
 * File names of the onnx-community layout that transformers.js loads, with its dtype suffixes, plus our
 * masked decoder beside them.
 */
import type { ModelDtype } from '../../common/dtypes.js';

export type { ModelDtype };
export type Component = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged' | 'decoder_model_masked';

export const DTYPE_SUFFIX: Record<ModelDtype, string> = { fp32: '', fp16: '_fp16', int4: '_q4' };

/** Only the decoder's linear layers and LM head are quantized; the other graphs stay in float32. */
export function componentDtype(component: Component, dtype: ModelDtype): ModelDtype {
  return component === 'decoder_model_merged' || component === 'decoder_model_masked' ? dtype : 'fp32';
}

export function componentFile(component: Component, dtype: ModelDtype): string {
  return `onnx/${component}${DTYPE_SUFFIX[componentDtype(component, dtype)]}.onnx`;
}


