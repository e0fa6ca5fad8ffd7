/**
 * The CPU's instruction sets that decide which GEMM kernels ONNX Runtime's MLAS runs, read from
 * /proc/cpuinfo on Linux; Apple silicon always has the ARM dot product; elsewhere they are unknown. MLAS picks its kernels at start-up
 * from the same CPUID bits: for the u8 x s8 integer GEMM (int8, and int4's accuracy_level 4), AMX tiles
 * where the kernel lets the process use them, else AVX-512 VNNI, else AVX-VNNI, else AVX2; for float32,
 * AVX-512F, else AVX2 with FMA. It does not report which one ran, so this is what these flags select.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface CpuFeatures {
  model: string;
  /**
   * Integer dot products (AVX-512 VNNI, AVX-VNNI, AMX, ARM's dotprod): where int8's integer GEMM runs 4-7
   * times faster than MatMulNBits (`npm run bench`), so `auto` picks int8 on them.
   */
  integerDotProduct: boolean;
  flags: Record<'avx2' | 'avx512f' | 'avx512_vnni' | 'avx_vnni' | 'amx_int8', boolean>;
  /** The u8 x s8 kernel these flags select. */
  integerGemm: string;
  summary: string;
}

export function cpuFeatures(): CpuFeatures {
  let info = '';
  try {
    info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // Not Linux: the flags stay unknown (false).
  }
  const flagLine = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
  const flags = {
    avx2: flagLine.has('avx2'),
    avx512f: flagLine.has('avx512f'),
    avx512_vnni: flagLine.has('avx512_vnni'),
    avx_vnni: flagLine.has('avx_vnni'),
    amx_int8: flagLine.has('amx_int8') && flagLine.has('amx_tile'),
  };
  const arm = os.arch() === 'arm64';
  const armDot = arm && (process.platform === 'darwin' || flagLine.has('asimddp'));
  const integerGemm = flags.amx_int8 ? 'AMX' : flags.avx512_vnni ? 'AVX-512 VNNI' : flags.avx_vnni ? 'AVX-VNNI'
    : armDot ? 'ARM dot product' : flags.avx2 ? 'AVX2' : info ? 'baseline SIMD' : 'unknown';
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const names: [keyof CpuFeatures['flags'], string][] = [['avx2', 'AVX2'], ['avx512f', 'AVX-512F'], ['avx512_vnni', 'AVX-512 VNNI'], ['avx_vnni', 'AVX-VNNI'], ['amx_int8', 'AMX-INT8']];
  const present = arm ? `ARM dot product ${armDot ? 'yes' : 'no'}` : names.map(([key, name]) => `${name} ${flags[key] ? 'yes' : 'no'}`).join(', ');
  return {
    model: `${model}, ${os.cpus().length} cores`,
    integerDotProduct: flags.amx_int8 || flags.avx512_vnni || flags.avx_vnni || armDot,
    flags,
    integerGemm,
    summary: `${present}; the integer GEMM (int8, int4's int8 activations) runs MLAS's ${integerGemm} kernel`,
  };
}

let cached: CpuFeatures | undefined;

/** This machine's features, read once. */
export function thisCpu(): CpuFeatures {
  return (cached ??= cpuFeatures());
}
