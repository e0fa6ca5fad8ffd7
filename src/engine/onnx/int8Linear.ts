/**
 * A linear layer on ONNX Runtime's u8 x s8 integer GEMM (MatMulInteger), the kernel its own dynamic
 * quantization produces and the fastest GEMM its CPU provider has (VNNI and AMX paths in MLAS): on the
 * 3B's MLP shape it runs a 262-token prefix 4-7 times faster than MatMulNBits or fp32 MatMul (issue #22).
 *
 * Weights: symmetric int8, one scale per output channel (quantizePerChannelInt8).
 * Activations: quantized in the graph on every call, one symmetric scale per token (max |x| of the row /
 * 127). One scale for the whole tensor, which is what DynamicQuantizeMatMul does, is not good enough: a
 * token with massive activations (LLMs have a few, e.g. at <bos>) sets the scale and rounds every other
 * token to a handful of levels (test/engine/onnx/int8Linear.test.ts shows it). MatMulInteger takes a
 * single zero point for A, so per-token ranges are symmetric around a shared zero point of 128: codes are
 * round(x / step) + 128 in [1, 255].
 */
import { CAST_TO, type GraphBuilder } from './graphBuilder.js';
import { quantizePerChannelInt8, type ChannelQuantizedWeight } from './quantize.js';

/** Per-token is what the engine runs; per-tensor exists to show, in tests and the bench, why it is not used. */
export type ActivationScales = 'per-token' | 'per-tensor';

/** Zero points sit at 128 so that the symmetric codes of a row fill [1, 255]. */
const ACTIVATION_ZERO_POINT = 128;
const LEVELS = 127;
/** Keeps an all-zero row's step above zero (0 / step is then 0, not NaN). */
const SMALLEST_RANGE = 1e-30;

/** y = x W^T for HF's W [N, K], with int8 weights and activations quantized per token in the graph. */
export function int8Linear(
  g: GraphBuilder,
  x: string,
  name: string,
  weight: () => Float32Array,
  N: number,
  K: number,
  scales: ActivationScales = 'per-token',
): string {
  let quantized: ChannelQuantizedWeight | undefined;
  const q = () => (quantized ??= quantizePerChannelInt8(weight(), N, K));
  const weightCodes = g.weight(`${name}.weight_int8`, () => q().values, [K, N], 'int8');
  const weightSteps = g.weight(`${name}.weight_scale`, () => q().scales, [N]);

  const range = g.op('ReduceMax', [g.op('Abs', [x])], scales === 'per-token' ? { axes: [-1], keepdims: 1 } : { keepdims: 1 });
  const step = g.op('Div', [g.op('Max', [range, g.scalar(SMALLEST_RANGE)]), g.scalar(LEVELS)]);
  const codes = g.op('Cast', [g.op('Add', [g.op('Round', [g.op('Div', [x, step])]), g.scalar(ACTIVATION_ZERO_POINT)])], { to: CAST_TO.uint8 });
  const accumulated = g.op('MatMulInteger', [codes, weightCodes, g.scalar(ACTIVATION_ZERO_POINT, 'uint8')]);
  return g.op('Mul', [g.op('Mul', [g.op('Cast', [accumulated], { to: CAST_TO.float32 }), weightSteps]), step]);
}
