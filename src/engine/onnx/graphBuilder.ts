/**
 * A small builder over onnx-proto's generated ModelProto classes: named inputs and outputs with symbolic
 * dimensions, nodes that return their output names, and initializers from a WeightStore. The graphs that
 * visionGraph.ts and decoderGraph.ts describe (and the bench's floor graphs) are written through it.
 */
import * as fs from 'node:fs';
import { onnx } from 'onnx-proto';
import { floatToHalf } from '../checkpoint/floatFormats.js';
import type { WeightData, WeightSource, WeightStore } from './weightStore.js';

export type Dim = number | string;
export type ElementType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'int8';

const DATA_TYPES: Record<ElementType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
};

export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] } | onnx.ITensorProto;

export const OPSET = 17;

/** ONNX TensorProto element types, for Cast's `to`. */
export const CAST_TO: Record<ElementType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 };
const MICROSOFT_DOMAIN = 'com.microsoft';

function valueInfo(name: string, type: ElementType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPES[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integer ${value}`);
    return { name, type: AttributeType.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  return { name, type: AttributeType.TENSOR, t: value };
}

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly constants = new Map<string, string>();
  private readonly shared = new Map<string, unknown>();
  private counter = 0;
  private usesMicrosoftDomain = false;

  constructor(readonly name: string, private readonly weights: WeightStore) {}

  input(name: string, type: ElementType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(value: string, name: string, type: ElementType, dims: Dim[]): void {
    if (value !== name) this.node('Identity', [value], {}, [name]);
    this.outputs.push(valueInfo(name, type, dims));
  }

  /**
   * Adds a weight; its data goes to the store (inline or external). A store shared by two graphs makes
   * and writes each named weight once, so pass a function when making the data costs something.
   */
  weight(name: string, source: WeightSource, dims: number[], type: ElementType = 'float32'): string {
    this.initializers.push(this.weights.add(name, source, dims, DATA_TYPES[type]));
    return name;
  }

  /** A small constant, deduplicated by value. */
  int64s(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_i64_${this.constants.size}`;
      this.initializers.push({ name, dims: [values.length], dataType: DATA_TYPES.int64, rawData: bytes(BigInt64Array.from(values.map(BigInt))) });
      this.constants.set(key, name);
    }
    return name;
  }

  scalar(value: number, type: ElementType = 'float32'): string {
    const key = `${type}:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_${type}_${this.constants.size}`;
      const data = type === 'float32' ? new Float32Array([value])
        : type === 'float16' ? new Uint16Array([floatToHalf(value)])
        : type === 'int64' ? new BigInt64Array([BigInt(value)])
        : type === 'uint8' ? new Uint8Array([value])
        : null;
      if (!data) throw new Error(`scalar of type ${type} is not supported`);
      this.initializers.push({ name, dims: [], dataType: DATA_TYPES[type], rawData: bytes(data) });
      this.constants.set(key, name);
    }
    return name;
  }

  /**
   * What `make` builds from values already in the graph, built once per key: layers that read the same
   * input (q, k and v; gate and up) then share one computation of it.
   */
  once<T>(key: string, make: () => T): T {
    if (!this.shared.has(key)) this.shared.set(key, make());
    return this.shared.get(key) as T;
  }

  /** Adds a node and returns its output names (generated unless given). */
  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputs?: string[], domain?: string): string[] {
    const outs = outputs ?? [`${opType.toLowerCase()}_${this.counter++}`];
    if (domain === MICROSOFT_DOMAIN) this.usesMicrosoftDomain = true;
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: `${opType}_${this.counter++}`,
      domain: domain ?? '',
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outs;
  }

  /** Single-output shorthand. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.node(opType, inputs, attributes)[0]!;
  }

  microsoftOp(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.node(opType, inputs, attributes, undefined, MICROSOFT_DOMAIN)[0]!;
  }

  toModel(): onnx.ModelProto {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: OPSET }];
    if (this.usesMicrosoftDomain) opsetImport.push({ domain: MICROSOFT_DOMAIN, version: 1 });
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'paligemma-local',
      opsetImport,
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
  }

  toModelBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.toModel()).finish();
  }

  save(file: string): void {
    fs.writeFileSync(file, this.toModelBytes());
  }
}

function bytes(data: WeightData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
