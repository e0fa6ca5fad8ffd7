/** SmoothQuant's migration from weights alone: exact in float, and it flattens outlier channels. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { divideRows, hasOutlierChannels, migrationScales, rowRanges, scaleColumns, smoothAfterNorm } from '../../../src/engine/onnx/smoothing.js';
import { smoothSiglipMlp } from '../../../src/engine/paligemma/int8Smoothing.js';
import { SeededRandom } from '../../../src/engine/random.js';

const random = new SeededRandom(11, 'smoothing');
const matrix = (rows: number, cols: number) => Float32Array.from({ length: rows * cols }, () => random.uniform(0, 1));

function matvec(w: Float32Array, rows: number, cols: number, x: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r] += w[r * cols + c]! * x[c]!;
  return y;
}

test('a norm scale divided by s and weight columns times s compute the same product', () => {
  const cols = 16;
  const scale = Float32Array.from({ length: cols }, (_, j) => (j === 3 ? 20 : 1 + random.uniform(0, 0.1)));
  const [q, k] = [matrix(8, cols), matrix(4, cols)];
  const normalised = matrix(1, cols);
  const before = [q, k].map((w, i) => matvec(w, i ? 4 : 8, cols, normalised.map((v, j) => v * scale[j]!)));
  const { divisors, weights } = smoothAfterNorm(scale, [q.slice(), k.slice()], cols);
  const after = weights.map((w, i) => matvec(w, i ? 4 : 8, cols, normalised.map((v, j) => (v * scale[j]!) / divisors[j]!)));
  for (let i = 0; i < 2; i++) before[i]!.forEach((v, r) => assert.ok(Math.abs(v - after[i]![r]!) < 1e-4 * (1 + Math.abs(v))));
  // The outlier channel's activation range shrinks relative to the others: what per-token steps need.
  const ranges = scale.map((v, j) => v / divisors[j]!);
  assert.ok(ranges[3]! / Math.max(...ranges.filter((_, j) => j !== 3)) < 20 / 1.1 / 3);
});

test('up_proj rows divided by s and down_proj columns times s leave the gated MLP unchanged', () => {
  const [H, I] = [8, 12];
  const up = matrix(I, H);
  for (let c = 0; c < H; c++) up[5 * H + c] = up[5 * H + c]! * 10; // an outlier channel of down_proj's input
  const down = matrix(H, I);
  const x = matrix(1, H);
  const gate = matrix(1, I);
  const mlp = (u: Float32Array, d: Float32Array) => {
    const inner = Float32Array.from(matvec(u, I, H, x), (v, j) => v * gate[j]!);
    return matvec(d, H, I, inner);
  };
  const before = mlp(up, down);
  const s = migrationScales(rowRanges(up, H), [down], I);
  const after = mlp(divideRows(up.slice(), H, s), scaleColumns(down.slice(), I, s));
  before.forEach((v, r) => assert.ok(Math.abs(v - after[r]!) < 1e-4 * (1 + Math.abs(v))));
  assert.ok(s[5]! > 2 * Math.max(...s.filter((_, j) => j !== 5)), 'the outlier channel moves the most');
});

test('zero ranges give finite scales', () => {
  const s = migrationScales(new Float32Array([0, 1, 2]), [new Float32Array([0, 1, 1, 0, 1, 1])], 3);
  assert.ok([...s].every((v) => Number.isFinite(v) && v > 0));
});

test('SigLIP MLP: fc2 input divided by s and fc2 columns times s leave it unchanged, only where fc1 shows outliers', () => {
  const [D, I] = [8, 12];
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const normScale = Float32Array.from({ length: D }, () => 1 + random.uniform(0, 0.1));
  const normBias = Float32Array.from({ length: D }, () => random.uniform(-0.1, 0.1));
  const fc1Bias = Float32Array.from({ length: I }, () => random.uniform(-0.1, 0.1));
  const fc2 = matrix(D, I);
  const normalised = matrix(1, D);
  const mlp = (scale: Float32Array, bias: Float32Array, fc1: Float32Array, fc2Weight: Float32Array, divisors: Float32Array | null) => {
    const inner = Float32Array.from(matvec(fc1, I, D, normalised.map((v, j) => v * scale[j]! + bias[j]!)), (v, j) => gelu(v + fc1Bias[j]!) / (divisors?.[j] ?? 1));
    return matvec(fc2Weight, D, I, inner);
  };

  const even = matrix(I, D);
  assert.equal(smoothSiglipMlp(normScale, normBias, even.slice(), fc1Bias, () => fc2.slice(), D, I).fc2InputDivisors, null, 'evenly spread rows need no pass in the graph');

  const fc1 = matrix(I, D);
  for (let c = 0; c < D; c++) fc1[5 * D + c] = fc1[5 * D + c]! * 10; // an outlier channel of fc2's input
  const before = mlp(normScale, normBias, fc1, fc2, null);
  const smoothed = smoothSiglipMlp(normScale, normBias, fc1.slice(), fc1Bias, () => fc2.slice(), D, I);
  const s = smoothed.fc2InputDivisors;
  assert.ok(s, 'an outlier row of fc1 is found');
  const after = mlp(smoothed.norm.scale, smoothed.norm.bias, smoothed.fc1, smoothed.fc2(), s);
  before.forEach((v, r) => assert.ok(Math.abs(v - after[r]!) < 1e-4 * (1 + Math.abs(v)), `output ${r}: ${v} against ${after[r]}`));
  assert.ok(s[5]! > 1.5 * Math.max(...s.filter((_, j) => j !== 5)), 'the outlier channel moves the most');
});

test('outlier channels: a range 4 times the median or more', () => {
  assert.equal(hasOutlierChannels(new Float32Array([1.2, 0.9, 1, -3.9, 1])), false);
  assert.equal(hasOutlierChannels(new Float32Array([1.2, 0.9, 1, -4, 1])), true);
});
