/**
 * The mask VQ-VAE decoder in float64, written from big_vision's description (segmentation.py's Decoder and
 * ResBlock, PyTorch-layout weights as vae-oid.npz stores them), loop by loop, sharing no code with the
 * engine's ONNX graph: the reference the graph is checked against.
 */
import type { NpyArray } from '../../src/engine/segmentation/npz.js';

interface Feature {
  channels: number;
  size: number;
  data: Float64Array;
}

function at(weights: Map<string, NpyArray>, key: string): NpyArray {
  const array = weights.get(key);
  if (!array) throw new Error(`missing ${key}`);
  return array;
}

/** PyTorch Conv2d, stride 1: weight [out, in, k, k]. */
function conv(x: Feature, weights: Map<string, NpyArray>, name: string, pad: number): Feature {
  const w = at(weights, `${name}.weight`);
  const b = at(weights, `${name}.bias`).data;
  const [out, input, k] = w.shape as [number, number, number];
  const n = x.size;
  const y = new Float64Array(out * n * n);
  for (let o = 0; o < out; o++) {
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        let sum = b[o]!;
        for (let i = 0; i < input; i++) {
          for (let kr = 0; kr < k; kr++) {
            const rr = r + kr - pad;
            if (rr < 0 || rr >= n) continue;
            for (let kc = 0; kc < k; kc++) {
              const cc = c + kc - pad;
              if (cc < 0 || cc >= n) continue;
              sum += x.data[(i * n + rr) * n + cc]! * w.data[((o * input + i) * k + kr) * k + kc]!;
            }
          }
        }
        y[(o * n + r) * n + c] = sum;
      }
    }
  }
  return { channels: out, size: n, data: y };
}

/** PyTorch ConvTranspose2d(kernel 4, stride 2, padding 1): weight [in, out, 4, 4]; each input pixel scatters. */
function convTranspose(x: Feature, weights: Map<string, NpyArray>, name: string): Feature {
  const w = at(weights, `${name}.weight`);
  const b = at(weights, `${name}.bias`).data;
  const [input, out, k] = w.shape as [number, number, number];
  const n = x.size;
  const m = n * 2;
  const y = new Float64Array(out * m * m);
  for (let o = 0; o < out; o++) y.fill(b[o]!, o * m * m, (o + 1) * m * m);
  for (let i = 0; i < input; i++) {
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        const v = x.data[(i * n + r) * n + c]!;
        for (let o = 0; o < out; o++) {
          for (let kr = 0; kr < k; kr++) {
            const rr = r * 2 - 1 + kr;
            if (rr < 0 || rr >= m) continue;
            for (let kc = 0; kc < k; kc++) {
              const cc = c * 2 - 1 + kc;
              if (cc < 0 || cc >= m) continue;
              y[(o * m + rr) * m + cc] += v * w.data[((i * out + o) * k + kr) * k + kc]!;
            }
          }
        }
      }
    }
  }
  return { channels: out, size: m, data: y };
}

const relu = (x: Feature): Feature => ({ ...x, data: x.data.map((v) => (v > 0 ? v : 0)) });
const add = (a: Feature, b: Feature): Feature => ({ ...a, data: a.data.map((v, i) => v + b.data[i]!) });

/** 16 codes -> the 64x64 mask, row-major. */
export function referenceMask(weights: Map<string, NpyArray>, codes: number[]): Float64Array {
  const codebook = at(weights, '_vq_vae._embedding');
  const dim = codebook.shape[1]!;
  // Token t sits at row t / 4, column t % 4 of the 4x4 grid; channels first.
  const grid = new Float64Array(dim * 16);
  codes.forEach((code, t) => {
    for (let d = 0; d < dim; d++) grid[d * 16 + t] = codebook.data[code * dim + d]!;
  });
  let x = relu(conv({ channels: dim, size: 4, data: grid }, weights, 'decoder.0', 0));
  for (const block of ['decoder.2.net', 'decoder.3.net']) {
    const inner = conv(relu(conv(relu(conv(x, weights, `${block}.0`, 1)), weights, `${block}.2`, 1)), weights, `${block}.4`, 0);
    x = add(inner, x);
  }
  for (const name of ['decoder.4', 'decoder.6', 'decoder.8', 'decoder.10']) x = relu(convTranspose(x, weights, name));
  return conv(x, weights, 'decoder.12', 0).data;
}
