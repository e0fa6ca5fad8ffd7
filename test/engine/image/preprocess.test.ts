/** Known pixels in, known tensor out: SiglipImageProcessor's rescale and normalise, channels first. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageToPixelValues, readImageProcessorConfig } from '../../../src/engine/image/preprocess.js';

const config = readImageProcessorConfig({ size: { height: 2, width: 2 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], rescale_factor: 1 / 255, resample: 3 }, 2);

test('0 -> -1, 255 -> 1 and 128 -> float32((128/255 - 0.5) / 0.5), channel planes in order', () => {
  const rgb = new Uint8Array([0, 255, 128, 255, 0, 0, 10, 20, 30, 40, 50, 60]);
  const pixels = imageToPixelValues({ width: 2, height: 2, rgb }, config);
  const expected = (v: number) => Math.fround(Math.fround(Math.fround(v * (1 / 255)) - 0.5) / 0.5);
  assert.equal(pixels[0], -1); // R of pixel 0
  assert.equal(pixels[4], 1); // G of pixel 0
  assert.equal(pixels[8], expected(128)); // B of pixel 0
  assert.deepEqual([...pixels.subarray(0, 4)], [0, 255, 10, 40].map(expected));
  assert.deepEqual([...pixels.subarray(4, 8)], [255, 0, 20, 50].map(expected));
  assert.deepEqual([...pixels.subarray(8, 12)], [128, 0, 30, 60].map(expected));
});

test('an image of another size is resized to the processor\'s size first', () => {
  const rgb = new Uint8Array(5 * 3 * 3).fill(200);
  const pixels = imageToPixelValues({ width: 5, height: 3, rgb }, config);
  assert.equal(pixels.length, 3 * 2 * 2);
  for (const value of pixels) assert.equal(value, Math.fround(Math.fround(Math.fround(200 / 255) - 0.5) / 0.5));
});

test('an unsupported resample filter is a clear error', () => {
  const lanczos = readImageProcessorConfig({ size: { height: 2, width: 2 }, resample: 1 }, 2);
  assert.throws(() => imageToPixelValues({ width: 3, height: 3, rgb: new Uint8Array(27) }, lanczos), /resample 1/);
});
