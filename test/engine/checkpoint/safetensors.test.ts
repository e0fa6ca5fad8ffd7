/** The safetensors reader and writer: dtypes, sharding, truncation. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, floatToHalf } from '../../../src/engine/checkpoint/floatFormats.js';
import { listCheckpointTensors, readSafetensorsHeader, readTensorAsFloat32, writeSafetensors } from '../../../src/engine/checkpoint/safetensors.js';
import { isUserError } from '../../../src/common/errors.js';
import { tempDir } from '../../helpers/fixtures.js';

const bytes = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('float formats', () => {
  test('every BF16 bit pattern widens to the float32 with the same top 16 bits', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const widened = new Uint32Array(bf16ToF32(all).buffer);
    for (let i = 0; i < 65536; i++) assert.equal(widened[i], i << 16 >>> 0);
  });

  test('float32 -> BF16 rounds to nearest even, and BF16 values survive the round trip', () => {
    const values = new Float32Array([1, -2.5, 3.1415927, 1e-30, 65504, 1 + 2 ** -8, 1 + 3 * 2 ** -9]);
    const rounded = bf16ToF32(f32ToBf16(values));
    assert.equal(rounded[0], 1);
    assert.equal(rounded[1], -2.5);
    assert.equal(rounded[5], 1); // exactly halfway: ties to even
    assert.equal(rounded[6], 1 + 2 ** -7); // above halfway: up
    assert.deepEqual(bf16ToF32(f32ToBf16(rounded)), rounded);
  });

  test('F16 conversions are exact for representable values, subnormals and infinities included', () => {
    const values = new Float32Array([0, -0, 1, -1.5, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, 0.333251953125]);
    assert.deepEqual(f16ToF32(f32ToF16(values)), values);
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // halfway rounds to even
    assert.ok(Number.isNaN(f16ToF32(f32ToF16(new Float32Array([NaN])))[0]));
  });
});

describe('safetensors files', () => {
  const values = new Float32Array([0.5, -1.25, 3, 2 ** -10, 7, -0.0078125]); // exact in F16 and BF16

  test('F32, F16 and BF16 tensors read back as float32', () => {
    const dir = tempDir('safetensors');
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, [
      { name: 'a', dtype: 'F32', shape: [2, 3], chunks: () => [bytes(values)] },
      { name: 'b', dtype: 'F16', shape: [6], chunks: () => [bytes(f32ToF16(values))] },
      { name: 'c', dtype: 'BF16', shape: [3, 2], chunks: () => [bytes(f32ToBf16(values))] },
    ]);
    const entries = new Map(readSafetensorsHeader(file).map((e) => [e.name, e]));
    assert.deepEqual(entries.get('a')!.shape, [2, 3]);
    assert.deepEqual(readTensorAsFloat32(entries.get('a')!), values);
    assert.deepEqual(readTensorAsFloat32(entries.get('b')!), values);
    assert.deepEqual(readTensorAsFloat32(entries.get('c')!), values);
    // The data starts 8-byte aligned, as the reference writer does.
    assert.equal(Number(fs.readFileSync(file).readBigUInt64LE(0)) % 8, 0);
  });

  test('sharded checkpoints are read through model.safetensors.index.json', () => {
    const dir = tempDir('sharded');
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'x', dtype: 'F32', shape: [6], chunks: () => [bytes(values)] }]);
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'y', dtype: 'BF16', shape: [6], chunks: () => [bytes(f32ToBf16(values))] }]);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 36 },
      weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' },
    }));
    const tensors = listCheckpointTensors(dir);
    assert.deepEqual([...tensors.keys()].sort(), ['x', 'y']);
    assert.deepEqual(readTensorAsFloat32(tensors.get('y')!), values);
  });

  test('a truncated file, a missing shard and an unsupported dtype are user errors', () => {
    const dir = tempDir('broken');
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [6], chunks: () => [bytes(values)] }]);
    fs.truncateSync(file, fs.statSync(file).size - 4);
    assert.throws(() => readSafetensorsHeader(file), (e) => isUserError(e) && /truncated|past the end/.test((e as Error).message));

    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00009.safetensors' } }));
    assert.throws(() => listCheckpointTensors(dir), (e) => isUserError(e) && /missing/.test((e as Error).message));

    const ints = path.join(dir, 'ints.safetensors');
    const header = JSON.stringify({ a: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } });
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(ints, Buffer.concat([length, Buffer.from(header), Buffer.alloc(4)]));
    assert.throws(() => readTensorAsFloat32(readSafetensorsHeader(ints)[0]!), (e) => isUserError(e) && /I32/.test((e as Error).message));
  });
});
