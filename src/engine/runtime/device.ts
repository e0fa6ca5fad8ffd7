/**
 * Execution providers: `auto` tries CUDA (present when onnxruntime-node's install fetched it), then
 * WebGPU (bundled with onnxruntime-node 1.30 on Linux, Windows and macOS) when a probe found it faster
 * than the CPU here (webgpuProbe.ts), then CPU, and reports which ran and why the others did not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { DEVICE_CHOICES, type DeviceChoice } from '../../common/devices.js';
import { describeError, UserError } from '../../common/errors.js';
import { onnxRuntime, runtimeKind } from './onnxRuntime.js';
import { createPreparedSession } from './preparedSessions.js';
import { quietVulkanLayers, vulkanDrivers } from './vulkanDrivers.js';
import { plainWebGpuError, probeWebGpu, softwareOnlyVulkan, webgpuAutoVerdict } from './webgpuProbe.js';

export type { DeviceChoice };
/** What ran: a choice, or the WebAssembly CPU backend of onnxruntime-web. */
export type Device = Exclude<DeviceChoice, 'auto'> | 'wasm';

export function parseDevice(value: string): DeviceChoice {
  if ((DEVICE_CHOICES as readonly string[]).includes(value)) return value as DeviceChoice;
  throw new UserError(`unknown device "${value}": choose one of ${DEVICE_CHOICES.join(', ')}`);
}

/** The devices to try for a choice, best first. */
export function candidateDevices(choice: DeviceChoice): Device[] {
  if (runtimeKind() === 'wasm') return ['wasm'];
  return choice === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [choice];
}

/**
 * onnxruntime-web does not read a model's external data file by itself: hand it the bytes. (A 32-bit
 * WebAssembly memory holds at most 4 GB, so full-size fp32 models need the native runtime.)
 */
function externalDataFor(file: string): ort.InferenceSession.SessionOptions['externalData'] {
  const dataFile = `${file}_data`;
  if (runtimeKind() !== 'wasm' || !fs.existsSync(dataFile)) return undefined;
  return [{ path: path.basename(dataFile), data: new Uint8Array(fs.readFileSync(dataFile)) }];
}

export function sessionOptions(device: Device, file?: string): ort.InferenceSession.SessionOptions {
  return {
    ...(file ? { externalData: externalDataFor(file) } : {}),
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    // Failures reach us as exceptions; ORT's own console logging would only repeat them on stderr.
    logSeverityLevel: 4,
  };
}

/**
 * Why a device cannot run here, found without creating a session (which would make native libraries print
 * to stderr), or null when it is worth trying.
 */
export function deviceUnavailableReason(device: Device): string | null {
  if (device === 'cuda') {
    const library = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (process.platform === 'darwin') return 'CUDA is not available on macOS';
    const binding = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
    if (!fs.existsSync(path.join(binding, library))) {
      return 'the CUDA provider is not installed (see the README: reinstall onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12)';
    }
  }
  if (device === 'webgpu' && process.platform === 'linux') {
    if (!hasVulkanLoader()) return 'WebGPU needs Vulkan on Linux and libvulkan.so.1 (the Vulkan loader, package libvulkan1) was not found';
    if (!vulkanDrivers().length) {
      return "WebGPU needs a Vulkan driver on Linux and none is installed (mesa-vulkan-drivers for Intel and AMD, NVIDIA's driver for NVIDIA)";
    }
  }
  return null;
}

function hasVulkanLoader(): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib',
  ];
  return dirs.some((dir) => fs.existsSync(path.join(dir, 'libvulkan.so.1')));
}

/** The first device a load would try for a choice: one whose libraries are present. */
export function likeliestDevice(choice: DeviceChoice): Device {
  const candidates = candidateDevices(choice);
  return candidates.find((device) => choice !== 'auto' || !deviceUnavailableReason(device)) ?? candidates.at(-1)!;
}

export interface DeviceAttempt {
  device: Device;
  error: string;
}

