/** int8 weights per output channel on the integer GEMM, with activations quantized per token in the graph. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../../src/engine/onnx/graphBuilder.js';
import { int8Linear, type ActivationScales } from '../../../src/engine/onnx/int8Linear.js';
import { quantizePerChannelInt8 } from '../../../src/engine/onnx/quantize.js';
import { InlineWeightStore } from '../../../src/engine/onnx/weightStore.js';
import { SeededRandom } from '../../../src/engine/random.js';
import { cosineSimilarity } from '../../helpers/numbers.js';

async function runLinear(weight: Float32Array, n: number, k: number, input: Float32Array, rows: number, scales: ActivationScales, bias?: Float32Array): Promise<Float32Array> {
  const g = new GraphBuilder('int8', new InlineWeightStore());
  const x = g.input('x', 'float32', [1, rows, k]);
  g.output(int8Linear(g, x, 'layer', () => weight, n, k, scales, bias && (() => bias)), 'y', 'float32', [1, rows, n]);
  const session = await ort.InferenceSession.create(g.toModelBytes());
  try {
    const { y } = await session.run({ x: new ort.Tensor('float32', input, [1, rows, k]) });
    return y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function floatProduct(weight: Float32Array, n: number, k: number, input: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < n; o++) {
      let sum = 0;
      for (let i = 0; i < k; i++) sum += input[r * k + i]! * weight[o * k + i]!;
      out[r * n + o] = sum;
    }
  }
  return out;
}

const row = (data: Float32Array, r: number, n: number) => data.subarray(r * n, (r + 1) * n);

test('per-channel int8 weights round each value to within half its channel\'s step', () => {
  const random = new SeededRandom(5, 'w');
  const n = 6;
  const k = 40;
  const weight = Float32Array.from({ length: n * k }, (_, i) => random.uniform(0, 1) * (1 + Math.floor(i / k)));
  const { values, scales } = quantizePerChannelInt8(weight, n, k);
  for (let o = 0; o < n; o++) {
    let largest = 0;
    for (let i = 0; i < k; i++) {
      const code = values[i * n + o]!;
      assert.ok(code >= -127 && code <= 127);
      largest = Math.max(largest, Math.abs(code));
      assert.ok(Math.abs(code * scales[o]! - weight[o * k + i]!) <= scales[o]! / 2 + 1e-7);
    }
    assert.equal(largest, 127, 'each channel uses its whole range');
  }
});

test('the integer GEMM with per-token scales computes x W^T up to the rounding of weights and activations', async () => {
  const random = new SeededRandom(6, 'w');
  const n = 24;
  const k = 96;
  const rows = 3;
  const weight = Float32Array.from({ length: n * k }, () => random.uniform(0, 0.5));
  // Rows of very different sizes: each gets its own step.
  const input = Float32Array.from({ length: rows * k }, (_, i) => random.uniform(0, 1) * 10 ** (Math.floor(i / k) - 1));
  const y = await runLinear(weight, n, k, input, rows, 'per-token');
  const { values, scales } = quantizePerChannelInt8(weight, n, k);
  const exact = floatProduct(weight, n, k, input, rows);
  for (let r = 0; r < rows; r++) {
    let maxAbs = 0;
    for (let i = 0; i < k; i++) maxAbs = Math.max(maxAbs, Math.abs(input[r * k + i]!));
    const step = maxAbs / 127;
    for (let o = 0; o < n; o++) {
      // Each activation moves by at most step / 2 and each weight by at most scale / 2.
      let bound = 1e-5 * maxAbs;
      for (let i = 0; i < k; i++) bound += (step / 2) * Math.abs(values[i * n + o]! * scales[o]!) + Math.abs(input[r * k + i]!) * (scales[o]! / 2);
      const difference = Math.abs(y[r * n + o]! - exact[r * n + o]!);
      assert.ok(difference <= bound, `row ${r}, output ${o}: |difference| ${difference} > ${bound}`);
    }
    assert.ok(cosineSimilarity(row(y, r, n), row(exact, r, n)) > 0.9999, `row ${r} keeps its direction whatever its size`);
  }
});

test('one token with massive activations: per-token scales keep every other token, one scale per tensor loses them', async () => {
  const random = new SeededRandom(7, 'w');
  const n = 32;
  const k = 128;
  const rows = 8;
  const weight = Float32Array.from({ length: n * k }, () => random.uniform(0, 0.5));
  const input = Float32Array.from({ length: rows * k }, () => random.uniform(0, 1));
  // Token 0 carries x1000 values in two channels, as <bos> does in LLMs (Sun et al. 2024).
  input[5] = 1000;
  input[77] = -1000;
  const exact = floatProduct(weight, n, k, input, rows);
  const worst = (y: Float32Array) => Math.min(...Array.from({ length: rows - 1 }, (_, i) => cosineSimilarity(row(y, i + 1, n), row(exact, i + 1, n))));
  const perToken = worst(await runLinear(weight, n, k, input, rows, 'per-token'));
  const perTensor = worst(await runLinear(weight, n, k, input, rows, 'per-tensor'));
  assert.ok(perToken > 0.999, `per-token: worst other token's cosine ${perToken}`);
  // A row rounded to all zeros has no direction at all (NaN): anything but a close match fails.
  assert.ok(!(perTensor > 0.9), `per-tensor: worst other token's cosine ${perTensor}`);
});

test('the bias is added once to every row, whatever the row\'s step', async () => {
  const random = new SeededRandom(8, 'w');
  const n = 16;
  const k = 64;
  const rows = 3;
  const weight = Float32Array.from({ length: n * k }, () => random.uniform(-0.5, 0.5));
  const bias = Float32Array.from({ length: n }, (_, o) => 2 + o);
  // Rows 100x apart: a bias scaled by the row's step would be off by orders of magnitude in some row.
  const input = Float32Array.from({ length: rows * k }, (_, i) => random.uniform(-1, 1) * 10 ** (Math.floor(i / k) - 1));
  const withBias = await runLinear(weight, n, k, input, rows, 'per-token', bias);
  const without = await runLinear(weight, n, k, input, rows, 'per-token');
  for (let i = 0; i < rows * n; i++) assert.ok(Math.abs(withBias[i]! - without[i]! - bias[i % n]!) < 1e-4, `element ${i}: ${withBias[i]} - ${without[i]} is not the bias ${bias[i % n]}`);
});

test('a row of zeros gives zeros, not NaN', async () => {
  const weight = Float32Array.from({ length: 4 * 8 }, (_, i) => (i % 5) - 2);
  const input = new Float32Array(2 * 8);
  input.fill(0.5, 8);
  const y = await runLinear(weight, 4, 8, input, 2, 'per-token');
  assert.deepEqual([...row(y, 0, 4)], [0, 0, 0, 0]);
  assert.ok([...row(y, 1, 4)].every(Number.isFinite));
});
