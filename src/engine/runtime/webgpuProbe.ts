/**
 * Whether `auto` should use WebGPU on this machine, decided by measurement and remembered per machine.
 *
 * A WebGPU adapter can be a GPU emulated on the CPU: Mesa's llvmpipe, SwiftShader, Windows' WARP. Dawn
 * accepts them, and then the model runs hundreds of times slower than on the CPU provider (the tiny
 * model's vision tower: 3.4 s on SwiftShader against 4 ms). onnxruntime-node exposes no adapter info, so
 * the probe runs a small graph (a 256 x 1024 x 1024 matrix product) on both providers in a child process
 * and keeps WebGPU only when it gives the CPU's answer and is faster. The child also keeps Dawn's and the
 * drivers' stderr lines away from the user. On Linux, where the Vulkan manifests name the drivers, a
 * machine with only software drivers is told without running anything.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import { InlineWeightStore } from '../onnx/weightStore.js';
import { gpuDeviceNodes, vulkanDrivers, type VulkanDriver } from './vulkanDrivers.js';

export interface WebGpuProbe {
  /** Why `auto` should not use WebGPU here, one plain sentence; null when it should. */
  unusable: string | null;
  /** The software driver WebGPU would run on, when that is known. */
  softwareAdapter: string | null;
  /** Whether WebGPU ran the test graph at all (it found an adapter and compiled its shaders). */
  ran: boolean;
  /** Whether the adapter runs float16 shaders (shader-f16); null when WebGPU did not run at all. */
  float16: boolean | null;
  webgpuMs?: number;
  cpuMs?: number;
}

const SHAPE = { rows: 256, inner: 1024, columns: 1024 };
/** fp32 on both sides: a real adapter differs by rounding only, far below this. */
const TOLERANCE = 1e-3;
/** A software adapter takes seconds; a driver that hangs must not hold a model load for longer. */
const PROBE_TIMEOUT_MS = 60_000;

/**
 * The software drivers WebGPU would run on, when nothing else can give it an adapter (Linux): every
 * installed Vulkan driver is a software one, or the GPU drivers beside them have no GPU device node.
 */
export function softwareOnlyVulkan(drivers: VulkanDriver[] = vulkanDrivers(), gpuNodes: string[] = gpuDeviceNodes()): string | null {
  const software = drivers.filter((d) => d.software);
  if (!software.length) return null;
  if (software.length < drivers.length && gpuNodes.length) return null;
  return [...new Set(software.map((d) => d.name))].join(' and ');
}

/** y = 3x through float16: fails on an adapter without shader-f16. */
function float16Model(): Uint8Array {
  const g = new GraphBuilder('webgpu_probe_f16', new InlineWeightStore());
  const x = g.input('x', 'float32', [4]);
  const half = g.op('Cast', [x], { to: 10 });
  g.output(g.op('Cast', [g.op('Mul', [half, g.scalar(3, 'float16')])], { to: 1 }), 'y', 'float32', [4]);
  return g.toModelBytes();
}

function probeModel(): Uint8Array {
  const g = new GraphBuilder('webgpu_probe', new InlineWeightStore());
  const x = g.input('x', 'float32', [SHAPE.rows, SHAPE.inner]);
  const weights = Float32Array.from({ length: SHAPE.inner * SHAPE.columns }, (_, i) => Math.cos(i * 0.11) * 0.05);
  const w = g.weight('w', weights, [SHAPE.inner, SHAPE.columns]);
  g.output(g.op('Tanh', [g.op('MatMul', [x, w])]), 'y', 'float32', [SHAPE.rows, SHAPE.columns]);
  return g.toModelBytes();
}

/** What the answer depends on: the runtime, the drivers and GPUs present, and the variables that pick them. */
function machineKey(): string {
  const hash = createHash('sha256');
  let ortVersion = 'unknown';
  try {
    ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    // Not resolvable as a package file in some bundles: the rest of the key still holds.
  }
  hash.update(`probe 3\n${ortVersion}\n${process.platform} ${process.arch} ${os.release()}\n`);
  for (const name of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'LD_LIBRARY_PATH', 'DRI_PRIME', 'MESA_VK_DEVICE_SELECT', 'CUDA_VISIBLE_DEVICES']) {
    hash.update(`${name}=${process.env[name] ?? ''}\n`);
  }
  for (const driver of vulkanDrivers()) hash.update(`${driver.manifest} ${mtimeOf(driver.manifest)}\n`);
  for (const node of listDir('/dev/dri')) hash.update(`dri ${node}\n`);
  return hash.digest('hex').slice(0, 16);
}

function mtimeOf(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The probe's child: dist/webgpuProbe.js beside the bundle, or the TypeScript source under tsx. */
function childCommand(): string[] {
  const built = path.join(__dirname, 'webgpuProbe.js');
  if (!__filename.endsWith('.ts') && fs.existsSync(built)) return [built];
  return ['--import', 'tsx', path.join(__dirname, 'webgpuProbeChild.ts')];
}

interface ChildResult {
  cpu: { ms?: number; output?: number[]; error?: string };
  webgpu: { ms?: number; output?: number[]; error?: string };
  float16?: { ok: boolean; error?: string };
}

/** Runs the child; its stderr (Dawn's and the drivers' lines) is read and dropped, never shown. */
function runChild(modelFile: string, float16File: string): Promise<{ result: ChildResult | null; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...childCommand(), modelFile, float16File, String(SHAPE.rows), String(SHAPE.inner)], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.resume();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, PROBE_TIMEOUT_MS);
    child.on('error', () => {});
    child.on('close', () => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1);
      let result: ChildResult | null = null;
      try {
        result = line ? (JSON.parse(line) as ChildResult) : null;
      } catch {
        result = null;
      }
      resolve({ result, timedOut });
    });
  });
}

