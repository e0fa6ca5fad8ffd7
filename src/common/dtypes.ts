/**
 * The weight precisions a user can choose, in one place: the settings (package.json), the CLI's --dtype,
 * the protocol and the engine all read them from here.
 */

/**
 * What runs: exact float32, float16 weights and activations, 4-bit weights (MatMulNBits), or int8
 * weights on the integer GEMM with activations quantized per token.
 */
export type ModelDtype = 'fp32' | 'fp16' | 'int4' | 'int8';
/** What a user asks for: `auto` picks by device (see dtypeForDevice). */
export type DtypeChoice = 'auto' | ModelDtype;

export const DTYPE_CHOICES: readonly DtypeChoice[] = ['auto', 'int4', 'int8', 'fp16', 'fp32'];

/**
 * `auto`: int4 on a CPU, where decoding is bound by how many weight bytes stream from memory, and where a
 * 3B model in fp32 needs ~12 GB; fp16 on a GPU, whose kernels are built for it.
 */
export function dtypeForDevice(device: string): ModelDtype {
  return device === 'cuda' || device === 'webgpu' ? 'fp16' : 'int4';
}

export function parseDtypeChoice(value: string): DtypeChoice | undefined {
  if (value === 'q4') return 'int4';
  return (DTYPE_CHOICES as readonly string[]).includes(value) ? (value as DtypeChoice) : undefined;
}
