/** 4- and 8-bit block quantization: our packing is what com.microsoft MatMulNBits reads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../../src/engine/onnx/graphBuilder.js';
import { linear } from '../../../src/engine/onnx/layers.js';
import { quantizeBlockwise, zeroPointBytesPerRow, type QuantizationBits, type QuantizedWeight } from '../../../src/engine/onnx/quantize.js';
import { InlineWeightStore } from '../../../src/engine/onnx/weightStore.js';
import { SeededRandom } from '../../../src/engine/random.js';

/** The `index`-th `bits`-wide field of a byte array, low bits first. */
function field(bytes: Uint8Array, index: number, bits: number): number {
  const perByte = 8 / bits;
  return (bytes[Math.floor(index / perByte)]! >> ((index % perByte) * bits)) & (2 ** bits - 1);
}

function dequantize(n: number, k: number, q: QuantizedWeight): Float32Array {
  const out = new Float32Array(n * k);
  const valuesPerBlock = 32;
  const zeroBytes = zeroPointBytesPerRow(q.blocksPerRow, q.bits);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < k; col++) {
      const blockInRow = Math.floor(col / valuesPerBlock);
      const block = row * q.blocksPerRow + blockInRow;
      const value = field(q.packed, block * valuesPerBlock + (col % valuesPerBlock), q.bits);
      const zero = field(q.zeroPoints.subarray(row * zeroBytes), blockInRow, q.bits);
      out[row * k + col] = (value - zero) * q.scales[block]!;
    }
  }
  return out;
}

for (const bits of [4, 8] as QuantizationBits[]) {
  const dtype = bits === 4 ? 'int4' : 'int8';

  test(`${bits}-bit quantization error stays within half a step of each block`, () => {
    const random = new SeededRandom(3, 'w');
    const n = 8;
    const k = 112; // not a multiple of 32, and an odd number of blocks: the last block and zero byte are partial
    const weight = Float32Array.from({ length: n * k }, () => random.uniform(0, 1));
    const q = quantizeBlockwise(weight, n, k, bits);
    const restored = dequantize(n, k, q);
    for (let i = 0; i < weight.length; i++) {
      const step = q.scales[Math.floor(i / k) * q.blocksPerRow + Math.floor((i % k) / 32)]!;
      assert.ok(Math.abs(restored[i]! - weight[i]!) <= step / 2 + 1e-6);
    }
    // Each block spans its whole range of levels: the largest code is 2^bits - 1 somewhere.
    let largestCode = 0;
    for (let i = 0; i < n * q.blocksPerRow * 32; i++) largestCode = Math.max(largestCode, field(q.packed, i, bits));
    assert.equal(largestCode, 2 ** bits - 1);
  });

  test(`MatMulNBits (${bits} bits) in onnxruntime computes x W^T with our packed weights`, async () => {
    const random = new SeededRandom(4, 'w');
    const n = 24;
    const k = 96;
    const weight = Float32Array.from({ length: n * k }, () => random.uniform(0, 0.5));
    const g = new GraphBuilder(dtype, new InlineWeightStore());
    const x = g.input('x', 'float32', [2, k]);
    g.output(linear(g, x, 'layer', () => weight, n, k, dtype), 'y', 'float32', [2, n]);
    const session = await ort.InferenceSession.create(g.toModelBytes());
    const input = Float32Array.from({ length: 2 * k }, () => random.uniform(0, 1));
    const { y } = await session.run({ x: new ort.Tensor('float32', input, [2, k]) });
    const restored = dequantize(n, k, quantizeBlockwise(weight, n, k, bits));
    for (let row = 0; row < 2; row++) {
      for (let o = 0; o < n; o++) {
        let expected = 0;
        // accuracy_level 4 rounds each block of 32 activations to int8 with scale max|x| / 127 before the
        // integer dot product: each activation moves by at most half a step, which bounds the difference.
        let bound = 1e-4;
        for (let block = 0; block < k; block += 32) {
          let maxAbs = 0;
          for (let i = block; i < block + 32; i++) maxAbs = Math.max(maxAbs, Math.abs(input[row * k + i]!));
          for (let i = block; i < block + 32; i++) bound += (maxAbs / 127 / 2) * Math.abs(restored[o * k + i]!);
        }
        for (let i = 0; i < k; i++) expected += input[row * k + i]! * restored[o * k + i]!;
        const difference = Math.abs((y!.data as Float32Array)[row * n + o]! - expected);
        assert.ok(difference <= bound, `output ${row},${o}: |difference| ${difference} > ${bound}`);
      }
    }
  });
}
