/**
 * Where int8 models migrate outlier channels into the weights (onnx/smoothing.ts), for Gemma and SigLIP.
 * Gemma: input_layernorm into q/k/v; the MLP's norm into gate/up; up_proj's rows into down_proj's columns;
 * the final norm into the LM head. SigLIP: layer_norm1 into q/k/v, layer_norm2 into fc1, post_layernorm
 * into the projector (fc1 into fc2 is not exact: GELU sits between them). Each is exact in real
 * arithmetic; only the rounding to 8 bits changes.
 */
import { divideRows, migrationScales, once, rowRanges, scaleColumns, smoothAfterNorm } from '../onnx/smoothing.js';

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
