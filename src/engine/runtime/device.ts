/**
 * Execution providers: `auto` tries CUDA (present when onnxruntime-node's install fetched it), then
 * WebGPU (bundled with onnxruntime-node 1.30 on Linux, Windows and macOS), then CPU, and reports which ran
 * and why the others did not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { DEVICE_CHOICES, type DeviceChoice } from '../../common/devices.js';
import { UserError } from '../errors.js';
import { onnxRuntime, runtimeKind } from './onnxRuntime.js';

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
  if (device === 'webgpu' && process.platform === 'linux' && !hasVulkanLoader()) {
    return 'WebGPU needs Vulkan on Linux and libvulkan.so.1 was not found';
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

/**
 * Creates sessions for every file on the first device that takes all of them. A device that fails any
 * file is skipped whole, so a model never runs split across devices by accident. `filesFor` names the
 * files for a device (the dtype may depend on it); its own errors are the caller's, not the device's.
 */
export async function createSessionsOnDevice(
  filesFor: (device: Device) => Record<string, string>,
  choice: DeviceChoice,
): Promise<{ device: Device; sessions: Record<string, ort.InferenceSession>; fallbacks: DeviceAttempt[] }> {
  const fallbacks: DeviceAttempt[] = [];
  for (const device of candidateDevices(choice)) {
    const unavailable = choice === 'auto' ? deviceUnavailableReason(device) : null;
    if (unavailable) {
      fallbacks.push({ device, error: unavailable });
      continue;
    }
    const files = filesFor(device);
    const sessions: Record<string, ort.InferenceSession> = {};
    try {
      for (const [name, file] of Object.entries(files)) {
        sessions[name] = await onnxRuntime().InferenceSession.create(file, sessionOptions(device, file));
      }
      return { device, sessions, fallbacks };
    } catch (error) {
      await Promise.all(Object.values(sessions).map((s) => s.release().catch(() => {})));
      fallbacks.push({ device, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) });
    }
  }
  const reasons = fallbacks.map((f) => `${f.device}: ${f.error}`).join('; ');
  throw new UserError(`no device could run the model (${reasons})`);
}
