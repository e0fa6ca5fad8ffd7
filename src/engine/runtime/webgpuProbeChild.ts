/**
 * The child process of the WebGPU probe (webgpuProbe.ts): runs one small graph on the CPU provider and on
 * WebGPU, and a float16 one on WebGPU, and prints one JSON line: {cpu, webgpu}, each {ms, output} or
 * {error}, and {float16: {ok, error?}}. It is a process of its own so that whatever Dawn, the Vulkan
 * loader or a driver prints on stderr is captured by the parent instead of reaching the user, and so that
 * a driver that crashes or hangs takes only this process down.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { quietVulkanLayers } from './vulkanDrivers.js';
import { describeError } from '../../common/errors.js';

interface Measured {
  ms?: number;
  output?: number[];
  error?: string;
}

const RUNS = 3;

async function measure(model: Uint8Array, provider: 'cpu' | 'webgpu', input: Float32Array, dims: number[]): Promise<Measured> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: [provider], logSeverityLevel: 3 });
    const feeds = { x: new ort.Tensor('float32', input, dims) };
    // The first run compiles shaders and uploads the weights: not what a model's steps cost.
    await session.run(feeds);
    const started = performance.now();
    let output: ort.Tensor | undefined;
    for (let i = 0; i < RUNS; i++) output = (await session.run(feeds)).y;
    const ms = (performance.now() - started) / RUNS;
    return { ms, output: Array.from((output!.data as Float32Array).subarray(0, 4096)) };
  } catch (error) {
    return { error: describeError(error) };
  } finally {
    await session?.release().catch(() => {});
  }
}

/** Whether WebGPU runs float16 shaders here (WGSL's shader-f16 feature; SwiftShader has none). */
async function float16(model: Uint8Array): Promise<{ ok: boolean; error?: string }> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 3 });
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]) });
    const values = Array.from(y!.data as Float32Array);
    return values.join(',') === '3,6,9,12' ? { ok: true } : { ok: false, error: `computed ${values.join(',')} for 3x` };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  } finally {
    await session?.release().catch(() => {});
  }
}

async function main(): Promise<void> {
  quietVulkanLayers();
  const [modelFile, float16File, rows, columns] = process.argv.slice(2);
  const model = fs.readFileSync(modelFile!);
  const dims = [Number(rows), Number(columns)];
  const input = Float32Array.from({ length: dims[0]! * dims[1]! }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const cpu = await measure(model, 'cpu', input, dims);
  const webgpu = await measure(model, 'webgpu', input, dims);
  const f16 = webgpu.error ? { ok: false, error: webgpu.error } : await float16(fs.readFileSync(float16File!));
  process.stdout.write(JSON.stringify({ cpu, webgpu, float16: f16 }) + '\n');
}

void main();
