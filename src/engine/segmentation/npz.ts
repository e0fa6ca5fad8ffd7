/**
 * NumPy's .npz files (np.savez: a zip of .npy arrays), read and written for the mask VQ-VAE's weights:
 * fflate for the zip (stored or deflated entries, as savez and savez_compressed write them), npyjs for each
 * .npy (header versions 1-3, dtypes, Fortran order flagged). The VQ-VAE needs float32, row-major arrays.
 */
import { unzipSync, zipSync } from 'fflate';
import { dump, parse } from 'npyjs';
import { describeError, UserError } from '../../common/errors.js';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
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

/** One .npy as row-major float32 (float32 and float64 arrays, as the VQ-VAE's weights are stored). */
export function readNpy(bytes: Uint8Array, name: string): NpyArray {
  let array: ReturnType<typeof parse>;
  try {
    array = parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  } catch (error) {
    throw new UserError(`${name} is not a .npy array: ${describeError(error)}`);
  }
  const { data: values, shape, dtype, fortranOrder } = array;
  let data: Float32Array;
  if (values instanceof Float32Array) data = values;
  else if (values instanceof Float64Array) data = Float32Array.from(values);
  else throw new UserError(`${name}: arrays of type ${dtype} are not supported (float32 or float64 expected)`);
  if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new UserError(`${name}: the data does not match its shape`);
  return { shape, data: fortranOrder && shape.length > 1 ? toRowMajor(data, shape) : data };
}

export function readNpz(bytes: Uint8Array, name: string): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (error) {
    throw new UserError(`${name} is not an .npz file (a zip of .npy arrays): ${describeError(error)}`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [entry, content] of Object.entries(files)) {
    if (entry.endsWith('.npy')) arrays.set(entry.slice(0, -4), readNpy(content, `${name}:${entry}`));
  }
  return arrays;
}

/** An .npz as np.savez writes it: stored (uncompressed) float32 entries named KEY.npy. */
export function writeNpz(arrays: Map<string, NpyArray>): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  for (const [key, array] of arrays) files[`${key}.npy`] = [new Uint8Array(dump(array.data, array.shape, { dtype: 'f4' })), { level: 0 }];
  return zipSync(files);
}
