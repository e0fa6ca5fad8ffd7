/**
 * The CPU's instruction sets that decide which GEMM kernels ONNX Runtime's MLAS runs, read from
 * /proc/cpuinfo (Linux; elsewhere the bench says it could not tell). MLAS picks its kernels at start-up
 * from the same CPUID bits: for the u8 x s8 integer GEMM (int8, and int4's accuracy_level 4), AMX tiles
 * where the kernel lets the process use them, else AVX-512 VNNI, else AVX-VNNI, else AVX2; for float32,
 * AVX-512F, else AVX2 with FMA. It does not report which one ran, so this is what these flags select.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface CpuFeatures {
  model: string;
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
  const integerGemm = flags.amx_int8 ? 'AMX' : flags.avx512_vnni ? 'AVX-512 VNNI' : flags.avx_vnni ? 'AVX-VNNI' : flags.avx2 ? 'AVX2' : info ? 'SSE' : 'unknown (no /proc/cpuinfo)';
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const names: [keyof CpuFeatures['flags'], string][] = [['avx2', 'AVX2'], ['avx512f', 'AVX-512F'], ['avx512_vnni', 'AVX-512 VNNI'], ['avx_vnni', 'AVX-VNNI'], ['amx_int8', 'AMX-INT8']];
  const present = names.map(([key, name]) => `${name} ${flags[key] ? 'yes' : 'no'}`).join(', ');
  return { model: `${model}, ${os.cpus().length} cores`, flags, integerGemm, summary: `${present}; the integer GEMM (int8, int4's int8 activations) runs MLAS's ${integerGemm} kernel` };
}
