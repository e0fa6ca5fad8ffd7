/**
 * Proves that this process can run onnxruntime: builds y = 2x + 1 in memory, runs it, and checks the answer.
 * Under Electron a native addon can fail here (V8's memory cage refuses external buffers), and the client
 * then moves the engine to another runtime before any model is loaded.
 */
import type { SelfTestResult } from '../../protocol.js';
import { GraphBuilder } from '../onnx/graphBuilder.js';
import { InlineWeightStore } from '../onnx/weightStore.js';
import { onnxRuntime, runtimeKind, tensor } from './onnxRuntime.js';

export async function runSelfTest(): Promise<SelfTestResult> {
  const g = new GraphBuilder('self_test', new InlineWeightStore());
  const x = g.input('x', 'float32', [4]);
  g.output(g.op('Add', [g.op('Mul', [x, g.scalar(2)]), g.scalar(1)]), 'y', 'float32', [4]);
  const ort = onnxRuntime();
  const session = await ort.InferenceSession.create(g.toModelBytes(), { executionProviders: [runtimeKind() === 'wasm' ? 'wasm' : 'cpu'] });
  try {
    const { y } = await session.run({ x: tensor('float32', Float32Array.from([0, 1, 2, 3]), [4]) });
    // Copy into a V8-owned array before reading, as everything the engine keeps does.
    const values = Array.from(new Float32Array(y!.data as Float32Array));
    if (values.join(',') !== '1,3,5,7') throw new Error(`onnxruntime computed ${values.join(',')} for 2x + 1`);
  } finally {
    await session.release();
  }
  return {
    node: process.version,
    electron: Boolean(process.versions.electron),
    onnxruntime: `${ort.env.versions?.common ?? 'unknown'}${runtimeKind() === 'wasm' ? ' (WebAssembly)' : ''}`,
    backends: runtimeKind() === 'wasm' ? ['wasm'] : ort.listSupportedBackends().filter((b) => b.bundled).map((b) => b.name),
  };
}
