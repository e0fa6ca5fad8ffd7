/**
 * Fused forms of layers.ts's blocks, for the int8 graphs, which run on ONNX Runtime's CPU provider.
 *
 * A decode step of the int8 3B ran about 2,000 nodes, and at one token each node costs more in dispatch
 * (the thread pool's fork and join, 6-12 us) than in arithmetic: ONNX Runtime's profile put 22 ms of a
 * step in kernels other than the GEMMs and 13 ms in the gaps between nodes (issue #22). These contrib
 * kernels do in one node what layers.ts spells out in six to nine:
 * - SkipSimplifiedLayerNormalization: the residual Add and Gemma's RMSNorm (7 nodes), which also returns the
 *   sum for the next residual; SimplifiedLayerNormalization where there is nothing to add;
 * - RotaryEmbedding: rotate_half's Split, Neg, Concat and the Mul, Mul, Add (6 nodes), from the same cos and
 *   sin tables;
 * - FastGelu: PyTorch's gelu(approximate="tanh"), the same formula (9 nodes), and the bias before it.
 * They compute the same functions in float32, with another order of rounding; fp32, fp16 and int4 keep the
 * plain ops, which every provider runs and which the reference checks pin to HF's arithmetic.
 */
import type { GraphBuilder } from './graphBuilder.js';

/** RMSNorm of x (+ skip, when given): `normed`, and `sum` = x + skip, the residual stream's next value. */
export function fusedRmsNorm(
  g: GraphBuilder,
  x: string,
  skip: string | null,
  name: string,
  scale: () => Float32Array,
  size: number,
  eps: number,
): { normed: string; sum: string } {
  const gamma = g.weight(`${name}.scale`, scale, [size]);
  const epsilon = { float: eps };
  if (!skip) return { normed: g.op('SimplifiedLayerNormalization', [x, gamma], { axis: -1, epsilon }), sum: x };
  const [normed, , , sum] = g.node(
    'SkipSimplifiedLayerNormalization',
    [x, skip, gamma],
    { epsilon },
    [`${name}.normed`, '', '', `${name}.sum`],
    'com.microsoft',
  );
  return { normed: normed!, sum: sum! };
}

/**
 * Rotary position embedding of x [B, heads, S, head_dim] (rotate_half's layout, not interleaved), reading
 * cos and sin [positions, head_dim / 2] at position_ids [B, S].
 */
export function fusedRotary(g: GraphBuilder, x: string, positionIds: string, cosTable: string, sinTable: string): string {
  return g.microsoftOp('RotaryEmbedding', [x, positionIds, cosTable, sinTable], { interleaved: 0 });
}

/** gelu(approximate="tanh") of x (+ bias, added in the same pass): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function fastGeluTanh(g: GraphBuilder, x: string, bias?: string): string {
  return g.microsoftOp('FastGelu', bias ? [x, bias] : [x]);
}
