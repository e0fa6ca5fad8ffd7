/**
 * Token embeddings without an ONNX Runtime session. embed_tokens.onnx is one Gather over a [vocab, hidden]
 * float32 table: 2.1 GB for PaliGemma 3B, of which a request reads a few rows (the prompt's text tokens and
 * one per generated token; image positions take the vision tower's features). A session would hold the
 * whole table in memory; reading the rows from the graph's external data file costs a few kilobytes each,
 * served from the page cache, and gives the very same float32 values.
 *
 * Graphs of another shape (a quantized table in an export) keep their session.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type * as ort from 'onnxruntime-node';
import { UserError } from '../../common/errors.js';
import { tensor } from '../runtime/onnxRuntime.js';

export interface TokenEmbeddings {
  /** [ids.length, hidden] float32. */
  lookup(ids: number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Graphs larger than this without an external data file are not parsed here: their session reads them. */
const LARGEST_PARSED_GRAPH_BYTES = 64 << 20;

interface TableLocation {
  vocab: number;
  hidden: number;
  /** The table inline in the graph (small models), or where it lies in the external data file. */
  inline?: Float32Array;
  file?: string;
  offset?: number;
}

/** Where a plain `Gather(table, input_ids)` graph keeps its float32 table, or null for any other graph. */
export function findEmbeddingTable(graphFile: string): TableLocation | null {
  if (fs.statSync(graphFile).size > LARGEST_PARSED_GRAPH_BYTES) return null;
  const graph = onnx.ModelProto.decode(fs.readFileSync(graphFile)).graph;
  const nodes = graph?.node ?? [];
  if (!graph || nodes.length > 2 || nodes[0]?.opType !== 'Gather') return null;
  const gather = nodes[0];
  if (gather.input?.[1] !== 'input_ids') return null;
  if ((gather.attribute ?? []).some((a) => a.name === 'axis' && Number(a.i) !== 0)) return null;
  // An optional Identity names the output.
  if (nodes[1] && (nodes[1].opType !== 'Identity' || nodes[1].input?.[0] !== gather.output?.[0])) return null;
  const table = graph.initializer?.find((t) => t.name === gather.input?.[0]);
  if (!table || table.dataType !== onnx.TensorProto.DataType.FLOAT || table.dims?.length !== 2) return null;
  const [vocab, hidden] = table.dims.map(Number) as [number, number];
  if (table.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const entry = (key: string) => table.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location');
    if (!location || path.isAbsolute(location) || location.includes('..')) return null;
    const length = Number(entry('length') ?? vocab * hidden * 4);
    if (length !== vocab * hidden * 4) return null;
    return { vocab, hidden, file: path.join(path.dirname(graphFile), location), offset: Number(entry('offset') ?? 0) };
  }
  const raw = table.rawData;
  if (!raw || raw.byteLength !== vocab * hidden * 4) return null;
  // A copy: protobufjs hands out Buffers that are views into the whole file's bytes, at any alignment.
  return { vocab, hidden, inline: new Float32Array(Uint8Array.from(raw).buffer) };
}

/** Reads the rows of a table found by findEmbeddingTable. */
export function openEmbeddingTable(location: TableLocation): TokenEmbeddings {
  const { vocab, hidden } = location;
  const rowBytes = hidden * 4;
  const fd = location.file ? fs.openSync(location.file, 'r') : null;
  if (fd !== null && fs.fstatSync(fd).size < (location.offset ?? 0) + vocab * rowBytes) {
    fs.closeSync(fd);
    throw new UserError(`${location.file} is shorter than its embedding table: the converted model is damaged; delete its cache folder to convert again`);
  }
  return {
    lookup: async (ids) => {
      const out = new Float32Array(ids.length * hidden);
      const bytes = new Uint8Array(out.buffer);
      ids.forEach((id, row) => {
        // Gather rejects an id outside the table; so do we, rather than read a neighbour's bytes.
        if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`token id ${id} is outside the embedding table (${vocab} rows)`);
        if (location.inline) out.set(location.inline.subarray(id * hidden, (id + 1) * hidden), row * hidden);
        else fs.readSync(fd!, bytes, row * rowBytes, rowBytes, location.offset! + id * rowBytes);
      });
      return out;
    },
    close: async () => {
      if (fd !== null) fs.closeSync(fd);
    },
  };
}

/** The embedding graph through its session, for graphs findEmbeddingTable does not take. */
export function sessionEmbeddings(session: ort.InferenceSession): TokenEmbeddings {
  return {
    lookup: async (ids) => {
      const outputs = await session.run({ input_ids: tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) });
      return new Float32Array(outputs.inputs_embeds!.data as Float32Array);
    },
    close: () => session.release(),
  };
}
