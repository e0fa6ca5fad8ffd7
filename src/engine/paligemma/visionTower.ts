/**
 * onnx/vision_encoder.onnx: pixel_values [B, 3, R, R] -> image_features [B, N, text hidden].
 * SigLIP (patch conv with bias, learned positions, pre-LayerNorm blocks with a tanh-GELU MLP,
 * post_layernorm, no pooling head), then PaliGemma's linear projector, then the division by
 * sqrt(text hidden size) that HF applies to image features before they meet the text embeddings.
 * `dtype` is the weights of every linear layer (fp32; q8 for int4 models; int8; int4 only for the file
 * transformers.js's PaliGemma card recommends, `vision_encoder_q4`, which the bench's peer loads); the rest
 * stays float32.
 */
import { loadWeight, type Checkpoint } from '../checkpoint/checkpoint.js';
import type { VisionConfig } from '../checkpoint/config.js';
import { projectorNames, visionNames } from '../checkpoint/weightNames.js';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import { fastGeluTanh } from '../onnx/fusedLayers.js';
import { activation, isTanhGelu, layerNorm, linear, reshape, transpose, type WeightDtype } from '../onnx/layers.js';
import type { WeightStore } from '../onnx/weightStore.js';
import { smoothLayerNorm, smoothSiglipMlp } from './int8Smoothing.js';

/** The linear layers that read layer_norm1. */
const ATTENTION_INPUTS = ['q_proj', 'k_proj', 'v_proj'];

interface Tower {
  g: GraphBuilder;
  checkpoint: Checkpoint;
  vision: VisionConfig;
  dtype: WeightDtype;
  /** Patches (image tokens). */
  N: number;
  D: number;
  heads: number;
  headDim: number;
}

export function buildVisionEncoder(checkpoint: Checkpoint, store: WeightStore, dtype: WeightDtype = 'fp32'): GraphBuilder {
  // Activations here are float32 throughout: float16 weights would need another graph.
  if (dtype === 'fp16') throw new Error('the vision tower stores fp32, q8, int8 or int4 weights, not fp16');
  const { vision, num_image_tokens: N } = checkpoint.config;
  const g = new GraphBuilder('vision_encoder', store);
  const D = vision.hidden_size;
  const tower: Tower = { g, checkpoint, vision, dtype, N, D, heads: vision.num_attention_heads, headDim: D / vision.num_attention_heads };
  let hidden = patchEmbeddings(tower);
  for (let i = 0; i < vision.num_hidden_layers; i++) hidden = encoderLayer(tower, i, hidden);
  g.output(projectedFeatures(tower, hidden), 'image_features', 'float32', ['batch_size', N, checkpoint.config.projection_dim]);
  return g;
}

/** A stride-P convolution cuts the image into patches, then learned position embeddings are added. */
function patchEmbeddings({ g, checkpoint, vision, N, D }: Tower): string {
  const P = vision.patch_size;
  const weight = (name: string, shape: number[]) => loadWeight(checkpoint, name, shape);
  const pixels = g.input('pixel_values', 'float32', ['batch_size', vision.num_channels, vision.image_size, vision.image_size]);
  const patchWeight = g.weight('patch_embedding.weight', weight(visionNames.patchWeight, [D, vision.num_channels, P, P]), [D, vision.num_channels, P, P]);
  const patchBias = g.weight('patch_embedding.bias', weight(visionNames.patchBias, [D]), [D]);
  const patches = g.op('Conv', [pixels, patchWeight, patchBias], { kernel_shape: [P, P], strides: [P, P] });
  const sequence = transpose(g, reshape(g, patches, [0, D, N]), [0, 2, 1]);
  const positions = g.weight('position_embedding.weight', weight(visionNames.positionEmbedding, [N, D]), [N, D]);
  return g.op('Add', [sequence, positions]);
}

/** One pre-LayerNorm SigLIP block: x + attention(norm1(x)), then x + mlp(norm2(x)). */
function encoderLayer(tower: Tower, i: number, hidden: string): string {
  hidden = tower.g.op('Add', [hidden, selfAttention(tower, i, hidden)]);
  return tower.g.op('Add', [hidden, mlp(tower, i, hidden)]);
}

