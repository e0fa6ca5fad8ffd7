/**
 * PaliGemma's config.json, with the defaults of HF transformers' config classes applied to every field a real
 * checkpoint may leave out (PaliGemmaConfig, SiglipVisionConfig, GemmaConfig, Gemma2Config).
 * google/paligemma-3b-* has no `head_dim` and no `image_size` in its 224 configs, for instance.
 */
import { UserError } from '../../common/errors.js';

export interface VisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  /** Output width of the multi-modal projector: PaliGemmaConfig.projection_dim. */
  projection_dim: number;
}

export type TextModelType = 'gemma' | 'gemma2';
export type LayerType = 'full_attention' | 'sliding_attention';

export interface TextConfig {
  model_type: TextModelType;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  hidden_activation: string;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  /** Gemma 2 only; null for Gemma 1. */
  query_pre_attn_scalar: number | null;
  attn_logit_softcapping: number | null;
  final_logit_softcapping: number | null;
  sliding_window: number | null;
  layer_types: LayerType[];
}

export interface PaliGemmaConfig {
  /** 1 for Gemma-based checkpoints, 2 for Gemma 2. */
  generation: 1 | 2;
  image_token_index: number;
  projection_dim: number;
  bos_token_id: number;
  eos_token_ids: number[];
  pad_token_id: number;
  vision: VisionConfig;
  text: TextConfig;
  /** The text tokens an image becomes: (image_size / patch_size)^2. */
  num_image_tokens: number;
  /** The config.json as read, for writing back into converted folders. */
  raw: Record<string, unknown>;
}

export type Json = Record<string, unknown>;

const SIGLIP_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 16,
  hidden_act: 'gelu_pytorch_tanh',
  layer_norm_eps: 1e-6,
};

/** PaliGemmaConfig builds this SiglipVisionConfig when vision_config is absent altogether. */
const PALIGEMMA_VISION_WHEN_ABSENT = {
  intermediate_size: 4096,
  hidden_size: 1152,
  patch_size: 14,
  image_size: 224,
  num_hidden_layers: 27,
  num_attention_heads: 16,
};

const GEMMA_DEFAULTS = {
  vocab_size: 256000,
  hidden_size: 3072,
  intermediate_size: 24576,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 16,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
};

const GEMMA2_DEFAULTS = {
  vocab_size: 256000,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: 30.0,
  attn_logit_softcapping: 50.0,
};

/** PaliGemmaConfig builds this GemmaConfig when text_config is absent altogether. */
const PALIGEMMA_TEXT_WHEN_ABSENT = {
  hidden_size: 2048,
  num_hidden_layers: 18,
  intermediate_size: 16384,
  num_attention_heads: 8,
  num_key_value_heads: 1,
};

const SUPPORTED_ACTIVATIONS = new Set(['gelu_pytorch_tanh', 'gelu']);

function pick<T>(source: Json, key: string, fallback: T): T {
  const value = source[key];
  return value === undefined || value === null ? fallback : (value as T);
}

/** A size (layers, heads, widths): a whole number of at least 1, or the config cannot describe a model. */
function size(source: Json, key: string, fallback: number, section: string): number {
  const value = pick<unknown>(source, key, fallback);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new UserError(`config.json: ${section}.${key} must be a whole number of at least 1, not ${JSON.stringify(value)}`);
  }
  return value;
}

function readVision(raw: Json | undefined, projectionDim: number): VisionConfig {
  const source = raw ?? PALIGEMMA_VISION_WHEN_ABSENT;
  const modelType = pick(source, 'model_type', 'siglip_vision_model');
  if (modelType !== 'siglip_vision_model') {
    throw new UserError(`vision_config.model_type "${String(modelType)}" is not supported: PaliGemma uses SigLIP`);
  }
  const vision: VisionConfig = {
    hidden_size: size(source, 'hidden_size', SIGLIP_DEFAULTS.hidden_size, 'vision_config'),
    intermediate_size: size(source, 'intermediate_size', SIGLIP_DEFAULTS.intermediate_size, 'vision_config'),
    num_hidden_layers: size(source, 'num_hidden_layers', SIGLIP_DEFAULTS.num_hidden_layers, 'vision_config'),
    num_attention_heads: size(source, 'num_attention_heads', SIGLIP_DEFAULTS.num_attention_heads, 'vision_config'),
    num_channels: size(source, 'num_channels', SIGLIP_DEFAULTS.num_channels, 'vision_config'),
    image_size: size(source, 'image_size', SIGLIP_DEFAULTS.image_size, 'vision_config'),
    patch_size: size(source, 'patch_size', SIGLIP_DEFAULTS.patch_size, 'vision_config'),
    hidden_act: pick(source, 'hidden_act', SIGLIP_DEFAULTS.hidden_act),
    layer_norm_eps: pick(source, 'layer_norm_eps', SIGLIP_DEFAULTS.layer_norm_eps),
    projection_dim: projectionDim,
  };
  if (vision.hidden_size % vision.num_attention_heads !== 0) {
    throw new UserError(`config.json: vision_config.hidden_size ${vision.hidden_size} does not split into ${vision.num_attention_heads} attention heads`);
  }
  if (vision.image_size % vision.patch_size !== 0) {
    throw new UserError(`vision_config.image_size ${vision.image_size} is not a multiple of patch_size ${vision.patch_size}`);
  }
  // vision_use_head may be true: HF then builds SigLIP's pooling head and loads its weights, but PaliGemma
  // reads the last hidden state, never the pooled output. We ignore the head and its weights alike.
  return vision;
}

