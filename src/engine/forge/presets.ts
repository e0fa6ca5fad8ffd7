/**
 * Checkpoint shapes that `pali forge` can write. The full-size ones copy the config.json of the real
 * google/paligemma-3b-* and google/paligemma2-3b-* checkpoints, fields left out included, so that the
 * loader meets exactly what it meets on users' machines. The tiny ones keep the same structure at a size
 * that runs in milliseconds; their sliding window is shorter than a prompt so that Gemma 2's window is
 * exercised.
 */
import type { SafetensorsDtype } from '../checkpoint/safetensors.js';

export interface ForgePreset {
  /** config.json as written: only the fields the real checkpoint has. */
  config: Record<string, unknown>;
  /** The base (SentencePiece) vocabulary size before the loc, seg and image tokens. */
  baseVocabSize: number;
  /** Rows of the embedding matrix: the base vocabulary plus 1152 loc/seg tokens and <image>, maybe padded. */
  vocabSize: number;
  storageDtype: SafetensorsDtype;
  /** Largest shard in bytes; checkpoints above it are sharded like the hub's. */
  shardBytes: number;
  /** Standard deviation of the random weights; large enough that greedy outputs vary. */
  weightStd: number;
  /** Standard deviation of the token embeddings (also the tied LM head). */
  embeddingStd: number;
  /** Extra scale of the text MLPs' down_proj weights (see the full-size presets). */
  mlpOutScale: number;
  /** Mean of Gemma 2's post-attention and post-feedforward norm weights (the norm scales by 1 + w). */
  gemma2PostNormMean: number;
}

const LOC_SEG_IMAGE = 1024 + 128 + 1;

const FULL_VISION = {
  hidden_size: 1152,
  intermediate_size: 4304,
  model_type: 'siglip_vision_model',
  num_attention_heads: 16,
  num_hidden_layers: 27,
  patch_size: 14,
  projection_dim: 2048,
  projector_hidden_act: 'gelu_fast',
  vision_use_head: false,
};

/** How the full-size presets of both generations are stored and forged. */
const FULL_SIZE_FORGING = {
  baseVocabSize: 256000,
  vocabSize: 257216,
  storageDtype: 'BF16',
  shardBytes: 5_000_000_000,
  weightStd: 0.02,
  embeddingStd: 0.02,
  // The logits echo the last token's own embedding by about hidden_size x std / rms(residual); a
  // louder MLP (which reads the normalised, token-dependent residual) outweighs that echo and makes the
  // next token a pseudo-random function of the last one, so greedy output varies.
  mlpOutScale: 4,
} as const;

function paligemma1(imageSize: number): ForgePreset {
  const tokens = (imageSize / 14) ** 2;
  const vision: Record<string, unknown> = { ...FULL_VISION, num_image_tokens: tokens };
  if (imageSize !== 224) vision.image_size = imageSize;
  return {
    config: {
      architectures: ['PaliGemmaForConditionalGeneration'],
      bos_token_id: 2,
      eos_token_id: 1,
      hidden_size: 2048,
      ignore_index: -100,
      image_token_index: 257152,
      model_type: 'paligemma',
      pad_token_id: 0,
      projection_dim: 2048,
      text_config: {
        hidden_size: 2048,
        intermediate_size: 16384,
        model_type: 'gemma',
        num_attention_heads: 8,
        num_hidden_layers: 18,
        num_image_tokens: tokens,
        num_key_value_heads: 1,
        torch_dtype: 'float32',
        vocab_size: 257216,
      },
      torch_dtype: 'float32',
      transformers_version: '4.41.0.dev0',
      vision_config: vision,
      vocab_size: 257216,
    },
    ...FULL_SIZE_FORGING,
    gemma2PostNormMean: 0,
  };
}

function paligemma2(imageSize: number): ForgePreset {
  const tokens = (imageSize / 14) ** 2;
  const vision: Record<string, unknown> = { ...FULL_VISION, num_image_tokens: tokens, projection_dim: 2304 };
  if (imageSize !== 224) vision.image_size = imageSize;
  return {
    config: {
      architectures: ['PaliGemmaForConditionalGeneration'],
      bos_token_id: 2,
      eos_token_id: 1,
      hidden_size: 2048,
      image_token_index: 257152,
      model_type: 'paligemma',
      pad_token_id: 0,
      projection_dim: 2304,
      text_config: {
        hidden_activation: 'gelu_pytorch_tanh',
        hidden_size: 2304,
        intermediate_size: 9216,
        model_type: 'gemma2',
        num_attention_heads: 8,
        num_hidden_layers: 26,
        num_image_tokens: tokens,
        num_key_value_heads: 4,
        query_pre_attn_scalar: 256,
        sliding_window: 4096,
        torch_dtype: 'bfloat16',
        vocab_size: 257216,
      },
      torch_dtype: 'bfloat16',
      transformers_version: '4.47.0.dev0',
      vision_config: vision,
      vocab_size: 257216,
    },
    ...FULL_SIZE_FORGING,
    gemma2PostNormMean: 3,
  };
}