/** Self-attention over all patches (no mask), scaled by head_dim^-0.5 as SiglipAttention does. */
function selfAttention({ g, checkpoint, vision, dtype, N, D, heads, headDim }: Tower, i: number, hidden: string): string {
  const w = (part: string, shape: number[]) => loadWeight(checkpoint, visionNames.layer(i, part), shape);
  const prefix = `vision.layers.${i}`;
  // int8 models move outlier channels from the norms into the weights that read them (int8Smoothing.ts).
  const norm = dtype === 'int8' ? smoothLayerNorm(w('layer_norm1.weight', [D]), w('layer_norm1.bias', [D]), ATTENTION_INPUTS.map((p) => w(`self_attn.${p}.weight`, [D, D])), D) : null;
  const project = (x: string, part: string) => {
    const smoothedWeight = norm?.weights[ATTENTION_INPUTS.indexOf(part)];
    const source = smoothedWeight ? () => smoothedWeight : () => w(`self_attn.${part}.weight`, [D, D]);
    return linear(g, x, `${prefix}.${part}`, source, D, D, dtype, () => w(`self_attn.${part}.bias`, [D]));
  };
  const normed = norm
    ? layerNorm(g, hidden, `${prefix}.layer_norm1`, norm.scale, norm.bias, vision.layer_norm_eps)
    : layerNorm(g, hidden, `${prefix}.layer_norm1`, w('layer_norm1.weight', [D]), w('layer_norm1.bias', [D]), vision.layer_norm_eps);
  const q = transpose(g, reshape(g, project(normed, 'q_proj'), [0, N, heads, headDim]), [0, 2, 1, 3]);
  const kT = transpose(g, reshape(g, project(normed, 'k_proj'), [0, N, heads, headDim]), [0, 2, 3, 1]);
  const v = transpose(g, reshape(g, project(normed, 'v_proj'), [0, N, heads, headDim]), [0, 2, 1, 3]);
  const scores = g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar(headDim ** -0.5)]);
  const attended = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  const merged = reshape(g, transpose(g, attended, [0, 2, 1, 3]), [0, N, D]);
  return project(merged, 'out_proj');
}

/** The MLP: fc1 -> GELU -> fc2 after layer_norm2. */
function mlp({ g, checkpoint, vision, dtype, D }: Tower, i: number, hidden: string): string {
  const w = (part: string, shape: number[]) => loadWeight(checkpoint, visionNames.layer(i, part), shape);
  const prefix = `vision.layers.${i}`;
  const I = vision.intermediate_size;
  const smoothed = dtype === 'int8'
    ? smoothSiglipMlp(w('layer_norm2.weight', [D]), w('layer_norm2.bias', [D]), w('mlp.fc1.weight', [I, D]), w('mlp.fc1.bias', [I]), () => w('mlp.fc2.weight', [D, I]), D, I)
    : null;
  const normed = layerNorm(g, hidden, `${prefix}.layer_norm2`, smoothed?.norm.scale ?? w('layer_norm2.weight', [D]), smoothed?.norm.bias ?? w('layer_norm2.bias', [D]), vision.layer_norm_eps);
  const fc1 = smoothed ? () => smoothed.fc1 : () => w('mlp.fc1.weight', [I, D]);
  const fc1Bias = () => w('mlp.fc1.bias', [I]);
  // int8 runs on the CPU provider, whose FastGelu adds fc1's bias and applies the tanh GELU in one pass
  // (onnx/fusedLayers.ts); the other dtypes keep plain ops.
  let activated = dtype === 'int8' && isTanhGelu(vision.hidden_act)
    ? fastGeluTanh(g, linear(g, normed, `${prefix}.fc1`, fc1, I, D, dtype), g.weight(`${prefix}.fc1.bias`, fc1Bias, [I]))
    : activation(g, linear(g, normed, `${prefix}.fc1`, fc1, I, D, dtype, fc1Bias), vision.hidden_act);
  const divisors = smoothed?.fc2InputDivisors;
  if (divisors) activated = g.op('Mul', [activated, g.weight(`${prefix}.fc2.input_smoothing`, divisors.map((v) => 1 / v), [I])]);
  const fc2 = smoothed?.fc2 ?? (() => w('mlp.fc2.weight', [D, I]));
  return linear(g, activated, `${prefix}.fc2`, fc2, D, I, dtype, () => w('mlp.fc2.bias', [D]));
}

/**
 * post_layernorm, PaliGemma's projector, then image_features / sqrt(text hidden size) in float32 (Gemma
 * later multiplies all input embeddings, these included, by sqrt(hidden size)).
 */
function projectedFeatures({ g, checkpoint, vision, dtype, D }: Tower, hidden: string): string {
  const weight = (name: string, shape: number[]) => loadWeight(checkpoint, name, shape);
  const E = checkpoint.config.projection_dim;
  const postNorm = dtype === 'int8'
    ? smoothLayerNorm(weight(visionNames.postLayerNormWeight, [D]), weight(visionNames.postLayerNormBias, [D]), [weight(projectorNames.weight, [E, D])], D)
    : null;
  hidden = layerNorm(g, hidden, 'vision.post_layernorm', postNorm?.scale ?? weight(visionNames.postLayerNormWeight, [D]), postNorm?.bias ?? weight(visionNames.postLayerNormBias, [D]), vision.layer_norm_eps);
  const projector = postNorm ? () => postNorm.weights[0]! : () => weight(projectorNames.weight, [E, D]);
  const projected = linear(g, hidden, 'multi_modal_projector.linear', projector, E, D, dtype, () => weight(projectorNames.bias, [E]));
  return g.op('Div', [projected, g.scalar(Math.fround(Math.sqrt(checkpoint.config.text.hidden_size)))]);
}
