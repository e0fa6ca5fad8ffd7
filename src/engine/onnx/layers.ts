/**
 * The building blocks that SigLIP and Gemma share, with the same operation order as HF's PyTorch code:
 * plain ONNX ops that every runtime (ORT CPU, CUDA, WebGPU, WASM) runs, in float32 or float16, plus
 * com.microsoft's MatMulNBits for block-quantized 4- and 8-bit weights and MatMulIntegerToFloat for int8.
 */
import { f32ToF16 } from '../checkpoint/floatFormats.js';
import { CAST_TO, type ElementType, type GraphBuilder } from './graphBuilder.js';
import { int8Linear, type ActivationScales } from './int8Linear.js';
import { quantizeBlockwise, zeroPointBytesPerRow, type QuantizationBits, type QuantizedWeight } from './quantize.js';

/**
 * How a component stores its linear layers' weights: float32, float16, block-quantized 4 or 8 bits
 * (MatMulNBits; `q8` is the vision tower of int4 models), or int8 per output channel on the integer GEMM.
 */
export type WeightDtype = 'fp32' | 'fp16' | 'int4' | 'q8' | 'int8';

/** The element type activations flow in: float16 only for fp16 weights. */
export type Precision = 'float32' | 'float16';

export function precisionOf(dtype: WeightDtype): Precision {
  return dtype === 'fp16' ? 'float16' : 'float32';
}

export function cast(g: GraphBuilder, x: string, to: Precision): string {
  return g.op('Cast', [x], { to: CAST_TO[to] });
}

/** [rows, cols] -> [cols, rows]. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

/**
 * MatMulNBits' accuracy_level: the lowest precision its activations may be computed in. 4 lets ORT's CPU
 * kernel quantize each block of activations to int8 and use integer dot products (VNNI/AVX-512 or
 * NEON dot), where 0 dequantizes the weights to float32 first. Measured in `npm run bench`.
 */
export const MATMUL_NBITS_ACCURACY_LEVEL = 4;

/** The block of K that shares one scale and zero point in MatMulNBits weights. */
export const QUANTIZATION_BLOCK = 32;

/**
 * A linear layer y = x W^T (+ b) from HF's weight layout W [out, in]. fp32 stores W^T for MatMul;
 * int4 and q8 use MatMulNBits with blocks of 32; int8 uses the integer GEMM (int8Linear.ts).
 */
export function linear(
  g: GraphBuilder,
  x: string,
  name: string,
  weight: () => Float32Array,
  outFeatures: number,
  inFeatures: number,
  dtype: WeightDtype,
  bias?: () => Float32Array,
  activationScales: ActivationScales = 'per-token',
): string {
  if (dtype === 'int8') return int8Linear(g, x, name, weight, outFeatures, inFeatures, activationScales, bias);
  let y: string;
  if (dtype === 'int4' || dtype === 'q8') {
    y = blockQuantizedLinear(g, x, name, weight, outFeatures, inFeatures, dtype === 'int4' ? 4 : 8);
  } else if (dtype === 'fp16') {
    const w = g.weight(`${name}.weight_t_fp16`, () => f32ToF16(transpose2d(weight(), outFeatures, inFeatures)), [inFeatures, outFeatures], 'float16');
    y = g.op('MatMul', [x, w]);
  } else {
    const w = g.weight(`${name}.weight_t`, () => transpose2d(weight(), outFeatures, inFeatures), [inFeatures, outFeatures]);
    y = g.op('MatMul', [x, w]);
  }
  if (bias) {
    const b = dtype === 'fp16'
      ? g.weight(`${name}.bias_fp16`, () => f32ToF16(bias()), [outFeatures], 'float16')
      : g.weight(`${name}.bias`, bias, [outFeatures]);
    y = g.op('Add', [y, b]);
  }
  return y;
}

