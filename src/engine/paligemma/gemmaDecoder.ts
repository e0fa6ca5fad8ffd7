/**
 * The Gemma decoder (Gemma 1 for PaliGemma, Gemma 2 for PaliGemma 2), in two variants over the same weights:
 *
 * - `merged`: onnx/decoder_model_merged.onnx in the onnx-community layout that transformers.js loads:
 *   inputs_embeds, position_ids, past_key_values.{i}.key/value -> logits for every position, present.*.
 *   No attention mask: each position sees the whole cache plus its whole chunk, so a prefill of the prompt
 *   in one call is PaliGemma's bidirectional prefix and one-token steps are causal.
 * - `masked`: onnx/decoder_model_masked.onnx, our engine's graph. It adds `attention_bias`
 *   [B, 1, S, T] (0 or a large negative number: prefix, causal suffix and padding, built by the engine)
 *   and returns the logits of the last position only, which spares the full-vocabulary logits of every
 *   prompt position (4 GB at 896 px). It returns the chunk's own keys and values (`chunk_key_values.*`,
 *   [B, KV, S, head_dim]) rather than the whole cache, which the engine keeps and extends in place
 *   (kvCache.ts says why).
 *
 * Gemma 2's sliding window (on layers whose layer_type is sliding_attention) follows newest HF: pairs
 * inside the prefix attend both ways whatever their distance, and elsewhere key j is hidden from query i
 * when i - j >= sliding_window. The masked graph takes that mask as a second input,
 * `sliding_attention_bias` (paligemma/prefixLmMask.ts builds both). The merged graph applies the window
 * itself, from cache positions, to every chunk but the first: its first chunk is the whole prefix.
 *
 * With fp16 weights, activations, inputs_embeds and the KV cache are float16, as HF runs a float16 model;
 * RMSNorm, the RoPE tables and the attention softmax (with its mask) stay float32 as HF computes them, and
 * the logits come out as float32.
 */
import { loadWeight, type Checkpoint } from '../checkpoint/checkpoint.js';
import { f32ToF16 } from '../checkpoint/floatFormats.js';
import type { TextConfig } from '../checkpoint/config.js';
import { GEMMA_LINEAR_PARTS, textNames } from '../checkpoint/weightNames.js';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import type { ActivationScales } from '../onnx/int8Linear.js';
import { fastGeluTanh, fusedRmsNorm, fusedRotary } from '../onnx/fusedLayers.js';
import { activation, cast, isTanhGelu, linear, precisionOf, reshape, rmsNorm, rmsNormScale, softcap, transpose, type WeightDtype } from '../onnx/layers.js';
import type { WeightStore } from '../onnx/weightStore.js';
import { once, smoothAfterNorm } from '../onnx/smoothing.js';
import { gemmaNormRanges, smoothGemmaLayer } from './int8Smoothing.js';
import { chunkName } from './kvCache.js';
import { slidingWindowInGraph } from './prefixLmMask.js';

export type DecoderVariant = 'merged' | 'masked';

/**
 * onnx/embed_tokens.onnx: input_ids -> inputs_embeds. The table is float32 for our engine, which reads its
 * rows from disk (tokenEmbeddings.ts). `fp16` writes embed_tokens_fp16.onnx as transformers.js's fp16
 * exports have it (a float16 table, float32 out: their conversion keeps the graph's I/O types), for the
 * bench's peer.
 */
export function buildEmbedTokens(checkpoint: Checkpoint, store: WeightStore, vocabSize: number, dtype: WeightDtype = 'fp32'): GraphBuilder {
  const H = checkpoint.config.text.hidden_size;
  const g = new GraphBuilder('embed_tokens', store);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const load = () => loadWeight(checkpoint, textNames.embedTokens, [vocabSize, H]);
  let embeds: string;
  if (dtype === 'fp16') {
    const table = g.weight('embed_tokens.weight_fp16', () => f32ToF16(load()), [vocabSize, H], 'float16');
    embeds = cast(g, g.op('Gather', [table, ids], { axis: 0 }), 'float32');
  } else if (dtype === 'fp32') {
    embeds = g.op('Gather', [g.weight('embed_tokens.weight', load, [vocabSize, H]), ids], { axis: 0 });
  } else {
    throw new Error(`the embedding table is stored as fp32 or fp16, not ${dtype}`);
  }
  g.output(embeds, 'inputs_embeds', 'float32', ['batch_size', 'sequence_length', H]);
  return g;
}