function ropeTheta(source: Json, fallback: number): number {
  const rope = source.rope_parameters as Json | undefined;
  if (rope && typeof rope.rope_theta === 'number') {
    if (rope.rope_type !== undefined && rope.rope_type !== 'default') {
      throw new UserError(`text_config.rope_parameters.rope_type "${String(rope.rope_type)}" is not supported`);
    }
    return rope.rope_theta;
  }
  return pick(source, 'rope_theta', fallback);
}

function readText(raw: Json | undefined): TextConfig {
  const source = raw ?? { model_type: 'gemma', ...PALIGEMMA_TEXT_WHEN_ABSENT };
  const modelType = pick(source, 'model_type', 'gemma');
  if (modelType === 'gemma') {
    // GemmaConfig: hidden_activation wins over hidden_act when set; both default to the tanh GELU.
    const activation = pick(source, 'hidden_activation', pick(source, 'hidden_act', GEMMA_DEFAULTS.hidden_act));
    const layers = size(source, 'num_hidden_layers', GEMMA_DEFAULTS.num_hidden_layers, 'text_config');
    return validateText({
      model_type: 'gemma',
      vocab_size: size(source, 'vocab_size', GEMMA_DEFAULTS.vocab_size, 'text_config'),
      hidden_size: size(source, 'hidden_size', GEMMA_DEFAULTS.hidden_size, 'text_config'),
      intermediate_size: size(source, 'intermediate_size', GEMMA_DEFAULTS.intermediate_size, 'text_config'),
      num_hidden_layers: layers,
      num_attention_heads: size(source, 'num_attention_heads', GEMMA_DEFAULTS.num_attention_heads, 'text_config'),
      num_key_value_heads: size(source, 'num_key_value_heads', GEMMA_DEFAULTS.num_key_value_heads, 'text_config'),
      head_dim: size(source, 'head_dim', GEMMA_DEFAULTS.head_dim, 'text_config'),
      hidden_activation: activation,
      rms_norm_eps: pick(source, 'rms_norm_eps', GEMMA_DEFAULTS.rms_norm_eps),
      rope_theta: ropeTheta(source, GEMMA_DEFAULTS.rope_theta),
      max_position_embeddings: size(source, 'max_position_embeddings', GEMMA_DEFAULTS.max_position_embeddings, 'text_config'),
      query_pre_attn_scalar: null,
      attn_logit_softcapping: null,
      final_logit_softcapping: null,
      sliding_window: null,
      layer_types: Array.from({ length: layers }, () => 'full_attention' as const),
    });
  }
  if (modelType === 'gemma2') {
    const layers = size(source, 'num_hidden_layers', GEMMA2_DEFAULTS.num_hidden_layers, 'text_config');
    // Gemma2Config: layer i slides when (i + 1) is odd, i.e. layers 0, 2, 4, ... unless layer_types is given.
    const layerTypes = pick<LayerType[] | null>(source, 'layer_types', null) ??
      Array.from({ length: layers }, (_, i) => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention') as LayerType);
    return validateText({
      model_type: 'gemma2',
      vocab_size: size(source, 'vocab_size', GEMMA2_DEFAULTS.vocab_size, 'text_config'),
      hidden_size: size(source, 'hidden_size', GEMMA2_DEFAULTS.hidden_size, 'text_config'),
      intermediate_size: size(source, 'intermediate_size', GEMMA2_DEFAULTS.intermediate_size, 'text_config'),
      num_hidden_layers: layers,
      num_attention_heads: size(source, 'num_attention_heads', GEMMA2_DEFAULTS.num_attention_heads, 'text_config'),
      num_key_value_heads: size(source, 'num_key_value_heads', GEMMA2_DEFAULTS.num_key_value_heads, 'text_config'),
      head_dim: size(source, 'head_dim', GEMMA2_DEFAULTS.head_dim, 'text_config'),
      hidden_activation: pick(source, 'hidden_activation', GEMMA2_DEFAULTS.hidden_activation),
      rms_norm_eps: pick(source, 'rms_norm_eps', GEMMA2_DEFAULTS.rms_norm_eps),
      rope_theta: ropeTheta(source, GEMMA2_DEFAULTS.rope_theta),
      max_position_embeddings: size(source, 'max_position_embeddings', GEMMA2_DEFAULTS.max_position_embeddings, 'text_config'),
      query_pre_attn_scalar: pick(source, 'query_pre_attn_scalar', GEMMA2_DEFAULTS.query_pre_attn_scalar),
      // null in a config means "off" for these three, so only an absent key takes the default.
      attn_logit_softcapping: keyOr(source, 'attn_logit_softcapping', GEMMA2_DEFAULTS.attn_logit_softcapping),
      final_logit_softcapping: keyOr(source, 'final_logit_softcapping', GEMMA2_DEFAULTS.final_logit_softcapping),
      sliding_window: keyOr(source, 'sliding_window', GEMMA2_DEFAULTS.sliding_window),
      layer_types: layerTypes,
    });
  }
  throw new UserError(`text_config.model_type "${String(modelType)}" is not supported: expected "gemma" or "gemma2"`);
}

function keyOr<T>(source: Json, key: string, fallback: T): T | null {
  return key in source ? (source[key] as T | null) : fallback;
}

function validateText(text: TextConfig): TextConfig {
  if (!SUPPORTED_ACTIVATIONS.has(text.hidden_activation)) {
    throw new UserError(`text_config activation "${text.hidden_activation}" is not supported: expected gelu_pytorch_tanh`);
  }
  if (text.num_attention_heads % text.num_key_value_heads !== 0) {
    throw new UserError(
      `text_config.num_attention_heads ${text.num_attention_heads} is not a multiple of num_key_value_heads ${text.num_key_value_heads}`,
    );
  }
  if (text.head_dim % 2 !== 0) throw new UserError(`text_config.head_dim ${text.head_dim} must be even for rotary embeddings`);
  if (text.layer_types.length !== text.num_hidden_layers) {
    throw new UserError(`text_config.layer_types has ${text.layer_types.length} entries for ${text.num_hidden_layers} layers`);
  }
  return text;
}

/** Applies HF's defaults to a parsed config.json. Throws a UserError for what PaliGemma cannot be. */
export function readPaliGemmaConfig(raw: Json): PaliGemmaConfig {
  const modelType = raw.model_type;
  if (modelType !== 'paligemma') {
    throw new UserError(`config.json has model_type "${String(modelType)}": this is not a PaliGemma checkpoint`);
  }
  const projectionDim = pick(raw, 'projection_dim', 2048);
  const vision = readVision(raw.vision_config as Json | undefined, projectionDim);
  const text = readText(raw.text_config as Json | undefined);
  if (vision.hidden_act !== 'gelu_pytorch_tanh' && vision.hidden_act !== 'gelu') {
    throw new UserError(`vision_config.hidden_act "${vision.hidden_act}" is not supported`);
  }
  if (projectionDim !== text.hidden_size) {
    throw new UserError(`projection_dim ${projectionDim} differs from text_config.hidden_size ${text.hidden_size}`);
  }
  const eos = pick<number | number[]>(raw, 'eos_token_id', 1);
  return {
    generation: text.model_type === 'gemma2' ? 2 : 1,
    image_token_index: pick(raw, 'image_token_index', pick(raw, 'image_token_id', 256000)),
    projection_dim: projectionDim,
    bos_token_id: pick(raw, 'bos_token_id', 2),
    eos_token_ids: Array.isArray(eos) ? eos : [eos],
    pad_token_id: pick(raw, 'pad_token_id', 0),
    vision,
    text,
    num_image_tokens: (vision.image_size / vision.patch_size) ** 2,
    raw,
  };
}

/**
 * The tokens that end generation, as HF's `generate` finds them: generation_config.json's eos_token_id (an
 * int or a list) when the file gives one, else config.json's.
 */
export function endTokenIds(generationConfig: Json | null, config: PaliGemmaConfig, file = 'generation_config.json'): number[] {
  const eos = generationConfig?.eos_token_id;
  if (eos === undefined || eos === null) return config.eos_token_ids;
  const ids = Array.isArray(eos) ? eos : [eos];
  if (ids.length === 0 || !ids.every((id) => Number.isInteger(id) && (id as number) >= 0)) {
    throw new UserError(`${file}: eos_token_id must be a token id or a list of them, not ${JSON.stringify(eos)}`);
  }
  return ids as number[];
}
