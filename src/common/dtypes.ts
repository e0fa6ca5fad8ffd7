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
 * `auto`: fp16 on a GPU, whose kernels are built for it. On a CPU, int8 where it has integer dot products
 * (AVX-512 VNNI, AVX-VNNI, AMX, ARM dotprod): its integer GEMM runs the prefix 3-4 times faster than
 * int4's MatMulNBits, decodes as fast and peaks at the same memory (`npm run bench`, 3B at 224 px on AMX:
 * first token 1.7 s against 5.6 s, 8.6 against 8.8 tokens/s, 3.28 against 3.22 GB). Elsewhere int4, the
 * smallest: int8's gain there is unmeasured. WebAssembly runs int4.
 */
export function dtypeForDevice(device: string, integerDotProduct = false): ModelDtype {
  return autoDtype(device, { integerDotProduct, kernel: '' }).dtype;
}

/**
 * `auto`'s choice and why, for the status bar's tooltip and `pali`'s progress line. `cpu` is the CPU's
 * integer dot products and the kernel they select, or 'export' for an onnx-community export, whose int8
 * files (if any) are another quantizer's (per-tensor activations): there a CPU runs int4.
 */
export function autoDtype(
  device: string,
  cpu: { integerDotProduct: boolean; kernel: string } | 'export',
  /** WebGPU's adapter: whether it runs float16 shaders (shader-f16), when known. */
  gpu: { float16: boolean | null } = { float16: null },
): { dtype: ModelDtype; reason: string } {
  if (device === 'webgpu' && gpu.float16 === false) {
    return { dtype: 'int4', reason: 'int4: this WebGPU adapter has no float16 support (shader-f16), and int4 weights with float32 activations run everywhere' };
  }
  if (device === 'cuda' || device === 'webgpu') return { dtype: 'fp16', reason: `fp16 on a GPU (${device})` };
  if (device !== 'cpu') return { dtype: 'int4', reason: `int4 on ${device}` };
  if (cpu === 'export') return { dtype: 'int4', reason: "int4: an export's int4 files on a CPU" };
  return cpu.integerDotProduct
    ? { dtype: 'int8', reason: `int8: this CPU has integer dot products (${cpu.kernel}), where 8-bit GEMMs answer first fastest` }
    : { dtype: 'int4', reason: `int4: this CPU has no integer dot-product instructions (${cpu.kernel}), so the smallest weights` };
}

export function parseDtypeChoice(value: string): DtypeChoice | undefined {
  if (value === 'q4') return 'int4';
  return (DTYPE_CHOICES as readonly string[]).includes(value) ? (value as DtypeChoice) : undefined;
}
