/**
 * A linear layer on ONNX Runtime's u8 x s8 integer GEMM, the kernel its own dynamic quantization produces
 * and the fastest GEMM its CPU provider has (VNNI and AMX paths in MLAS): on the 3B's MLP shape it runs a
 * 262-token prefix 4-7 times faster than MatMulNBits or fp32 MatMul (issue #22).
 *
 * Weights: symmetric int8, one scale per output channel (quantizePerChannelInt8).
 * Activations: quantized in the graph on every call, one symmetric scale per token (max |x| of the row /
 * 127). One scale for the whole tensor, which is what DynamicQuantizeMatMul does, is not good enough: a
 * token with massive activations (LLMs have a few, e.g. at <bos>) sets the scale and rounds every other
 * token to a handful of levels (test/engine/onnx/int8Linear.test.ts shows it). The GEMM takes a single
 * zero point for A, so per-token ranges are symmetric around a shared zero point of 128: codes are
 * round(x / step) + 128 in [1, 255].
 *
 * The ops, chosen by measurement (2 cores, AVX-512 VNNI), give the same numbers to the bit as MatMulInteger
 * followed by Cast and two Muls, in fewer passes over memory and fewer ops per step:
 * - QuantizeLinear with one scale per row divides, rounds, shifts and narrows in one pass (five
 *   element-wise ops read and wrote the whole activation before);
 * - com.microsoft's MatMulIntegerToFloat applies the weights' per-channel scales in the GEMM's output
 *   stage, and the per-token step in one more pass (MatMulInteger wrote int32 for a Cast and two Muls);
 * - layers that read the same input (q, k and v; gate and up) share its quantization.
 * On the int8 3B at 448 px (1,030-token OCR prefix, warm page cache) that took the prefill from 5.85 to
 * 4.5 s, the vision tower from 1.8 to 1.5 s, and decode from 12 to 16 tokens/s (7 ops per layer, not 12).
 */
import { type GraphBuilder } from './graphBuilder.js';
import { quantizePerChannelInt8, type ChannelQuantizedWeight } from './quantize.js';

/** Per-token is what the engine runs; per-tensor exists to show, in tests and the bench, why it is not used. */
export type ActivationScales = 'per-token' | 'per-tensor';

/** Zero points sit at 128 so that the symmetric codes of a row fill [1, 255]. */
const ACTIVATION_ZERO_POINT = 128;
const LEVELS = 127;
/** Keeps an all-zero row's step above zero (0 / step is then 0, not NaN). */
const SMALLEST_RANGE = 1e-30;

/** An activation as the integer GEMM reads it: uint8 codes of x's shape, and x ~ (codes - 128) x step. */
interface QuantizedActivation {
  codes: string;
  /** [..., 1] per token, or one element for the whole tensor. */
  step: string;
}

/** y = x W^T (+ bias) for HF's W [N, K], with int8 weights and x quantized per token in the graph. */
export function int8Linear(
  g: GraphBuilder,
  x: string,
  name: string,
  weight: () => Float32Array,
  N: number,
  K: number,
  scales: ActivationScales = 'per-token',
  bias?: () => Float32Array,
): string {
  let quantized: ChannelQuantizedWeight | undefined;
  const q = () => (quantized ??= quantizePerChannelInt8(weight(), N, K));
  const weightCodes = g.weight(`${name}.weight_int8`, () => q().values, [K, N], 'int8');
  const weightSteps = g.weight(`${name}.weight_scale`, () => q().scales, [N]);
  const { codes, step } = g.once(`int8-activation:${x}:${scales}`, () => quantizeActivation(g, x, K, scales));
  const zeroPoint = g.scalar(ACTIVATION_ZERO_POINT, 'uint8');
  const y = g.microsoftOp('MatMulIntegerToFloat', [codes, weightCodes, step, weightSteps, zeroPoint]);
  // Not the op's own bias input: with one A scale per row, ONNX Runtime adds the bias in the GEMM's output
  // stage and multiplies by the rows' steps afterwards, which would scale the bias too.
  return bias ? g.op('Add', [y, g.weight(`${name}.bias`, bias, [N])]) : y;
}

function quantizeActivation(g: GraphBuilder, x: string, K: number, scales: ActivationScales): QuantizedActivation {
  const zeroPoint = g.scalar(ACTIVATION_ZERO_POINT, 'uint8');
  const range = g.op('ReduceMax', [g.op('Abs', [x])], scales === 'per-token' ? { axes: [-1], keepdims: 1 } : { keepdims: 0 });
  const step = g.op('Div', [g.op('Max', [range, g.scalar(SMALLEST_RANGE)]), g.scalar(LEVELS)]);
  if (scales === 'per-tensor') return { codes: g.op('QuantizeLinear', [x, step, zeroPoint]), step };
  // QuantizeLinear takes one scale per index of a single axis: rows of a [tokens, K] view, with a zero
  // point per row as well.
  const rowSteps = g.op('Reshape', [step, g.int64s([-1])]);
  const rowZeroPoints = g.op('Expand', [zeroPoint, g.op('Shape', [rowSteps])]);
  const rows = g.op('QuantizeLinear', [g.op('Reshape', [x, g.int64s([-1, K])]), rowSteps, rowZeroPoints], { axis: 0 });
  return { codes: g.op('Reshape', [rows, g.op('Shape', [x])]), step };
}