/** The graphs to load on a device, and whether they are worth preparing for this CPU (preparedSessions.ts). */
export interface DeviceFiles {
  files: Record<string, string>;
  prepareOnCpu: boolean;
}

/**
 * Creates sessions for every file on the first device that takes all of them. A device that fails any
 * file is skipped whole, so a model never runs split across devices by accident. `filesFor` names the
 * files for a device (the dtype may depend on it); its own errors are the caller's, not the device's.
 * `loads` says how each CPU session was made (from a prepared copy or not), for the log.
 */
export async function createSessionsOnDevice(
  filesFor: (device: Device) => Promise<DeviceFiles>,
  choice: DeviceChoice,
  cacheRoot: string,
  onProgress?: (message: string) => void,
): Promise<{ device: Device; sessions: Record<string, ort.InferenceSession>; fallbacks: DeviceAttempt[]; note?: string; loads: Record<string, string> }> {
  const fallbacks: DeviceAttempt[] = [];
  for (const device of candidateDevices(choice)) {
    let unavailable = choice === 'auto' ? deviceUnavailableReason(device) : null;
    if (!unavailable && device === 'webgpu') unavailable = await webgpuReason(choice, cacheRoot);
    if (unavailable) {
      fallbacks.push({ device, error: unavailable });
      continue;
    }
    const { files, prepareOnCpu } = await filesFor(device);
    const sessions: Record<string, ort.InferenceSession> = {};
    const loads: Record<string, string> = {};
    try {
      for (const [name, file] of Object.entries(files)) {
        if (device === 'webgpu') quietVulkanLayers();
        if (device === 'cpu' && prepareOnCpu) {
          const prepared = await createPreparedSession(file, sessionOptions(device, file), cacheRoot, () => onProgress?.(`preparing ${name} for this CPU (once)`));
          sessions[name] = prepared.session;
          loads[name] = prepared.how;
          continue;
        }
        const session = await onnxRuntime().InferenceSession.create(file, sessionOptions(device, file));
        sessions[name] = device === 'webgpu' ? withPlainWebGpuErrors(session) : session;
      }
      return { device, sessions, fallbacks, loads, ...(device === 'webgpu' ? softwareAdapterNote() : {}) };
    } catch (error) {
      await Promise.all(Object.values(sessions).map((s) => s.release().catch(() => {})));
      const message = describeError(error);
      fallbacks.push({ device, error: device === 'webgpu' ? plainWebGpuError(message) : message.split('\n')[0]! });
    }
  }
  const reasons = fallbacks.map((f) => `${f.device}: ${f.error}`).join('; ');
  throw new UserError(`no device could run the model (${reasons})`);
}

/**
 * Why WebGPU is not tried: under `auto`, a software or slower adapter; asked for by name, only an adapter
 * that the probe found missing altogether, so that Dawn's own lines about it never reach this process.
 */
async function webgpuReason(choice: DeviceChoice, cacheRoot: string): Promise<string | null> {
  if (choice === 'auto') return webgpuAutoVerdict(cacheRoot);
  const probe = await probeWebGpu(cacheRoot);
  return probe.ran ? null : probe.unusable;
}

/** Said when WebGPU was asked for by name and runs on a software adapter (which `auto` never picks). */
function softwareAdapterNote(): { note?: string } {
  const software = softwareOnlyVulkan();
  return software ? { note: `WebGPU runs on ${software} here, a software adapter on the CPU: --device cpu is far faster` } : {};
}

/**
 * WebGPU compiles its shaders at the first run, so an adapter's limits (no float16, a missing feature)
 * surface there, as a native message with a source path: make it one sentence a user can act on.
 */
function withPlainWebGpuErrors(session: ort.InferenceSession): ort.InferenceSession {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<ort.InferenceSession.OnnxValueMapType>;
  (session as { run: unknown }).run = async (...args: unknown[]) => {
    try {
      return await run(...args);
    } catch (error) {
      throw new UserError(plainWebGpuError(describeError(error)));
    }
  };
  return session;
}
