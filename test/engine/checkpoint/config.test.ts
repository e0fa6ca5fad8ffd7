/** HF's config-class defaults, applied to the fields real checkpoints leave out. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readPaliGemmaConfig } from '../../../src/engine/checkpoint/config.js';
import { isUserError } from '../../../src/common/errors.js';

/** google/paligemma-3b-pt-224's config.json, as published. */
const PALIGEMMA_3B_224 = {
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
    hidden_size: 2048, intermediate_size: 16384, model_type: 'gemma', num_attention_heads: 8, num_hidden_layers: 18,
    num_image_tokens: 256, num_key_value_heads: 1, torch_dtype: 'float32', vocab_size: 257216,
  },
  vision_config: {
    hidden_size: 1152, intermediate_size: 4304, model_type: 'siglip_vision_model', num_attention_heads: 16,
    num_hidden_layers: 27, num_image_tokens: 256, patch_size: 14, projection_dim: 2048, projector_hidden_act: 'gelu_fast',
    vision_use_head: false,
  },
  vocab_size: 257216,
};

describe('PaliGemma 1 config defaults', () => {
  const config = readPaliGemmaConfig(structuredClone(PALIGEMMA_3B_224));

  test('GemmaConfig fills head_dim 256, eps 1e-6, rope_theta 10000 and the tanh GELU', () => {
    assert.equal(config.generation, 1);
    assert.equal(config.text.head_dim, 256);
    assert.equal(config.text.rms_norm_eps, 1e-6);
    assert.equal(config.text.rope_theta, 10000);
    assert.equal(config.text.hidden_activation, 'gelu_pytorch_tanh');
    assert.equal(config.text.num_key_value_heads, 1);
    assert.equal(config.text.sliding_window, null);
    assert.equal(config.text.final_logit_softcapping, null);
  });

  test('SiglipVisionConfig fills image_size 224, 3 channels, LayerNorm eps 1e-6 and 256 image tokens', () => {
    assert.equal(config.vision.image_size, 224);
    assert.equal(config.vision.num_channels, 3);
    assert.equal(config.vision.layer_norm_eps, 1e-6);
    assert.equal(config.vision.hidden_act, 'gelu_pytorch_tanh');
    assert.equal(config.num_image_tokens, 256);
  });

  test('an absent text_config and vision_config become PaliGemmaConfig\'s built-in Gemma-2B and SigLIP-So400m', () => {
    const bare = readPaliGemmaConfig({ model_type: 'paligemma' });
    assert.equal(bare.text.hidden_size, 2048);
    assert.equal(bare.text.num_hidden_layers, 18);
    assert.equal(bare.text.num_key_value_heads, 1);
    assert.equal(bare.vision.hidden_size, 1152);
    assert.equal(bare.vision.num_hidden_layers, 27);
    assert.equal(bare.vision.patch_size, 14);
    assert.equal(bare.image_token_index, 256000);
    assert.equal(bare.projection_dim, 2048);
  });

  test('a vision_config without model_type is SigLIP with SiglipVisionConfig defaults', () => {
    const config = readPaliGemmaConfig({ model_type: 'paligemma', projection_dim: 3072, text_config: { model_type: 'gemma' }, vision_config: {} });
    assert.equal(config.vision.hidden_size, 768);
    assert.equal(config.vision.patch_size, 16);
    assert.equal(config.text.hidden_size, 3072);
    assert.equal(config.text.num_key_value_heads, 16);
  });
});

describe('PaliGemma 2 config defaults', () => {
  const raw = structuredClone(PALIGEMMA_3B_224) as Record<string, unknown>;
  raw.projection_dim = 2304;
  raw.text_config = { hidden_size: 2304, intermediate_size: 9216, model_type: 'gemma2', num_attention_heads: 8, num_hidden_layers: 26, num_key_value_heads: 4, vocab_size: 257216 };
  const config = readPaliGemmaConfig(raw);

  test('Gemma2Config fills soft-capping 50/30, query_pre_attn_scalar 256 and a 4096 window', () => {
    assert.equal(config.generation, 2);
    assert.equal(config.text.attn_logit_softcapping, 50);
    assert.equal(config.text.final_logit_softcapping, 30);
    assert.equal(config.text.query_pre_attn_scalar, 256);
    assert.equal(config.text.sliding_window, 4096);
    assert.equal(config.text.head_dim, 256);
  });

  test('layers 0, 2, 4, ... slide; odd layers attend globally', () => {
    assert.equal(config.text.layer_types[0], 'sliding_attention');
    assert.equal(config.text.layer_types[1], 'full_attention');
    assert.equal(config.text.layer_types[24], 'sliding_attention');
    assert.equal(config.text.layer_types[25], 'full_attention');
  });

  test('an explicit null turns soft-capping off; rope_parameters.rope_theta is read', () => {
    const off = structuredClone(raw);
    off.text_config = { ...(raw.text_config as object), final_logit_softcapping: null, rope_parameters: { rope_type: 'default', rope_theta: 5000 } };
    const config = readPaliGemmaConfig(off);
    assert.equal(config.text.final_logit_softcapping, null);
    assert.equal(config.text.attn_logit_softcapping, 50);
    assert.equal(config.text.rope_theta, 5000);
  });
});

describe('configs that are not PaliGemma', () => {
  const rejects = (raw: Record<string, unknown>, pattern: RegExp) =>
    assert.throws(() => readPaliGemmaConfig(raw), (error) => isUserError(error) && pattern.test((error as Error).message));

  test('another model_type, text model or projection size is a user error', () => {
    rejects({ model_type: 'llava' }, /not a PaliGemma checkpoint/);
    rejects({ model_type: 'paligemma', text_config: { model_type: 'llama' } }, /not supported/);
    rejects({ ...PALIGEMMA_3B_224, projection_dim: 1024 }, /projection_dim/);
  });
});
