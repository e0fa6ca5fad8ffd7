/**
 * Where int8 models migrate outlier channels into the weights (onnx/smoothing.ts), for Gemma and SigLIP.
 * Gemma: input_layernorm into q/k/v; the MLP's norm into gate/up; up_proj's rows into down_proj's columns;
 * the final norm into the LM head. SigLIP: layer_norm1 into q/k/v, layer_norm2 into fc1, post_layernorm
 * into the projector. Each is exact in real arithmetic; only the rounding to 8 bits changes.
 *
 * fc2's inputs cannot be migrated into fc1 (GELU sits between them), yet a few large rows of fc1 make a
 * few of fc2's input channels large for every patch. Measured on the outlier model (`pali forge
 * --outliers`, tiny): int8 agreed with fp32 on 87.5% of 64 teacher-forced steps with a worst logit cosine
 * of 0.894, against 95.3% and 0.981 with fc2 in float32. So where fc1's rows show outliers, the graph
 * divides fc2's input by s on every call (one element-wise pass) and fc2's columns take s.
 */
import { divideRows, hasOutlierChannels, migrationScales, once, rowRanges, scaleColumns, smoothAfterNorm } from '../onnx/smoothing.js';

/** Gemma's RMSNorm multiplies by (1 + w): the channel ranges are |1 + w|. */
export function gemmaNormRanges(weight: Float32Array): Float32Array {
  return weight.map((w) => Math.abs(1 + w));
}

type Load = (part: string) => Float32Array;

export interface SmoothedGemmaLayer {
  /** What a norm's scale is divided by, for the two norms that feed linear layers. */
  normDivisors(part: string): (() => Float32Array) | undefined;
  /** A linear part's weight [out, in], smoothed. */
  weight(part: string): () => Float32Array;
}

/** `mlpNorm` is the norm before the MLP: post_attention_layernorm in Gemma 1, pre_feedforward_layernorm in Gemma 2. */
export function smoothGemmaLayer(load: Load, mlpNorm: string, hidden: number, intermediate: number): SmoothedGemmaLayer {
  const attention = once(() => smoothAfterNorm(
    gemmaNormRanges(load('input_layernorm.weight')),
    ['q_proj', 'k_proj', 'v_proj'].map((p) => load(`self_attn.${p}.weight`)),
    hidden,
  ));
  const mlp = once(() => {
    const { divisors, weights: [gate, up] } = smoothAfterNorm(gemmaNormRanges(load(`${mlpNorm}.weight`)), [load('mlp.gate_proj.weight'), load('mlp.up_proj.weight')], hidden);
    const down = load('mlp.down_proj.weight');
    const s = migrationScales(rowRanges(up!, hidden), [down], intermediate);
    return { divisors, gate: gate!, up: divideRows(up!, hidden, s), down: scaleColumns(down, intermediate, s) };
  });
  const weights: Record<string, () => Float32Array> = {
    'self_attn.q_proj.weight': () => attention().weights[0]!,
    'self_attn.k_proj.weight': () => attention().weights[1]!,
    'self_attn.v_proj.weight': () => attention().weights[2]!,
    'mlp.gate_proj.weight': () => mlp().gate,
    'mlp.up_proj.weight': () => mlp().up,
    'mlp.down_proj.weight': () => mlp().down,
  };
  return {
    normDivisors: (part) => (part === 'input_layernorm' ? () => attention().divisors : part === mlpNorm ? () => mlp().divisors : undefined),
    weight: (part) => weights[part] ?? (() => load(part)),
  };
}

/** A LayerNorm (scale and bias) and the linear layers that read it, smoothed. */
export function smoothLayerNorm(scale: Float32Array, bias: Float32Array, weights: Float32Array[], cols: number): { scale: Float32Array; bias: Float32Array; weights: Float32Array[] } {
  const smoothed = smoothAfterNorm(scale.map((v, j) => Math.abs(v) + Math.abs(bias[j]!)), weights, cols);
  const s = smoothed.divisors;
  return { scale: scale.map((v, j) => v / s[j]!), bias: bias.map((v, j) => v / s[j]!), weights: smoothed.weights };
}

export interface SmoothedSiglipMlp {
  norm: { scale: Float32Array; bias: Float32Array };
  fc1: Float32Array;
  /** fc2's weight, loaded and smoothed when it is written. */
  fc2: () => Float32Array;
  /** What fc2's input is divided by in the graph, or null when fc1's rows show no outlier channels. */
  fc2InputDivisors: Float32Array | null;
}

/** layer_norm2 into fc1 (exact), and fc2's outlier input channels into fc2's columns (a pass in the graph). */
export function smoothSiglipMlp(normScale: Float32Array, normBias: Float32Array, fc1: Float32Array, fc1Bias: Float32Array, loadFc2: () => Float32Array, hidden: number, intermediate: number): SmoothedSiglipMlp {
  const { scale, bias, weights: [smoothedFc1] } = smoothLayerNorm(normScale, normBias, [fc1], hidden);
  // Channel j of fc2's input is GELU(fc1's row j . x + b_j): its range follows |row j| and |b_j|.
  const ranges = rowRanges(smoothedFc1!, hidden).map((r, j) => r + Math.abs(fc1Bias[j]!));
  if (!hasOutlierChannels(ranges)) return { norm: { scale, bias }, fc1: smoothedFc1!, fc2: loadFc2, fc2InputDivisors: null };
  // s depends on fc2's columns: fc2 is read once here for them, and again when it is written.
  const s = migrationScales(ranges, [loadFc2()], intermediate);
  return { norm: { scale, bias }, fc1: smoothedFc1!, fc2: () => scaleColumns(loadFc2(), intermediate, s), fc2InputDivisors: s };
}