/**
 * A WebGPU failure as a user can act on it: no source paths or C++ frames. `softwareOnly` is what
 * softwareOnlyVulkan() says of this machine.
 */
export function plainWebGpuError(message: string, softwareOnly: string | null = softwareOnlyVulkan()): string {
  if (/requires f16 but the device does not support it|shader-f16/i.test(message)) {
    return "this WebGPU adapter has no float16 support (shader-f16), which fp16 weights need: use --dtype int4 or fp32 with --device webgpu";
  }
  if (/no supported adapters|failed to get a webgpu adapter|requestadapter/i.test(message)) {
    if (softwareOnly) return `no adapter that WebGPU accepts was found: the only Vulkan driver with a device here is ${softwareOnly}, a software one, and no GPU driver has a GPU to drive`;
    if (process.platform === 'linux') {
      return "no GPU that WebGPU can use was found: on Linux it runs on Vulkan, so install your GPU's Vulkan driver (mesa-vulkan-drivers for Intel and AMD, NVIDIA's driver for NVIDIA)";
    }
    if (process.platform === 'win32') return 'no GPU that WebGPU can use was found: it needs a GPU with a Direct3D 12 driver';
    return 'no GPU that WebGPU can use was found';
  }
  const firstLine = message.split('\n')[0]!;
  const cleaned = firstLine
    .replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/g, '')
    .replace(/\S*\/onnxruntime_src\/\S*/g, '')
    .replace(/\S+\.(cc|cpp|h)(:\d+)?/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return `WebGPU failed: ${cleaned || 'the provider gave no reason'}`;
}

function verdictOf(result: ChildResult | null, timedOut: boolean): WebGpuProbe {
  const none = { ran: false, softwareAdapter: null, float16: null };
  if (timedOut) return { unusable: `WebGPU did not finish a small test graph in ${PROBE_TIMEOUT_MS / 1000} s: its adapter is a software or very slow one`, ...none };
  if (!result) return { unusable: 'the WebGPU probe ended without an answer (its driver crashed)', ...none };
  const { cpu, webgpu } = result;
  if (webgpu.error || webgpu.ms === undefined || !webgpu.output) return { unusable: plainWebGpuError(webgpu.error ?? 'no output'), ...none };
  const measured = { ran: true, softwareAdapter: null, float16: result.float16?.ok ?? false, webgpuMs: webgpu.ms, cpuMs: cpu.ms };
  if (cpu.error || cpu.ms === undefined || !cpu.output) return { unusable: null, ...measured };
  let worst = 0;
  for (let i = 0; i < cpu.output.length; i++) worst = Math.max(worst, Math.abs(cpu.output[i]! - webgpu.output[i]!));
  if (!(worst <= TOLERANCE)) return { unusable: `WebGPU computed a test graph wrongly (off by ${worst.toPrecision(2)} from the CPU provider)`, ...measured };
  if (webgpu.ms >= cpu.ms) {
    return {
      unusable: `WebGPU ran a test graph in ${webgpu.ms.toFixed(1)} ms and the CPU provider in ${cpu.ms.toFixed(1)} ms: its adapter is slower than the CPU (a software adapter, or a weak GPU)`,
      ...measured,
    };
  }
  return { unusable: null, ...measured };
}

/** Why `auto` should skip WebGPU here, or null: told from the Vulkan manifests when it can be, else probed. */
export async function webgpuAutoVerdict(cacheRoot: string): Promise<string | null> {
  const software = softwareOnlyVulkan();
  if (software) return softwareReason(software);
  return (await probeWebGpu(cacheRoot)).unusable;
}

function softwareReason(software: string): string {
  return `its only adapter here is ${software}, a software one that runs on the CPU and is slower than the CPU provider`;
}

/**
 * Measures WebGPU against the CPU provider, and whether it runs float16, once per machine (cached under
 * `cacheRoot`). Where the Vulkan manifests show only software drivers, `unusable` says so whatever the
 * measurement.
 */
export async function probeWebGpu(cacheRoot: string): Promise<WebGpuProbe> {
  const software = softwareOnlyVulkan();
  const measured = await measuredProbe(cacheRoot);
  if (!software) return measured;
  // WebGPU that did not run keeps the reason it failed; one that ran on a software driver is skipped for that.
  return { ...measured, unusable: measured.ran ? softwareReason(software) : measured.unusable, softwareAdapter: software };
}

async function measuredProbe(cacheRoot: string): Promise<WebGpuProbe> {
  const dir = path.join(cacheRoot, 'devices');
  const cacheFile = path.join(dir, `webgpu-${machineKey()}.json`);
  try {
    return JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as WebGpuProbe;
  } catch {
    // Not measured on this machine yet.
  }
  fs.mkdirSync(dir, { recursive: true });
  const modelFile = path.join(dir, `webgpu-probe-${process.pid}.onnx`);
  const float16File = path.join(dir, `webgpu-probe-f16-${process.pid}.onnx`);
  fs.writeFileSync(modelFile, probeModel());
  fs.writeFileSync(float16File, float16Model());
  let verdict: WebGpuProbe;
  try {
    const { result, timedOut } = await runChild(modelFile, float16File);
    verdict = verdictOf(result, timedOut);
  } finally {
    fs.rmSync(modelFile, { force: true });
    fs.rmSync(float16File, { force: true });
  }
  // Written whole, then renamed: a second engine probing at the same time reads one answer or none.
  const partial = `${cacheFile}.${process.pid}.tmp`;
  fs.writeFileSync(partial, JSON.stringify(verdict));
  fs.renameSync(partial, cacheFile);
  return verdict;
}
