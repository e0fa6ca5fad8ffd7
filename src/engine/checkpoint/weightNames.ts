/**
 * HF's tensor names for PaliGemma. Checkpoints on the hub use the original layout
 * (`language_model.model.layers...`); transformers >= 4.52 saves `model.language_model.layers...`.
 * Both are read; forged checkpoints are written in the original one, like the hub's.
 */

export const visionNames = {
  patchWeight: 'vision_tower.vision_model.embeddings.patch_embedding.weight',
  patchBias: 'vision_tower.vision_model.embeddings.patch_embedding.bias',
  positionEmbedding: 'vision_tower.vision_model.embeddings.position_embedding.weight',
  postLayerNormWeight: 'vision_tower.vision_model.post_layernorm.weight',
  postLayerNormBias: 'vision_tower.vision_model.post_layernorm.bias',
  layer: (i: number, part: string) => `vision_tower.vision_model.encoder.layers.${i}.${part}`,
};

export const projectorNames = {
  weight: 'multi_modal_projector.linear.weight',
  bias: 'multi_modal_projector.linear.bias',
};

export const textNames = {
  embedTokens: 'language_model.model.embed_tokens.weight',
  finalNorm: 'language_model.model.norm.weight',
  lmHead: 'language_model.lm_head.weight',
  layer: (i: number, part: string) => `language_model.model.layers.${i}.${part}`,
};

/** The per-layer tensors of a SigLIP encoder block (weights [out, in] plus biases). */
export const SIGLIP_LAYER_PARTS = [
  'layer_norm1.weight', 'layer_norm1.bias',
  'self_attn.q_proj.weight', 'self_attn.q_proj.bias',
  'self_attn.k_proj.weight', 'self_attn.k_proj.bias',
  'self_attn.v_proj.weight', 'self_attn.v_proj.bias',
  'self_attn.out_proj.weight', 'self_attn.out_proj.bias',
  'layer_norm2.weight', 'layer_norm2.bias',
  'mlp.fc1.weight', 'mlp.fc1.bias',
  'mlp.fc2.weight', 'mlp.fc2.bias',
] as const;

/** The per-layer norms of a Gemma block; Gemma 2 adds two around the MLP. */
export function gemmaNormParts(generation: 1 | 2): string[] {
  return generation === 2
    ? ['input_layernorm.weight', 'post_attention_layernorm.weight', 'pre_feedforward_layernorm.weight', 'post_feedforward_layernorm.weight']
    : ['input_layernorm.weight', 'post_attention_layernorm.weight'];
}

export const GEMMA_LINEAR_PARTS = [
  'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.o_proj.weight',
  'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight',
] as const;

/** Maps a name in the transformers >= 4.52 layout to the original one; other names pass through. */
export function toOriginalName(name: string): string {
  if (name.startsWith('model.vision_tower.')) return name.slice('model.'.length);
  if (name.startsWith('model.multi_modal_projector.')) return name.slice('model.'.length);
  if (name.startsWith('model.language_model.')) return 'language_model.model.' + name.slice('model.language_model.'.length);
  if (name === 'lm_head.weight') return 'language_model.lm_head.weight';
  return name;
}
