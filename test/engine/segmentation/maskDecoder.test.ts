/**
 * The mask VQ-VAE decoder's ONNX graph against an independent float64 reference (test/reference), on forged
 * weights in vae-oid.npz's layout, written to an .npz and read back as the engine reads the real one.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { forgeVaeArrays } from '../../../src/engine/forge/forgeVae.js';
import { MaskDecoder, MASK_SIZE } from '../../../src/engine/segmentation/maskDecoder.js';
import { readNpy, readNpz, writeNpz } from '../../../src/engine/segmentation/npz.js';
import { referenceMask } from '../../reference/maskDecoderReference.js';

test('the decoder graph gives the float64 reference\'s 64x64 masks (max abs difference <= 1e-4)', async () => {
  const weights = readNpz(writeNpz(forgeVaeArrays(11)), 'forged.npz');
  const decoder = await MaskDecoder.create(weights);
  try {
    const codes = [
      Array.from({ length: 16 }, (_, i) => (i * 7 + 3) % 128),
      Array.from({ length: 16 }, (_, i) => 127 - i),
      Array.from({ length: 16 }, () => 0),
    ];
    const masks = await decoder.decode(codes);
    assert.equal(masks.length, 3);
    for (const [i, mask] of masks.entries()) {
      assert.equal(mask.length, MASK_SIZE * MASK_SIZE);
      const reference = referenceMask(weights, codes[i]!);
      let worst = 0;
      for (let p = 0; p < mask.length; p++) worst = Math.max(worst, Math.abs(mask[p]! - reference[p]!));
      assert.ok(worst <= 1e-4, `mask ${i}: max abs difference ${worst}`);
      // Forged weights keep activations near unit size: a mask with both signs, so thresholds mean something.
      assert.ok(mask.some((v) => v > 0) && mask.some((v) => v < 0), `mask ${i} has both signs`);
    }
    // Grid order matters: swapping two codes moves the mask.
    const swapped = [...codes[0]!];
    [swapped[0], swapped[15]] = [swapped[15]!, swapped[0]!];
    const [moved] = await decoder.decode([swapped]);
    assert.ok(moved!.some((v, p) => Math.abs(v - masks[0]![p]!) > 1e-3));
  } finally {
    await decoder.release();
  }
});

test('.npz: what np.savez writes, float64 and Fortran-order arrays read as row-major float32', async () => {
  const arrays = readNpz(writeNpz(new Map([['a.b', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]])), 'x.npz');
  assert.deepEqual(arrays.get('a.b')!.shape, [2, 3]);
  assert.deepEqual([...arrays.get('a.b')!.data], [1, 2, 3, 4, 5, 6]);
  // A hand-made version 1.0 .npy: float64, Fortran order, shape (2, 3) holding [[1,2,3],[4,5,6]].
  let header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const data = new Float64Array([1, 4, 2, 5, 3, 6]);
  const bytes = new Uint8Array(10 + header.length + data.byteLength);
  bytes.set(Buffer.from('\x93NUMPY', 'latin1'));
  bytes[6] = 1;
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(Buffer.from(header, 'latin1'), 10);
  bytes.set(new Uint8Array(data.buffer), 10 + header.length);
  assert.deepEqual([...readNpy(bytes, 'f.npy').data], [1, 2, 3, 4, 5, 6]);
  // What numpy 2.4 itself writes (test/fixtures/npz, from np.savez and np.savez_compressed of a float64 array
  // and a Fortran-order float32 one): stored and deflated entries, both dtypes, both orders.
  for (const file of ['numpy-savez.npz', 'numpy-savez-compressed.npz']) {
    const saved = readNpz(fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'npz', file)), file);
    assert.deepEqual(saved.get('a'), { shape: [2, 3], data: Float32Array.from([0, 1, 2, 3, 4, 5]) });
    assert.deepEqual(saved.get('b'), { shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i) });
  }
  assert.throws(() => readNpz(new Uint8Array([1, 2, 3]), 'bad.npz'), /bad\.npz is not an \.npz file/);
  await assert.rejects(MaskDecoder.create(new Map()), /no _vq_vae\._embedding/);
});