/** Rotary inverse frequencies as HF computes them in float32: 1 / theta^(arange(0, d, 2) / d). */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(theta ** exponent));
  }
  return out;
}

/**
 * cos and sin of every position's angles, [positions, head_dim / 2], for position_ids 0..positions-1. The
 * angle is HF's float32 product position * inv_freq; its cos and sin are computed in float64 and rounded
 * once, so the tables are correctly rounded. In the graph, Cos and Sin ran on each provider's own
 * approximation: WebGPU's (WGSL and Vulkan allow an absolute error of 2^-11) was 2e-4 off at the angles
 * of a few hundred positions, which moved fp32 logits by 1e-3 against the CPU provider's.
 */
export function ropeTables(headDim: number, theta: number, positions: number): { cos: Float32Array; sin: Float32Array } {
  const inverse = ropeInverseFrequencies(headDim, theta);
  const half = headDim / 2;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inverse[i]!);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** What every part of the decoder shares: the graph, the model's sizes, and how its weights are stored. */
interface Decoder {
  g: GraphBuilder;
  checkpoint: Checkpoint;
  text: TextConfig;
  generation: number;
  variant: DecoderVariant;
  dtype: WeightDtype;
  precision: ReturnType<typeof precisionOf>;
  activationScales: ActivationScales;
  /** int8 runs on the CPU provider's fused kernels (onnx/fusedLayers.ts says why). */
  fused: boolean;
  H: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  I: number;
  /** The norm before the MLP: post_attention_layernorm in Gemma 1, pre_feedforward_layernorm in Gemma 2. */
  mlpNorm: string;
  /** A float32 tensor in the model's precision. */
  inPrecision(x: string): string;
  /** Rotary position embedding of queries or keys [B, heads, S, head_dim]. */
  rotate(x: string): string;
  /** [B, 1, 1, S, T] additive masks: every layer's, and the sliding-window layers' (Gemma 2). */
  masks: { full: string | null; sliding: string | null };
}

/** One layer's norms and linear layers, smoothed for int8 (int8Smoothing.ts). */
interface LayerParts {
  norm(x: string, part: string): string;
  /** The residual stream's next value, hidden + delta (hidden alone when delta is null), and its norm. */
  addAndNorm(hidden: string, delta: string | null, part: string): { sum: string; normed: string };
  project(x: string, part: (typeof GEMMA_LINEAR_PARTS)[number]): string;
}

export function buildDecoder(
  checkpoint: Checkpoint,
  store: WeightStore,
  variant: DecoderVariant,
  dtype: WeightDtype,
  vocabSize: number,
  /** For int8: per-token is what ships; per-tensor exists for the fidelity test that shows why. */
  activationScales: ActivationScales = 'per-token',
): GraphBuilder {
  const { text } = checkpoint.config;
  const g = new GraphBuilder(`decoder_model_${variant}`, store);
  const precision = precisionOf(dtype);
  const H = text.hidden_size;
  const inputs = decoderInputs(g, text, variant, precision);

  // Gemma scales every input embedding (image features included) by sqrt(hidden_size), as a tensor of the
  // model's dtype.
  let hidden = g.op('Mul', [inputs.embeds, g.scalar(Math.fround(Math.sqrt(H)), precision)]);
  const inPrecision = (x: string) => (precision === 'float16' ? cast(g, x, 'float16') : x);
  const fused = dtype === 'int8';
  const decoder: Decoder = {
    g, checkpoint, text, variant, dtype, precision, activationScales, inPrecision, fused,
    generation: checkpoint.config.generation,
    H,
    heads: text.num_attention_heads,
    kvHeads: text.num_key_value_heads,
    headDim: text.head_dim,
    I: text.intermediate_size,
    mlpNorm: checkpoint.config.generation === 2 ? 'pre_feedforward_layernorm' : 'post_attention_layernorm',
    rotate: rotaryEmbedding(g, text, inputs.positionIds, inPrecision, fused),
    masks: attentionMasks(g, text, variant, inputs),
  };
  // The residual stream is carried as hidden + delta, the delta not yet added, so that a fused norm can
  // do the addition in the same node (addAndNorm).
  let delta: string | null = null;
  for (let i = 0; i < text.num_hidden_layers; i++) {
    ({ hidden, delta } = decoderLayer(decoder, i, hidden, delta, inputs.pastKeys[i]!, inputs.pastValues[i]!));
  }
  lmHead(decoder, hidden, delta, vocabSize);
  return g;
}

