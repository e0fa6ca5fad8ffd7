/**
 * PaliGemma's components, in one table: each one's file in the onnx-community layout that transformers.js
 * loads (with its dtype suffixes, plus our masked decoder beside them), the weights it stores for a model
 * dtype, and the builder of its graph. Conversion writes what this table says and loading finds it here.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.js';
import type { ModelDtype } from '../../common/dtypes.js';
import type { GraphBuilder } from '../onnx/graphBuilder.js';
import type { WeightDtype } from '../onnx/layers.js';
import type { WeightStore } from '../onnx/weightStore.js';
import { buildDecoder, buildEmbedTokens } from './gemmaDecoder.js';
import { buildVisionEncoder } from './visionTower.js';

export type { ModelDtype };
export type Component = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged' | 'decoder_model_masked';

interface ComponentSpec {
  /** The weights the component stores for a model dtype. */
  dtype: (model: ModelDtype) => WeightDtype;
  build: (checkpoint: Checkpoint, store: WeightStore, dtype: WeightDtype, vocabSize: number) => GraphBuilder;
}

/**
 * The decoder's linear layers and LM head take the model's dtype. With int4 the vision tower is 8-bit
 * (MatMulNBits, blocks of 32): on paligemma-3b-224 its weights take 0.49 GB instead of 1.66 GB, for image
 * features at cosine 0.99985 of float32's (`npm run bench:fidelity`). The embedding table stays float32:
 * it is read a row at a time from disk and costs no memory.
 */
export const COMPONENTS: Record<Component, ComponentSpec> = {
  vision_encoder: {
    dtype: (model) => (model === 'int4' ? 'q8' : model === 'int8' ? 'int8' : 'fp32'),
    build: (checkpoint, store, dtype) => buildVisionEncoder(checkpoint, store, dtype),
  },
  embed_tokens: {
    dtype: () => 'fp32',
    build: (checkpoint, store, dtype, vocabSize) => buildEmbedTokens(checkpoint, store, vocabSize, dtype),
  },
  decoder_model_merged: {
    dtype: (model) => model,
    build: (checkpoint, store, dtype, vocabSize) => buildDecoder(checkpoint, store, 'merged', dtype, vocabSize),
  },
  decoder_model_masked: {
    dtype: (model) => model,
    build: (checkpoint, store, dtype, vocabSize) => buildDecoder(checkpoint, store, 'masked', dtype, vocabSize),
  },
};

/** Components written with one weight store: the two decoders share theirs (the first one's data file). */
export const WEIGHT_GROUPS: readonly Component[][] = [['vision_encoder'], ['embed_tokens'], ['decoder_model_merged', 'decoder_model_masked']];

/** transformers.js's file suffix for each weight precision ('_quantized' is what it loads for 'q8'). */
export const WEIGHT_SUFFIX: Record<WeightDtype, string> = { fp32: '', fp16: '_fp16', int4: '_q4', q8: '_quantized', int8: '_int8' };

export function componentDtype(component: Component, dtype: ModelDtype): WeightDtype {
  return COMPONENTS[component].dtype(dtype);
}

export function componentFile(component: Component, dtype: ModelDtype): string {
  return componentFileAt(component, componentDtype(component, dtype));
}

/** A component's file when it stores `weight`. */
export function componentFileAt(component: Component, weight: WeightDtype): string {
  return `onnx/${component}${WEIGHT_SUFFIX[weight]}.onnx`;
}
