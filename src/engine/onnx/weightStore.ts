/**
 * Where a graph's initializers go. Small models keep them inside the .onnx file; big ones append each
 * tensor to an external data file the moment it is made (ONNX caps a protobuf at 2 GB), so converting a
 * 3B checkpoint never holds all its weights in memory. Two graphs can share one store: our masked decoder
 * reads the very same bytes as decoder_model_merged.
 */
import * as fs from 'node:fs';
import { onnx } from 'onnx-proto';

export type WeightData = Float32Array | Uint8Array | Int8Array | Uint16Array | BigInt64Array | Int32Array;

/** A tensor's data, or a function that makes it: a store asked twice for one name makes it once. */
export type WeightSource = WeightData | (() => WeightData);

export interface WeightStore {
  add(name: string, source: WeightSource, dims: number[], dataType: onnx.TensorProto.DataType): onnx.ITensorProto;
  close(): void;
}

abstract class MemoizingStore implements WeightStore {
  private readonly stored = new Map<string, onnx.ITensorProto>();

  add(name: string, source: WeightSource, dims: number[], dataType: onnx.TensorProto.DataType): onnx.ITensorProto {
    let tensor = this.stored.get(name);
    if (!tensor) {
      const data = typeof source === 'function' ? source() : source;
      tensor = this.store(name, bytesOf(data), dims, dataType);
      this.stored.set(name, tensor);
    }
    return tensor;
  }

  protected abstract store(name: string, bytes: Uint8Array, dims: number[], dataType: onnx.TensorProto.DataType): onnx.ITensorProto;
  abstract close(): void;
}

function bytesOf(data: WeightData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Keeps tensors inline in the model protobuf (copies them, so callers may reuse their arrays). */
export class InlineWeightStore extends MemoizingStore {
  protected store(name: string, bytes: Uint8Array, dims: number[], dataType: onnx.TensorProto.DataType): onnx.ITensorProto {
    return { name, dims, dataType, rawData: bytes.slice() };
  }
  close(): void {}
}

const ALIGNMENT = 4096;
/** Tensors smaller than this stay inline even in an external store, as onnx's own converter does. */
const INLINE_BELOW_BYTES = 1024;

export class ExternalWeightStore extends MemoizingStore {
  private readonly fd: number;
  private offset = 0;

  /** `location` is the data file's name relative to the .onnx files that will reference it. */
  constructor(readonly filePath: string, readonly location: string) {
    super();
    this.fd = fs.openSync(filePath, 'w');
  }

  protected store(name: string, bytes: Uint8Array, dims: number[], dataType: onnx.TensorProto.DataType): onnx.ITensorProto {
    if (bytes.byteLength < INLINE_BELOW_BYTES) return { name, dims, dataType, rawData: bytes.slice() };
    const start = Math.ceil(this.offset / ALIGNMENT) * ALIGNMENT;
    fs.writeSync(this.fd, bytes, 0, bytes.byteLength, start);
    this.offset = start + bytes.byteLength;
    return {
      name,
      dims,
      dataType,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.location },
        { key: 'offset', value: String(start) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    };
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
