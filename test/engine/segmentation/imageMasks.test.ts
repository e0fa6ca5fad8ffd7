/**
 * Masks in image pixels: the 64x64 mask resized to its box exactly as Pillow resizes a float image with
 * BILINEAR (fixtures from scripts/make-pil-fixtures.py), the evaluator's box rounding, and COCO RLE.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { pilResizeFloat } from '../../../src/engine/image/pilResize.js';
import { segmentBox } from '../../../src/common/segmentTokens.js';
import { cocoRle, maskInImage } from '../../../src/engine/segmentation/imageMasks.js';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'pil');

/** The 64x64 float pattern that scripts/make-pil-fixtures.py resizes. */
function maskPattern(): Float32Array {
  return Float32Array.from({ length: 4096 }, (_, i) => {
    const x = i % 64;
    const y = Math.floor(i / 64);
    return (((x * 31 + y * 17) % 64) - 32) / 16 + (((Math.floor(x / 8) + Math.floor(y / 8)) % 2) ? 0.5 : -0.5);
  });
}

test('a 64x64 float mask resized to a box matches Pillow\'s BILINEAR on mode "F", shrinking and enlarging', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as { masks: { name: string; outWidth: number; outHeight: number }[] };
  assert.equal(manifest.masks.length, 3);
  for (const c of manifest.masks) {
    const bytes = fs.readFileSync(path.join(FIXTURES, `${c.name}.f32`));
    const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const actual = pilResizeFloat(maskPattern(), 64, 64, c.outWidth, c.outHeight, 'bilinear');
    let worst = 0;
    for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    assert.ok(worst <= 1e-6, `${c.name}: max abs difference ${worst}`);
  }
});

test('the box is loc / 1023 of the image, truncated; the mask is 1 where the resized values are above 0', () => {
  assert.deepEqual(segmentBox([0, 0, 1023, 1023], 120, 80), { xMin: 0, yMin: 0, xMax: 120, yMax: 80 });
  assert.deepEqual(segmentBox([100, 200, 700, 800], 120, 80), { xMin: 23, yMin: 7, xMax: 93, yMax: 54 });
  const positive = new Float32Array(4096).fill(1);
  const mask = maskInImage(positive, [100, 200, 700, 800], 120, 80);
  let inside = 0;
  for (let y = 0; y < 80; y++) for (let x = 0; x < 120; x++) if (mask.pixels[y * 120 + x]) inside++;
  assert.equal(inside, (93 - 23) * (54 - 7), 'exactly the box');
  assert.equal(mask.pixels[7 * 120 + 23], 1);
  assert.equal(mask.pixels[54 * 120 + 93], 0);
  // A box that truncates to nothing has no pixels.
  assert.equal(maskInImage(positive, [100, 100, 101, 101], 120, 80).pixels.reduce((a, b) => a + b, 0), 0);
});

test('COCO RLE: column-major runs starting with zeros, over the whole image', () => {
  // 3 high, 2 wide: column 0 = [0, 1, 1], column 1 = [1, 0, 0].
  const mask = { box: { xMin: 0, yMin: 0, xMax: 2, yMax: 3 }, width: 2, height: 3, pixels: Uint8Array.from([0, 1, 1, 0, 1, 0]) };
  assert.deepEqual(cocoRle(mask), { size: [3, 2], counts: [1, 3, 2] });
  const starting = { ...mask, pixels: Uint8Array.from([1, 1, 1, 1, 1, 1]) };
  assert.deepEqual(cocoRle(starting).counts, [0, 6]);
});
