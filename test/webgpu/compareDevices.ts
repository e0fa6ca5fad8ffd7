/**
 * Run in a child process whose environment makes SwiftShader the Vulkan driver (the loader reads
 * LD_LIBRARY_PATH and VK_ICD_FILENAMES at start, so the test process itself cannot switch): loads one
 * forged checkpoint on the CPU provider and on WebGPU, decodes greedily on the CPU, feeds WebGPU the same
 * tokens (teacher forcing), and prints one JSON line comparing them step by step.
 *
 *   node --import tsx test/webgpu/compareDevices.ts MODEL_DIR CACHE_ROOT DTYPE IMAGE STEPS
 */
import { loadModel } from '../../src/engine/model.js';
import type { ModelDtype } from '../../src/engine/paligemma/components.js';
import { maxAbsDiff } from '../helpers/numbers.js';
import { referenceRun, runSteps } from '../helpers/teacherForcing.js';

export interface DeviceComparison {
  device: string;
  deviceNote?: string;
  /** Largest |webgpu - cpu| over the image features. */
  featuresMaxDiff: number;
  /** Per step: the largest |webgpu - cpu| logit, and the CPU's gap between its two best tokens. */
  steps: { maxDiff: number; cpuTop: number; webgpuTop: number; cpuMargin: number; cpuFromFp32?: number; webgpuFromFp32?: number }[];
  cpuIds: number[];
  cpuMs: number;
  webgpuMs: number;
}

function topTwo(logits: Float32Array): { index: number; margin: number } {
  let best = -Infinity;
  let second = -Infinity;
  let index = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > best) {
      second = best;
      best = v;
      index = i;
    } else if (v > second) {
      second = v;
    }
  }
  return { index, margin: best - second };
}

async function main(): Promise<void> {
  const [modelDir, cacheRoot, dtype, image, stepsText] = process.argv.slice(2) as [string, string, ModelDtype, string, string];
  const steps = Number(stepsText);
  const cpu = await loadModel(modelDir, { dtype, device: 'cpu', cacheRoot });
  let started = performance.now();
  const reference = await referenceRun(cpu, image, 'caption en', steps);
  const cpuMs = performance.now() - started;
  await cpu.release();

  const webgpu = await loadModel(modelDir, { dtype, device: 'webgpu', cacheRoot });
  const logits: Float32Array[] = [];
  started = performance.now();
  const { features } = await runSteps(webgpu, image, 'caption en', steps, reference.ids, (_, l) => logits.push(l.slice()));
  const webgpuMs = performance.now() - started;
  await webgpu.release();

  // A quantized dtype is also compared with fp32 on the CPU (the same tokens fed): the two providers'
  // kernels differ (CPU int4 quantizes activations to int8), so which of them is nearer the exact model
  // tells a kernel's rounding from a bug.
  const exact: Float32Array[] = [];
  if (dtype !== 'fp32') {
    const fp32 = await loadModel(modelDir, { dtype: 'fp32', device: 'cpu', cacheRoot });
    await runSteps(fp32, image, 'caption en', steps, reference.ids, (_, l) => exact.push(l.slice()));
    await fp32.release();
  }

  let featuresMaxDiff = 0;
  for (let i = 0; i < features.length; i++) featuresMaxDiff = Math.max(featuresMaxDiff, Math.abs(features[i]! - reference.features[i]!));
  const comparison: DeviceComparison = {
    device: webgpu.device,
    ...(webgpu.deviceNote ? { deviceNote: webgpu.deviceNote } : {}),
    featuresMaxDiff,
    steps: reference.logits.map((r, i) => {
      let maxDiff = 0;
      for (let j = 0; j < r.length; j++) maxDiff = Math.max(maxDiff, Math.abs(r[j]! - logits[i]![j]!));
      const cpuTop = topTwo(r);
      const fromExact = exact[i] ? { cpuFromFp32: maxAbsDiff(r, exact[i]!), webgpuFromFp32: maxAbsDiff(logits[i]!, exact[i]!) } : {};
      return { maxDiff, cpuTop: cpuTop.index, webgpuTop: topTwo(logits[i]!).index, cpuMargin: cpuTop.margin, ...fromExact };
    }),
    cpuIds: reference.ids,
    cpuMs,
    webgpuMs,
  };
  process.stdout.write(JSON.stringify(comparison) + '\n');
}

void main().catch((error) => {
  process.stderr.write(`compareDevices: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
