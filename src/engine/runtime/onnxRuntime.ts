/**
 * Which ONNX Runtime binding the engine uses: onnxruntime-node (native: CPU, CUDA, WebGPU), or, with
 * PALI_RUNTIME=wasm, onnxruntime-web's WebAssembly build in this same process: slower, but it needs no
 * native addon, so it runs where the native binding cannot (a host that rejects the addon, or a platform
 * onnxruntime-node ships no binary for). Both share onnxruntime-common's API.
 */
import type * as OrtNode from 'onnxruntime-node';

export type OnnxRuntime = typeof OrtNode;
export type RuntimeKind = 'native' | 'wasm';

/** Chosen in process (`pali --runtime`), else by PALI_RUNTIME, which a parent sets for its child engine. */
let chosen: RuntimeKind | undefined;

export function runtimeKind(): RuntimeKind {
  return chosen ?? (process.env.PALI_RUNTIME === 'wasm' ? 'wasm' : 'native');
}

/** Picks the binding for this process: before its first use (it loads once). */
export function chooseRuntime(kind: RuntimeKind): void {
  if (binding && kind !== runtimeKind()) throw new Error(`the ${runtimeKind()} ONNX Runtime is already loaded in this process`);
  chosen = kind;
}

let binding: OnnxRuntime | undefined;

export function onnxRuntime(): OnnxRuntime {
  binding ??= runtimeKind() === 'wasm' ? (require('onnxruntime-web') as OnnxRuntime) : (require('onnxruntime-node') as OnnxRuntime);
  return binding;
}

type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

/** A tensor of the active binding: a session accepts only tensors of its own binding. */
export function tensor(type: 'float32' | 'float16' | 'int64', data: TensorData, dims: readonly number[]): OrtNode.Tensor {
  const Tensor = onnxRuntime().Tensor as unknown as new (type: string, data: TensorData, dims: readonly number[]) => OrtNode.Tensor;
  return new Tensor(type, data, dims);
}