/** The graph's inputs: embeddings, positions, the masks (masked variant) and the cache of every layer. */
function decoderInputs(g: GraphBuilder, text: TextConfig, variant: DecoderVariant, precision: ReturnType<typeof precisionOf>) {
  const { hidden_size: H, num_key_value_heads: kvHeads, head_dim: headDim } = text;
  const embeds = g.input('inputs_embeds', precision, ['batch_size', 'sequence_length', H]);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const hasSlidingLayers = text.layer_types.includes('sliding_attention') && text.sliding_window !== null;
  const biasInput = (name: string) => g.input(name, 'float32', ['batch_size', 1, 'sequence_length', 'total_sequence_length']);
  const attentionBias = variant === 'masked' ? biasInput('attention_bias') : null;
  const slidingBias = variant === 'masked' && hasSlidingLayers ? biasInput('sliding_attention_bias') : null;
  const pastKeys: string[] = [];
  const pastValues: string[] = [];
  for (let i = 0; i < text.num_hidden_layers; i++) {
    pastKeys.push(g.input(`past_key_values.${i}.key`, precision, ['batch_size', kvHeads, 'past_sequence_length', headDim]));
    pastValues.push(g.input(`past_key_values.${i}.value`, precision, ['batch_size', kvHeads, 'past_sequence_length', headDim]));
  }
  return { embeds, positionIds, hasSlidingLayers, attentionBias, slidingBias, pastKeys, pastValues };
}

/**
 * Rotary embeddings from position_ids: cos/sin of position * inverse frequency, duplicated halves, looked
 * up in tables (ropeTables says why). Returns x -> x * cos + rotate_half(x) * sin.
 */
