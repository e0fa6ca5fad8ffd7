/**
 * onnx/vision_encoder.onnx: pixel_values [B, 3, R, R] -> image_features [B, N, text hidden].
 * SigLIP (patch conv with bias, learned positions, pre-LayerNorm blocks with a tanh-GELU MLP,
 * post_layernorm, no pooling head), then PaliGemma's linear projector, then the division by
 * sqrt(text hidden size) that HF applies to image features before they meet the text embeddings.
 * `dtype` is the weights of every linear layer (fp32; q8 for int4 models; int8); the rest stays float32.
 */
import { loadWeight, type Checkpoint } from '../checkpoint/checkpoint.js';
import { projectorNames, visionNames } from '../checkpoint/weightNames.js';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import { activation, layerNorm, linear, reshape, transpose, type WeightDtype } from '../onnx/layers.js';
import type { WeightStore } from '../onnx/weightStore.js';
import { smoothLayerNorm } from './int8Smoothing.js';

/** The linear layers that read layer_norm1. */
const ATTENTION_INPUTS = ['q_proj', 'k_proj', 'v_proj'];

export function buildVisionEncoder(checkpoint: Checkpoint, store: WeightStore, dtype: WeightDtype = 'fp32'): GraphBuilder {
  // Activations here are float32 throughout: float16 or 4-bit weights would need another graph.
  if (dtype !== 'fp32' && dtype !== 'q8' && dtype !== 'int8') throw new Error(`the vision tower stores fp32, q8 or int8 weights, not ${dtype}`);
  const { vision, text, num_image_tokens: N } = checkpoint.config;
  const g = new GraphBuilder('vision_encoder', store);
  const D = vision.hidden_size;
  const P = vision.patch_size;
  const heads = vision.num_attention_heads;
  const headDim = D / heads;
  const weight = (name: string, shape: number[]) => loadWeight(checkpoint, name, shape);

  const smoothed = dtype === 'int8';
  const pixels = g.input('pixel_values', 'float32', ['batch_size', vision.num_channels, vision.image_size, vision.image_size]);

  // Embeddings: a stride-P convolution cuts the image into patches, then learned position embeddings.
  const patchWeight = g.weight('patch_embedding.weight', weight(visionNames.patchWeight, [D, vision.num_channels, P, P]), [D, vision.num_channels, P, P]);
  const patchBias = g.weight('patch_embedding.bias', weight(visionNames.patchBias, [D]), [D]);
  const patches = g.op('Conv', [pixels, patchWeight, patchBias], { kernel_shape: [P, P], strides: [P, P] });
  const sequence = transpose(g, reshape(g, patches, [0, D, N]), [0, 2, 1]);
  const positions = g.weight('position_embedding.weight', weight(visionNames.positionEmbedding, [N, D]), [N, D]);
  let hidden = g.op('Add', [sequence, positions]);

  for (let i = 0; i < vision.num_hidden_layers; i++) {
    const w = (part: string, shape: number[]) => weight(visionNames.layer(i, part), shape);
    const prefix = `vision.layers.${i}`;
    // int8 models move outlier channels from the norms into the weights that read them (int8Smoothing.ts).
    const attentionNorm = smoothed ? smoothLayerNorm(w('layer_norm1.weight', [D]), w('layer_norm1.bias', [D]), ATTENTION_INPUTS.map((p) => w(`self_attn.${p}.weight`, [D, D])), D) : null;
    const project = (x: string, part: string) => {
      const smoothedWeight = attentionNorm?.weights[ATTENTION_INPUTS.indexOf(part)];
      const source = smoothedWeight ? () => smoothedWeight : () => w(`self_attn.${part}.weight`, [D, D]);
      return linear(g, x, `${prefix}.${part}`, source, D, D, dtype, () => w(`self_attn.${part}.bias`, [D]));
    };

    // Self-attention over all patches (no mask), scaled by head_dim^-0.5 as SiglipAttention does.
    const normed = attentionNorm
      ? layerNorm(g, hidden, `${prefix}.layer_norm1`, attentionNorm.scale, attentionNorm.bias, vision.layer_norm_eps)
      : layerNorm(g, hidden, `${prefix}.layer_norm1`, w('layer_norm1.weight', [D]), w('layer_norm1.bias', [D]), vision.layer_norm_eps);
    const q = transpose(g, reshape(g, project(normed, 'q_proj'), [0, N, heads, headDim]), [0, 2, 1, 3]);
    const kT = transpose(g, reshape(g, project(normed, 'k_proj'), [0, N, heads, headDim]), [0, 2, 3, 1]);
    const v = transpose(g, reshape(g, project(normed, 'v_proj'), [0, N, heads, headDim]), [0, 2, 1, 3]);
    const scores = g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar(headDim ** -0.5)]);
    const attended = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = reshape(g, transpose(g, attended, [0, 2, 1, 3]), [0, N, D]);
    hidden = g.op('Add', [hidden, project(merged, 'out_proj')]);

    // MLP: fc1 -> GELU -> fc2.
    const I = vision.intermediate_size;
    const mlpNorm = smoothed ? smoothLayerNorm(w('layer_norm2.weight', [D]), w('layer_norm2.bias', [D]), [w('mlp.fc1.weight', [I, D])], D) : null;
    const normed2 = layerNorm(g, hidden, `${prefix}.layer_norm2`, mlpNorm?.scale ?? w('layer_norm2.weight', [D]), mlpNorm?.bias ?? w('layer_norm2.bias', [D]), vision.layer_norm_eps);
    const fc1 = mlpNorm ? () => mlpNorm.weights[0]! : () => w('mlp.fc1.weight', [I, D]);
    const up = linear(g, normed2, `${prefix}.fc1`, fc1, I, D, dtype, () => w('mlp.fc1.bias', [I]));
    const down = linear(g, activation(g, up, vision.hidden_act), `${prefix}.fc2`, () => w('mlp.fc2.weight', [D, I]), D, I, dtype, () => w('mlp.fc2.bias', [D]));
    hidden = g.op('Add', [hidden, down]);
  }

  const E = checkpoint.config.projection_dim;
  const postNorm = smoothed
    ? smoothLayerNorm(weight(visionNames.postLayerNormWeight, [D]), weight(visionNames.postLayerNormBias, [D]), [weight(projectorNames.weight, [E, D])], D)
    : null;
  hidden = layerNorm(g, hidden, 'vision.post_layernorm', postNorm?.scale ?? weight(visionNames.postLayerNormWeight, [D]), postNorm?.bias ?? weight(visionNames.postLayerNormBias, [D]), vision.layer_norm_eps);

  // PaliGemma's projector, then image_features / sqrt(text hidden size) in float32 (Gemma later multiplies
  // all input embeddings, these included, by sqrt(hidden size)).
  const projector = postNorm ? () => postNorm.weights[0]! : () => weight(projectorNames.weight, [E, D]);
  const projected = linear(g, hidden, 'multi_modal_projector.linear', projector, E, D, dtype, () => weight(projectorNames.bias, [E]));
  const features = g.op('Div', [projected, g.scalar(Math.fround(Math.sqrt(text.hidden_size)))]);
  g.output(features, 'image_features', 'float32', ['batch_size', N, E]);
  return g;
}
