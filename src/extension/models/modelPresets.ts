/** Models the picker offers: Google's checkpoints (gated: licence on the hub) and onnx-community exports. */
export interface ModelPreset {
  repo: string;
  label: string;
  generation: 1 | 2;
  resolution: number;
  /** Approximate download size. */
  size: string;
  license: string;
  /** Google's checkpoints need the licence accepted on huggingface.co and a token. */
  gated: boolean;
  /** The branch to fetch; main when absent. */
  revision?: string;
  /** Files to fetch (globs over the repo's paths); everything when absent. */
  include?: RegExp;
}

const CHECKPOINT_FILES = /^(config\.json|generation_config\.json|preprocessor_config\.json|special_tokens_map\.json|tokenizer\.json|tokenizer_config\.json|model.*\.safetensors(\.index\.json)?)$/;

// PaliGemma 1's main branches hold float32 weights (11.7 GB); their `bfloat16` branches hold the same
// weights in the dtype they were trained in, which conversion reads exactly. PaliGemma 2 ships bfloat16.
export const MODEL_PRESETS: ModelPreset[] = [
  { repo: 'google/paligemma-3b-mix-224', revision: 'bfloat16', label: 'PaliGemma 3B mix 224', generation: 1, resolution: 224, size: '5.9 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  { repo: 'google/paligemma-3b-mix-448', revision: 'bfloat16', label: 'PaliGemma 3B mix 448', generation: 1, resolution: 448, size: '5.9 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  { repo: 'google/paligemma-3b-pt-896', revision: 'bfloat16', label: 'PaliGemma 3B pt 896', generation: 1, resolution: 896, size: '5.9 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  { repo: 'google/paligemma2-3b-mix-224', label: 'PaliGemma 2 3B mix 224', generation: 2, resolution: 224, size: '6.1 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  { repo: 'google/paligemma2-3b-mix-448', label: 'PaliGemma 2 3B mix 448', generation: 2, resolution: 448, size: '6.1 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  { repo: 'google/paligemma2-3b-ft-docci-448', label: 'PaliGemma 2 3B ft DOCCI 448 (long captions)', generation: 2, resolution: 448, size: '6.1 GB', license: 'Gemma', gated: true, include: CHECKPOINT_FILES },
  {
    repo: 'onnx-community/paligemma2-3b-ft-docci-448', label: 'PaliGemma 2 DOCCI 448, ONNX (q4)', generation: 2, resolution: 448, size: '2.3 GB', license: 'Gemma', gated: false,
    include: /^(config\.json|generation_config\.json|preprocessor_config\.json|special_tokens_map\.json|tokenizer\.json|tokenizer_config\.json|onnx\/(vision_encoder|embed_tokens|decoder_model_merged)_q4\.onnx(_data)?)$/,
  },
  {
    repo: 'Xenova/paligemma-3b-mix-224', label: 'PaliGemma 3B mix 224, ONNX (q4)', generation: 1, resolution: 224, size: '2.4 GB', license: 'Gemma', gated: false,
    include: /^(config\.json|generation_config\.json|preprocessor_config\.json|special_tokens_map\.json|tokenizer\.json|tokenizer_config\.json|onnx\/(vision_encoder|embed_tokens|decoder_model_merged)_q4\.onnx(_data)?)$/,
  },
];
