/**
 * The building blocks that SigLIP and Gemma share, written with plain ONNX ops in float32 so that every
 * runtime (ORT CPU, CUDA, WebGPU, WASM) runs them, with the same operation order as HF's PyTorch code.
 */
import type { ElementType, GraphBuilder } from './graphBuilder.js';
import { quantizeInt4, type QuantizedWeight } from './quantize.js';

export type WeightDtype = 'fp32' | 'int4';

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
 * A linear layer y = x W^T (+ b) from HF's weight layout W [out, in]. fp32 stores W^T for MatMul;
 * int4 uses MatMulNBits with block size 32.
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
): string {
  let y: string;
  if (dtype === 'int4') {
    let quantized: QuantizedWeight | undefined;
    const q = () => (quantized ??= quantizeInt4(weight(), outFeatures, inFeatures, 32));
    const blocksPerRow = Math.ceil(inFeatures / 32);
    const packed = g.weight(`${name}.qweight`, () => q().packed, [outFeatures, blocksPerRow, 16], 'uint8');
    const scales = g.weight(`${name}.scales`, () => q().scales, [outFeatures * blocksPerRow]);
    const zeros = g.weight(`${name}.zero_points`, () => q().zeroPoints, [outFeatures * Math.ceil(blocksPerRow / 2)], 'uint8');
    y = g.microsoftOp('MatMulNBits', [x, packed, scales, zeros], { K: inFeatures, N: outFeatures, bits: 4, block_size: 32 });
  } else {
    const w = g.weight(`${name}.weight_t`, () => transpose2d(weight(), outFeatures, inFeatures), [inFeatures, outFeatures]);
    y = g.op('MatMul', [x, w]);
  }
  if (bias) y = g.op('Add', [y, g.weight(`${name}.bias`, bias, [outFeatures])]);
  return y;
}

export function layerNorm(g: GraphBuilder, x: string, name: string, weight: Float32Array, bias: Float32Array, eps: number): string {
  const w = g.weight(`${name}.weight`, weight, [weight.length]);
  const b = g.weight(`${name}.bias`, bias, [bias.length]);
  return g.op('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
}

/**
 * Gemma's RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + weight), in float32. (1 + weight) is folded into the
 * stored scale; float32 addition is what HF does at run time, so the product is the same.
 */
export function rmsNorm(g: GraphBuilder, x: string, name: string, weight: () => Float32Array, size: number, eps: number): string {
  const scale = () => weight().map((w) => 1 + w);
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  const inverseRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(eps)])])]);
  return g.op('Mul', [g.op('Mul', [x, inverseRms]), g.weight(`${name}.scale`, scale, [size])]);
}

/** PyTorch's gelu(approximate="tanh"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(g: GraphBuilder, x: string): string {
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.scalar(Math.SQRT2 * (2 / Math.sqrt(Math.PI)) * 0.5), g.op('Add', [x, g.op('Mul', [g.scalar(0.044715), cube])])]);
  return g.op('Mul', [g.op('Mul', [g.scalar(0.5), x]), g.op('Add', [g.scalar(1), g.op('Tanh', [inner])])]);
}

/** The exact (erf) GELU, for configs that ask for "gelu". */
export function geluErf(g: GraphBuilder, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [g.scalar(0.5), x]), g.op('Add', [g.scalar(1), erf])]);
}

export function activation(g: GraphBuilder, x: string, kind: string): string {
  return kind === 'gelu' ? geluErf(g, x) : geluTanh(g, x);
}

/** tanh(x / cap) * cap, Gemma 2's soft-capping. */
export function softcap(g: GraphBuilder, x: string, cap: number): string {
  return g.op('Mul', [g.op('Tanh', [g.op('Div', [x, g.scalar(cap)])]), g.scalar(cap)]);
}

export function reshape(g: GraphBuilder, x: string, shape: number[]): string {
  return g.op('Reshape', [x, g.int64s(shape)]);
}

export function transpose(g: GraphBuilder, x: string, perm: number[]): string {
  return g.op('Transpose', [x], { perm });
}

export type { ElementType };