function blockQuantizedLinear(g: GraphBuilder, x: string, name: string, weight: () => Float32Array, N: number, K: number, bits: QuantizationBits): string {
  let quantized: QuantizedWeight | undefined;
  const q = () => (quantized ??= quantizeBlockwise(weight(), N, K, bits, QUANTIZATION_BLOCK));
  const blocksPerRow = Math.ceil(K / QUANTIZATION_BLOCK);
  const packed = g.weight(`${name}.qweight`, () => q().packed, [N, blocksPerRow, (QUANTIZATION_BLOCK * bits) / 8], 'uint8');
  const scales = g.weight(`${name}.scales`, () => q().scales, [N * blocksPerRow]);
  const zeros = g.weight(`${name}.zero_points`, () => q().zeroPoints, [N * zeroPointBytesPerRow(blocksPerRow, bits)], 'uint8');
  return g.microsoftOp('MatMulNBits', [x, packed, scales, zeros], { K, N, bits, block_size: QUANTIZATION_BLOCK, accuracy_level: MATMUL_NBITS_ACCURACY_LEVEL });
}

export function layerNorm(g: GraphBuilder, x: string, name: string, weight: Float32Array, bias: Float32Array, eps: number): string {
  const w = g.weight(`${name}.weight`, weight, [weight.length]);
  const b = g.weight(`${name}.bias`, bias, [bias.length]);
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

/**
 * Gemma's RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + weight), in float32 whatever the model's dtype (HF
 * upcasts, then casts the result back). (1 + weight) is folded into the stored scale; float32 addition is
 * what HF does at run time, so the product is the same.
 */
export function rmsNorm(
  g: GraphBuilder,
  x: string,
  name: string,
  weight: () => Float32Array,
  size: number,
  eps: number,
  precision: Precision = 'float32',
  /** int8 models divide the scale by their smoothing factors (paligemma/int8Smoothing.ts). */
  divisors?: () => Float32Array,
): string {
  const scale = () => rmsNormScale(weight(), divisors?.());
  const input = precision === 'float16' ? cast(g, x, 'float32') : x;
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [input, input])], { axes: [-1], keepdims: 1 });
  const inverseRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(eps)])])]);
  const normed = g.op('Mul', [g.op('Mul', [input, inverseRms]), g.weight(`${name}.scale`, scale, [size])]);
  return precision === 'float16' ? cast(g, normed, 'float16') : normed;
}

/** Gemma's RMSNorm scale as stored: 1 + weight, divided by int8's smoothing factors where it has them. */
export function rmsNormScale(weight: Float32Array, divisors?: Float32Array): Float32Array {
  return weight.map((w, j) => (divisors ? (1 + w) / divisors[j]! : 1 + w));
}

/** PyTorch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(g: GraphBuilder, x: string, precision: Precision = 'float32'): string {
  const c = (value: number) => g.scalar(value, precision);
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [c(Math.SQRT2 * (2 / Math.sqrt(Math.PI)) * 0.5), g.op('Add', [x, g.op('Mul', [c(0.044715), cube])])]);
  return g.op('Mul', [g.op('Mul', [c(0.5), x]), g.op('Add', [c(1), g.op('Tanh', [inner])])]);
}

/** The exact (erf) GELU, for configs that ask for "gelu". */
export function geluErf(g: GraphBuilder, x: string, precision: Precision = 'float32'): string {
  const c = (value: number) => g.scalar(value, precision);
  const erf = g.op('Erf', [g.op('Mul', [x, c(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [c(0.5), x]), g.op('Add', [c(1), erf])]);
}

/** Whether a config's activation is the tanh GELU (gelu_pytorch_tanh and its aliases): all but "gelu". */
export function isTanhGelu(kind: string): boolean {
  return kind !== 'gelu';
}

export function activation(g: GraphBuilder, x: string, kind: string, precision: Precision = 'float32'): string {
  return isTanhGelu(kind) ? geluTanh(g, x, precision) : geluErf(g, x, precision);
}

/** tanh(x / cap) * cap, Gemma 2's soft-capping. */
export function softcap(g: GraphBuilder, x: string, cap: number, precision: Precision = 'float32'): string {
  return g.op('Mul', [g.op('Tanh', [g.op('Div', [x, g.scalar(cap, precision)])]), g.scalar(cap, precision)]);
}

export function reshape(g: GraphBuilder, x: string, shape: number[]): string {
  return g.op('Reshape', [x, g.int64s(shape)]);
}

export function transpose(g: GraphBuilder, x: string, perm: number[]): string {
  return g.op('Transpose', [x], { perm });
}

export type { ElementType };