/** Tiny vocabulary: specials, 256 byte-fallback pieces and a few hundred word pieces (see tokenizer.ts). */
export const TINY_BASE_VOCAB = 640;

function tinyVision(): Record<string, unknown> {
  return {
    hidden_size: 32,
    image_size: 56,
    intermediate_size: 64,
    model_type: 'siglip_vision_model',
    num_attention_heads: 2,
    num_hidden_layers: 2,
    num_image_tokens: 16,
    patch_size: 14,
    projection_dim: 64,
    vision_use_head: false,
  };
}

const TINY: ForgePreset = {
  config: {
    architectures: ['PaliGemmaForConditionalGeneration'],
    bos_token_id: 2,
    eos_token_id: 1,
    hidden_size: 64,
    image_token_index: TINY_BASE_VOCAB + 1152,
    model_type: 'paligemma',
    pad_token_id: 0,
    projection_dim: 64,
    text_config: {
      head_dim: 16,
      hidden_size: 64,
      intermediate_size: 128,
      model_type: 'gemma',
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_image_tokens: 16,
      num_key_value_heads: 1,
      vocab_size: TINY_BASE_VOCAB + LOC_SEG_IMAGE,
    },
    vision_config: tinyVision(),
    vocab_size: TINY_BASE_VOCAB + LOC_SEG_IMAGE,
  },
  baseVocabSize: TINY_BASE_VOCAB,
  vocabSize: TINY_BASE_VOCAB + LOC_SEG_IMAGE,
  storageDtype: 'F32',
  shardBytes: 5_000_000_000,
  weightStd: 0.3,
  embeddingStd: 0.1,
  mlpOutScale: 1,
  gemma2PostNormMean: 0,
};

const TINY_PALIGEMMA2: ForgePreset = {
  ...TINY,
  embeddingStd: 0.1,
  gemma2PostNormMean: 2,
  config: {
    ...TINY.config,
    text_config: {
      head_dim: 16,
      hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 64,
      intermediate_size: 128,
      model_type: 'gemma2',
      num_attention_heads: 4,
      num_hidden_layers: 3,
      num_image_tokens: 16,
      num_key_value_heads: 2,
      query_pre_attn_scalar: 24,
      sliding_window: 12,
      attn_logit_softcapping: 50.0,
      final_logit_softcapping: 30.0,
      vocab_size: TINY_BASE_VOCAB + LOC_SEG_IMAGE,
    },
  },
};

/** Gemma's vocabulary (256,000 pieces) and PaliGemma's padded embedding rows, for `--tokenizer`. */
const GEMMA_VOCAB = 256_000;
const PALIGEMMA_EMBEDDING_ROWS = 257_216;

/**
 * The tiny model over the real vocabulary's shape: with `pali forge --tokenizer DIR` (Gemma's tokenizer),
 * multilingual answers run end to end in milliseconds.
 */
const TINY_GEMMA_VOCAB: ForgePreset = {
  ...TINY,
  baseVocabSize: GEMMA_VOCAB,
  vocabSize: PALIGEMMA_EMBEDDING_ROWS,
  config: {
    ...TINY.config,
    image_token_index: GEMMA_VOCAB + 1152,
    text_config: { ...(TINY.config.text_config as Record<string, unknown>), vocab_size: PALIGEMMA_EMBEDDING_ROWS },
    vocab_size: PALIGEMMA_EMBEDDING_ROWS,
  },
};

export const PRESETS: Record<string, ForgePreset> = {
  tiny: TINY,
  'tiny-gemma-vocab': TINY_GEMMA_VOCAB,
  'tiny-paligemma2': TINY_PALIGEMMA2,
  'paligemma-3b-224': paligemma1(224),
  'paligemma-3b-448': paligemma1(448),
  'paligemma-3b-896': paligemma1(896),
  'paligemma2-3b-224': paligemma2(224),
};
