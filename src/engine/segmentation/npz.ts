/**
 * NumPy's .npz files (np.savez: a zip of .npy arrays), read and written for the mask VQ-VAE's weights.
 * The zip is fflate's (stored or deflated entries, as savez and savez_compressed write them); the .npy
 * format (a magic string, a version, a Python-dict header with dtype, order and shape, then the raw data)
 * is small enough to read here: no npm library reads .npz, and the .npy readers found handle neither
 * version 2/3 headers nor Fortran order.
 */
import { unzipSync, zipSync } from 'fflate';
import { UserError } from '../errors.js';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = '\x93NUMPY';

function parseHeader(bytes: Uint8Array, name: string): { descr: string; fortran: boolean; shape: number[]; dataOffset: number } {
  const text = (start: number, end: number) => Buffer.from(bytes.subarray(start, end)).toString('latin1');
  if (bytes.length < 10 || text(0, 6) !== MAGIC) throw new UserError(`${name} is not a .npy array`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = text(headerStart, headerStart + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new UserError(`${name}: unreadable .npy header`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { descr, fortran, shape, dataOffset: headerStart + headerLength };
}

/** Fortran (column-major) data into C (row-major) order. */
function toRowMajor(data: Float32Array, shape: number[]): Float32Array {
  const out = new Float32Array(data.length);
  const strides = shape.map((_, axis) => shape.slice(0, axis).reduce((a, b) => a * b, 1));
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < data.length; i++) {
    let source = 0;
    for (let axis = 0; axis < shape.length; axis++) source += index[axis]! * strides[axis]!;
    out[i] = data[source]!;
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      if (++index[axis]! < shape[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

/** One .npy as float32 (float32 and float64 little-endian arrays, as the VQ-VAE's weights are stored). */
export function readNpy(bytes: Uint8Array, name: string): NpyArray {
  const { descr, fortran, shape, dataOffset } = parseHeader(bytes, name);
  const count = shape.reduce((a, b) => a * b, 1);
  const raw = bytes.slice(dataOffset);
  let data: Float32Array;
  if (descr === '<f4') data = new Float32Array(raw.buffer, raw.byteOffset, count);
  else if (descr === '<f8') data = Float32Array.from(new Float64Array(raw.buffer, raw.byteOffset, count));
  else throw new UserError(`${name}: arrays of type ${descr} are not supported (float32 or float64 expected)`);
  if (data.length !== count) throw new UserError(`${name}: the data is shorter than its shape says`);
  return { shape, data: fortran && shape.length > 1 ? toRowMajor(data, shape) : data };
}

export function readNpz(bytes: Uint8Array, name: string): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (error) {
    throw new UserError(`${name} is not an .npz file (a zip of .npy arrays): ${error instanceof Error ? error.message : String(error)}`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [entry, content] of Object.entries(files)) {
    if (entry.endsWith('.npy')) arrays.set(entry.slice(0, -4), readNpy(content, `${name}:${entry}`));
  }
  return arrays;
}

function npyBytes(array: NpyArray): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${array.shape.join(', ')}${array.shape.length === 1 ? ',' : ''}), }`;
  // Version 1.0: the magic, the version and the header's length, padded with spaces and a newline to 64 bytes.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

/** An .npz as np.savez writes it: stored (uncompressed) entries named KEY.npy. */
export function writeNpz(arrays: Map<string, NpyArray>): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [key, array] of arrays) files[`${key}.npy`] = [npyBytes(array), { level: 0 }];
  return zipSync(files);
}