function rotaryEmbedding(g: GraphBuilder, text: TextConfig, positionIds: string, inPrecision: (x: string) => string, fused: boolean): (x: string) => string {
  const headDim = text.head_dim;
  const positions = text.max_position_embeddings + 1;
  const tables = once(() => ropeTables(headDim, text.rope_theta, positions));
  const cosTable = g.weight('rotary.cos', () => tables().cos, [positions, headDim / 2]);
  const sinTable = g.weight('rotary.sin', () => tables().sin, [positions, headDim / 2]);
  if (fused) return (x) => fusedRotary(g, x, positionIds, cosTable, sinTable);
  const lookUp = (table: string) => {
    const half = g.op('Gather', [table, positionIds], { axis: 0 });
    return g.op('Unsqueeze', [inPrecision(g.op('Concat', [half, half], { axis: -1 })), g.int64s([1])]);
  };
  const cos = lookUp(cosTable);
  const sin = lookUp(sinTable);
  return (x) => {
    // rotate_half(x) = concat(-x2, x1) over the last axis.
    const [x1, x2] = g.node('Split', [x, g.int64s([headDim / 2, headDim / 2])], { axis: -1 }, [`${x}_half1`, `${x}_half2`]);
    const rotated = g.op('Concat', [g.op('Neg', [x2!]), x1!], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
}

/** The additive masks, [B, 1, S, T] -> [B, 1, 1, S, T]: one for every KV head and group. */
function attentionMasks(g: GraphBuilder, text: TextConfig, variant: DecoderVariant, inputs: ReturnType<typeof decoderInputs>): Decoder['masks'] {
  const forAllHeads = (bias: string | null) => (bias ? g.op('Unsqueeze', [bias, g.int64s([2])]) : null);
  const full = forAllHeads(inputs.attentionBias);
  const sliding = inputs.slidingBias
    ? forAllHeads(inputs.slidingBias)
    : variant === 'merged' && inputs.hasSlidingLayers
      ? slidingWindowInGraph(g, inputs.embeds, inputs.pastKeys[0]!, text.sliding_window!)
      : null;
  return { full, sliding };
}

/** Layer i's norms and projections; int8 models move outlier channels into the weights (int8Smoothing.ts). */
function layerParts(d: Decoder, i: number): LayerParts {
  const { g, checkpoint, H, heads, kvHeads, headDim, I } = d;
  const shapes: Record<(typeof GEMMA_LINEAR_PARTS)[number], [number, number]> = {
    'self_attn.q_proj.weight': [heads * headDim, H],
    'self_attn.k_proj.weight': [kvHeads * headDim, H],
    'self_attn.v_proj.weight': [kvHeads * headDim, H],
    'self_attn.o_proj.weight': [H, heads * headDim],
    'mlp.gate_proj.weight': [I, H],
    'mlp.up_proj.weight': [I, H],
    'mlp.down_proj.weight': [H, I],
  };
  const w = (part: string, shape: number[]) => () => loadWeight(checkpoint, textNames.layer(i, part), shape);
  const prefix = `layers.${i}`;
  const load = (part: string) => loadWeight(checkpoint, textNames.layer(i, part), part.endsWith('layernorm.weight') ? [H] : shapes[part as keyof typeof shapes]);
  const smoothing = d.dtype === 'int8' ? smoothGemmaLayer(load, d.mlpNorm, H, I) : null;
  const eps = d.text.rms_norm_eps;
  const norm = (x: string, part: string) => rmsNorm(g, x, `${prefix}.${part}`, w(`${part}.weight`, [H]), H, eps, d.precision, smoothing?.normDivisors(part));
  const fusedNorm = (x: string, delta: string | null, part: string) => {
    const scale = () => rmsNormScale(w(`${part}.weight`, [H])(), smoothing?.normDivisors(part)?.());
    return fusedRmsNorm(g, x, delta, `${prefix}.${part}`, scale, H, eps);
  };
  return {
    norm: (x, part) => (d.fused ? fusedNorm(x, null, part).normed : norm(x, part)),
    addAndNorm: (hidden, delta, part) => {
      if (d.fused) return fusedNorm(hidden, delta, part);
      const sum = delta ? g.op('Add', [hidden, delta]) : hidden;
      return { sum, normed: norm(sum, part) };
    },
    project: (x, part) => {
      const [out, inp] = shapes[part];
      const source = smoothing ? smoothing.weight(part) : w(part, [out, inp]);
      return linear(g, x, `${prefix}.${part.replace(/\.weight$/, '')}`, source, out, inp, d.dtype, undefined, d.activationScales);
    },
  };
}

/**
 * One Gemma layer: x + attention(norm(x)), then x + mlp(norm(x)). Takes the stream as hidden + delta and
 * returns it so: the MLP's output is left for the next norm to add.
 */
function decoderLayer(d: Decoder, i: number, hidden: string, delta: string | null, pastKeys: string, pastValues: string): { hidden: string; delta: string } {
  const parts = layerParts(d, i);
  const beforeAttention = parts.addAndNorm(hidden, delta, 'input_layernorm');
  const attended = attention(d, parts, i, beforeAttention.normed, pastKeys, pastValues);
  const beforeMlp = parts.addAndNorm(beforeAttention.sum, attended, d.mlpNorm);
  return { hidden: beforeMlp.sum, delta: mlp(d, parts, beforeMlp.normed) };
}

/**
 * Self-attention with grouped KV heads, queries [B, KV, G, S, hd] against keys [B, KV, 1, T, hd]. Writes the
 * layer's keys and values as outputs: the chunk's (masked) or the whole cache's (merged).
 */
function attention(d: Decoder, parts: LayerParts, i: number, normed: string, pastKeys: string, pastValues: string): string {
  const { g, text, heads, kvHeads, headDim, precision } = d;
  const groups = heads / kvHeads;
  const q = d.rotate(transpose(g, reshape(g, parts.project(normed, 'self_attn.q_proj.weight'), [0, 0, heads, headDim]), [0, 2, 1, 3]));
  const k = d.rotate(transpose(g, reshape(g, parts.project(normed, 'self_attn.k_proj.weight'), [0, 0, kvHeads, headDim]), [0, 2, 1, 3]));
  const v = transpose(g, reshape(g, parts.project(normed, 'self_attn.v_proj.weight'), [0, 0, kvHeads, headDim]), [0, 2, 1, 3]);
  const keys = g.op('Concat', [pastKeys, k], { axis: 2 });
  const values = g.op('Concat', [pastValues, v], { axis: 2 });
  if (d.variant === 'masked') {
    g.output(k, chunkName(i, 'key'), precision, ['batch_size', kvHeads, 'sequence_length', headDim]);
    g.output(v, chunkName(i, 'value'), precision, ['batch_size', kvHeads, 'sequence_length', headDim]);
  } else {
    g.output(keys, `present.${i}.key`, precision, ['batch_size', kvHeads, 'total_sequence_length', headDim]);
    g.output(values, `present.${i}.value`, precision, ['batch_size', kvHeads, 'total_sequence_length', headDim]);
  }

  const scaling = d.generation === 2 ? (text.query_pre_attn_scalar as number) ** -0.5 : headDim ** -0.5;
  const groupedQ = reshape(g, q, [0, kvHeads, groups, -1, headDim]);
  const keysT = transpose(g, g.op('Unsqueeze', [keys, g.int64s([2])]), [0, 1, 2, 4, 3]);
  let scores = g.op('Mul', [g.op('MatMul', [groupedQ, keysT]), g.scalar(scaling, precision)]);
  if (d.generation === 2 && text.attn_logit_softcapping !== null) scores = softcap(g, scores, text.attn_logit_softcapping, precision);
  // The mask and softmax run in float32 (HF's softmax(dtype=float32)); a float16 mask would overflow.
  if (precision === 'float16') scores = cast(g, scores, 'float32');
  const mask = text.layer_types[i] === 'sliding_attention' && d.masks.sliding ? d.masks.sliding : d.masks.full;
  if (mask) scores = g.op('Add', [scores, mask]);
  const probabilities = d.inPrecision(g.op('Softmax', [scores], { axis: -1 }));
  const attended = g.op('MatMul', [probabilities, g.op('Unsqueeze', [values, g.int64s([2])])]);
  const merged = reshape(g, transpose(g, reshape(g, attended, [0, heads, -1, headDim]), [0, 2, 1, 3]), [0, 0, heads * headDim]);
  const out = parts.project(merged, 'self_attn.o_proj.weight');
  return d.generation === 2 ? parts.norm(out, 'post_attention_layernorm') : out;
}

/** The gated MLP, down(act(gate(x)) * up(x)) of its normed input, with Gemma 2's norm after it. */
function mlp(d: Decoder, parts: LayerParts, input: string): string {
  const { g } = d;
  const gateProjected = parts.project(input, 'mlp.gate_proj.weight');
  const gate = d.fused && isTanhGelu(d.text.hidden_activation)
    ? fastGeluTanh(g, gateProjected)
    : activation(g, gateProjected, d.text.hidden_activation, d.precision);
  const out = parts.project(g.op('Mul', [gate, parts.project(input, 'mlp.up_proj.weight')]), 'mlp.down_proj.weight');
  return d.generation === 2 ? parts.norm(out, 'post_feedforward_layernorm') : out;
}

/** The final norm and the LM head (tied to the input embeddings), for the last position only when masked. */
function lmHead(d: Decoder, hidden: string, delta: string | null, vocabSize: number): void {
  const { g, checkpoint, text, H, precision } = d;
  const weight = (name: string, shape: number[]) => () => loadWeight(checkpoint, name, shape);
  const head = d.dtype === 'int8'
    ? once(() => smoothAfterNorm(gemmaNormRanges(loadWeight(checkpoint, textNames.finalNorm, [H])), [loadWeight(checkpoint, lmHeadName(checkpoint), [vocabSize, H])], H))
    : null;
  const divisors = head ? () => head().divisors : undefined;
  if (d.fused) {
    const scale = () => rmsNormScale(loadWeight(checkpoint, textNames.finalNorm, [H]), divisors?.());
    hidden = fusedRmsNorm(g, hidden, delta, 'final_norm', scale, H, text.rms_norm_eps).normed;
  } else {
    if (delta) hidden = g.op('Add', [hidden, delta]);
    hidden = rmsNorm(g, hidden, 'final_norm', weight(textNames.finalNorm, [H]), H, text.rms_norm_eps, precision, divisors);
  }
  if (d.variant === 'masked') {
    hidden = g.op('Slice', [hidden, g.int64s([-1]), g.int64s([2 ** 53 - 1]), g.int64s([1])]);
  }
  const headWeight = head ? () => head().weights[0]! : weight(lmHeadName(checkpoint), [vocabSize, H]);
  let logits = linear(g, hidden, 'lm_head', headWeight, vocabSize, H, d.dtype, undefined, d.activationScales);
  if (d.generation === 2 && text.final_logit_softcapping !== null) logits = softcap(g, logits, text.final_logit_softcapping, precision);
  if (precision === 'float16') logits = cast(g, logits, 'float32');
  g.output(logits, 'logits', 'float32', ['batch_size', d.variant === 'masked' ? 1 : 'sequence_length', vocabSize]);
}

/**
 * The LM head is the input embedding matrix unless the config unties them (tie_word_embeddings false, in
 * text_config or at the top): HF re-ties a stored lm_head.weight to the embeddings otherwise.
 */
function lmHeadName(checkpoint: Checkpoint): string {
  const raw = checkpoint.config.raw;
  const textConfig = (raw.text_config ?? {}) as Record<string, unknown>;
  const tied = (textConfig.tie_word_embeddings ?? raw.tie_word_embeddings ?? true) !== false;
  if (tied || !checkpoint.tensors.has(textNames.lmHead)) return textNames.embedTokens;
  return textNames.lmHead;
}
