/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw little-endian data. Small enough to read and write here directly; the
 * npm packages for it either load whole files into memory or carry a native addon.
 * Reading is lazy (one tensor at a time from its offset) so a 12 GB checkpoint never sits in memory whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../common/errors.js';
import { bf16ToF32, f16ToF32 } from './floatFormats.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
}

const FLOAT_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function readSafetensorsHeader(file: string): TensorEntry[] {
  const fd = openOrExplain(file);
  try {
    const size = fs.fstatSync(fd).size;
    const lengthBytes = Buffer.alloc(8);
    if (size < 8 || fs.readSync(fd, lengthBytes, 0, 8, 0) !== 8) throw corrupt(file, 'it is shorter than its header');
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) throw corrupt(file, 'its header length is wrong');
    const headerBytes = Buffer.alloc(headerLength);
    fs.readSync(fd, headerBytes, 0, headerLength, 8);
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      throw corrupt(file, 'its header is not JSON');
    }
    const dataStart = 8 + headerLength;
    const entries: TensorEntry[] = [];
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets: offsets } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
      if (!Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) throw corrupt(file, `tensor ${name} is malformed`);
      const [begin, end] = offsets;
      if (dataStart + end > size || begin > end) throw corrupt(file, `tensor ${name} lies past the end of the file (truncated download?)`);
      const elementBytes = FLOAT_BYTES[dtype as SafetensorsDtype];
      const count = shape.reduce((a, b) => a * b, 1);
      if (elementBytes !== undefined && count * elementBytes !== end - begin) {
        throw corrupt(file, `tensor ${name} has ${end - begin} bytes for shape [${shape.join(', ')}] in ${dtype}`);
      }
      entries.push({ name, dtype, shape, file, offset: dataStart + begin, byteLength: end - begin });
    }
    return entries;
  } finally {
    fs.closeSync(fd);
  }
}

function openOrExplain(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (error) {
    throw new UserError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

function corrupt(file: string, why: string): UserError {
  return new UserError(`${file} is not a valid safetensors file: ${why}. Download it again`);
}

/** Reads one tensor and widens it to float32. BF16 and F16 convert exactly. */
export function readTensorAsFloat32(entry: TensorEntry): Float32Array {
  const bytes = readTensorBytes(entry);
  switch (entry.dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    case 'F16':
      return f16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
    case 'BF16':
      return bf16ToF32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
    default:
      throw new UserError(`tensor ${entry.name} in ${entry.file} has dtype ${entry.dtype}: only F32, F16 and BF16 are supported`);
  }
}

/** Returns a fresh, aligned buffer (V8-owned) with the tensor's raw bytes. */
export function readTensorBytes(entry: TensorEntry): Uint8Array {
  const buffer = new Uint8Array(new ArrayBuffer(entry.byteLength));
  const fd = fs.openSync(entry.file, 'r');
  try {
    let done = 0;
    while (done < entry.byteLength) {
      const n = fs.readSync(fd, buffer, done, Math.min(entry.byteLength - done, 1 << 30), entry.offset + done);
      if (n === 0) throw corrupt(entry.file, `tensor ${entry.name} is truncated`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buffer;
}

/**
 * Finds the weights of a checkpoint folder: `model.safetensors`, or the shards that
 * `model.safetensors.index.json` lists.
 */
export function listCheckpointTensors(dir: string): Map<string, TensorEntry> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (fs.existsSync(index)) {
    let weightMap: Record<string, string>;
    try {
      weightMap = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
    } catch {
      throw new UserError(`${index} is not valid JSON: download it again`);
    }
    if (!weightMap || typeof weightMap !== 'object') throw new UserError(`${index} has no weight_map`);
    files = [...new Set(Object.values(weightMap))].map((shard) => path.join(dir, shard));
    for (const file of files) {
      if (!fs.existsSync(file)) throw new UserError(`${file} is listed in model.safetensors.index.json but missing: download it`);
    }
  } else if (fs.existsSync(single)) {
    files = [single];
  } else {
    throw new UserError(`${dir} has no model.safetensors nor model.safetensors.index.json`);
  }
  const tensors = new Map<string, TensorEntry>();
  for (const file of files) {
    for (const entry of readSafetensorsHeader(file)) tensors.set(entry.name, entry);
  }
  return tensors;
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Yields the tensor's bytes in order, in chunks, so that big tensors never exist whole in memory. */
  chunks: () => Iterable<Uint8Array>;
}

/** Writes a safetensors file tensor by tensor, chunk by chunk. */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const tensor of tensors) {
    const byteLength = tensor.shape.reduce((a, b) => a * b, 1) * FLOAT_BYTES[tensor.dtype];
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let headerText = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const fd = fs.openSync(file, 'w');
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.length));
    fs.writeSync(fd, length);
    fs.writeSync(fd, headerBytes);
    for (const tensor of tensors) {
      const expected = tensor.shape.reduce((a, b) => a * b, 1) * FLOAT_BYTES[tensor.dtype];
      let written = 0;
      for (const chunk of tensor.chunks()) {
        fs.writeSync(fd, chunk);
        written += chunk.byteLength;
      }
      if (written !== expected) throw new Error(`tensor ${tensor.name}: wrote ${written} bytes, expected ${expected}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
