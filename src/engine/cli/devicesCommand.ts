/**
 * `pali devices`: every device the engine knows, whether `auto` would use it and why, its adapter where
 * there is one (the Vulkan drivers WebGPU would run on, software or not), and the weights `auto` runs there.
 */
import { autoDtype, type ModelDtype } from '../../common/dtypes.js';
import { defaultCacheRoot } from '../convert/convert.js';
import { thisCpu } from '../runtime/cpuFeatures.js';
import { candidateDevices, deviceUnavailableReason, type Device } from '../runtime/device.js';
import { vulkanDrivers } from '../runtime/vulkanDrivers.js';
import { probeWebGpu, webgpuAutoVerdict } from '../runtime/webgpuProbe.js';
import { parse, text } from './args.js';
import type { Io } from './modelArgs.js';

export interface DeviceReport {
  device: Device;
  /** Whether `auto` tries it (CUDA is only known to work once a session is made). */
  usedByAuto: boolean;
  /** Why not, one sentence. */
  reason?: string;
  /** The adapter: the CPU's model, or the Vulkan drivers WebGPU would run on. */
  adapters: { name: string; software: boolean }[];
  /** What `auto` loads there, and why. */
  dtype: ModelDtype;
  dtypeReason: string;
  /** The probe's timings of a small graph, WebGPU against the CPU provider. */
  probe?: { webgpuMs?: number; cpuMs?: number; float16: boolean | null };
}

export async function deviceReports(cacheRoot: string): Promise<DeviceReport[]> {
  const cpu = thisCpu();
  const reports: DeviceReport[] = [];
  for (const device of candidateDevices('auto')) {
    let reason = deviceUnavailableReason(device) ?? undefined;
    let probe: DeviceReport['probe'];
    let float16: boolean | null = null;
    if (!reason && device === 'webgpu') {
      reason = (await webgpuAutoVerdict(cacheRoot)) ?? undefined;
      const verdict = await probeWebGpu(cacheRoot);
      float16 = verdict.float16;
      probe = { webgpuMs: verdict.webgpuMs, cpuMs: verdict.cpuMs, float16 };
    }
    const adapters = device === 'webgpu' ? uniqueAdapters()
      : device === 'cpu' || device === 'wasm' ? [{ name: cpu.model, software: false }]
      : [];
    const auto = autoDtype(device, { integerDotProduct: cpu.integerDotProduct, kernel: cpu.integerGemm }, { float16 });
    reports.push({ device, usedByAuto: !reason, ...(reason ? { reason } : {}), adapters, dtype: auto.dtype, dtypeReason: auto.reason, ...(probe ? { probe } : {}) });
  }
  return reports;
}

/** The Vulkan drivers by name (Mesa installs two Intel drivers, anv and hasvk). */
function uniqueAdapters(): DeviceReport['adapters'] {
  const seen = new Map<string, boolean>();
  for (const driver of vulkanDrivers()) seen.set(driver.name, driver.software);
  return [...seen].map(([name, software]) => ({ name, software }));
}

export async function devicesCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' }, 'cache-dir': { type: 'string' } });
  const reports = await deviceReports(text(values['cache-dir']) ?? defaultCacheRoot());
  if (values.json) {
    io.out(JSON.stringify({ devices: reports, auto: reports.find((r) => r.usedByAuto)?.device ?? null }) + '\n');
    return;
  }
  for (const report of reports) {
    const adapters = report.adapters.map((a) => `${a.name}${a.software ? ' (software)' : ''}`).join(', ');
    io.out(`${report.device}: ${report.usedByAuto ? 'auto tries it' : `auto skips it: ${report.reason}`}\n`);
    if (adapters) io.out(`  adapter: ${adapters}\n`);
    if (report.probe?.webgpuMs !== undefined && report.probe.cpuMs !== undefined) {
      io.out(`  probe: a 256x1024x1024 product in ${report.probe.webgpuMs.toFixed(1)} ms, ${report.probe.cpuMs.toFixed(1)} ms on the CPU provider; float16 ${report.probe.float16 ? 'yes' : 'no'}\n`);
    }
    io.out(`  weights with --dtype auto: ${report.dtypeReason}\n`);
  }
  const chosen = reports.find((r) => r.usedByAuto);
  io.out(`auto: ${chosen ? `tries ${reports.filter((r) => r.usedByAuto).map((r) => r.device).join(', then ')}` : 'nothing can run here'}\n`);
}
