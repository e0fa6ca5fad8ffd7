/** sharp decoding as HF sees images: every format users paste, EXIF orientation, clear errors. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImageBytes, decodeImageFile } from '../../../src/engine/image/decode.js';
import { isUserError } from '../../../src/common/errors.js';
import { IMAGE_EXTENSIONS } from '../../../src/common/imageFiles.js';
import { tempDir } from '../../helpers/fixtures.js';

const RED = { r: 220, g: 20, b: 30 };

async function solid(format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif'): Promise<Buffer> {
  const image = sharp({ create: { width: 12, height: 8, channels: 3, background: RED } });
  return image.toFormat(format, format === 'webp' || format === 'avif' ? { lossless: true } : {}).toBuffer();
}

/** A 12x8 red image stored as a file of this extension would be: what a user's file of that kind holds. */
async function fileBytes(extension: (typeof IMAGE_EXTENSIONS)[number]): Promise<Buffer> {
  if (extension === 'svg') return Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="12" height="8"><rect width="12" height="8" fill="rgb(220,20,30)"/></svg>');
  const format = extension === 'jpg' ? 'jpeg' : extension === 'tif' ? 'tiff' : extension;
  return solid(format);
}

describe('decoding', () => {
  // The list that file pickers, menus and alt-text checks offer: an extension there that the engine cannot
  // decode would fail only once a user picked such a file (BMP did, until this test).
  for (const extension of IMAGE_EXTENSIONS) {
    test(`a .${extension} file, which the extension offers, decodes`, async () => {
      const image = await decodeImageBytes(await fileBytes(extension), `red.${extension}`);
      assert.deepEqual([image.width, image.height], [12, 8]);
    });
  }

  for (const format of ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const) {
    test(`${format} decodes to 8-bit RGB of the right size and colour`, async () => {
      const image = await decodeImageBytes(await solid(format), `red.${format}`);
      assert.equal(image.width, 12);
      assert.equal(image.height, 8);
      assert.equal(image.rgb.length, 12 * 8 * 3);
      const [r, g, b] = image.rgb;
      // Lossy formats and GIF's palette move colours a little; the pixel is still clearly red.
      assert.ok(Math.abs(r! - RED.r) <= 8 && Math.abs(g! - RED.g) <= 8 && Math.abs(b! - RED.b) <= 8, `got ${r},${g},${b}`);
    });
  }

  test('SVG is rasterised, and transparency lands on white', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="6"><rect x="0" y="0" width="5" height="6" fill="#0000ff"/></svg>');
    const image = await decodeImageBytes(svg, 'half.svg');
    assert.equal(image.width, 10);
    assert.deepEqual([...image.rgb.subarray(0, 3)], [0, 0, 255]);
    assert.deepEqual([...image.rgb.subarray(9 * 3, 9 * 3 + 3)], [255, 255, 255]);
  });

  test('transparency is dropped and the stored colours kept, as PIL\'s convert("RGB")', async () => {
    // Transparent pixels that store black, half-transparent ones that store colours, and opaque ones.
    const width = 6;
    const height = 4;
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba.set(i % 3 === 0 ? [0, 0, 0, 0] : i % 3 === 1 ? [200, 40, 90, 128] : [10, 250, 30, 255], i * 4);
    }
    const png = await sharp(Buffer.from(rgba), { raw: { width, height, channels: 4 } }).png().toBuffer();
    const withoutAlpha = await sharp(Buffer.from(rgba), { raw: { width, height, channels: 4 } }).removeAlpha().png().toBuffer();
    const decoded = await decodeImageBytes(png, 'alpha.png');
    assert.deepEqual([...decoded.rgb.subarray(0, 9)], [0, 0, 0, 200, 40, 90, 10, 250, 30]);
    assert.deepEqual(decoded.rgb, (await decodeImageBytes(withoutAlpha, 'rgb.png')).rgb);
  });

  test('EXIF orientation is applied (orientation 6 turns a 12x8 image into 8x12)', async () => {
    const rotated = await sharp({ create: { width: 12, height: 8, channels: 3, background: RED } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImageBytes(rotated, 'rotated.jpg');
    assert.equal(image.width, 8);
    assert.equal(image.height, 12);
  });

  test('a corrupt file is a user error that names the file', async () => {
    const dir = tempDir('decode');
    const file = path.join(dir, 'broken.png');
    fs.writeFileSync(file, Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png'));
    await assert.rejects(decodeImageFile(file), (error) => isUserError(error) && /broken\.png.*cannot be decoded/.test((error as Error).message));
  });

  test('a missing file and an empty file are user errors', async () => {
    const dir = tempDir('decode');
    await assert.rejects(decodeImageFile(path.join(dir, 'nope.png')), (error) => isUserError(error) && /does not exist/.test((error as Error).message));
    fs.writeFileSync(path.join(dir, 'empty.png'), '');
    await assert.rejects(decodeImageFile(path.join(dir, 'empty.png')), (error) => isUserError(error) && /empty/.test((error as Error).message));
  });

  test('an image over the pixel limit is refused before decoding', async () => {
    const big = await sharp({ create: { width: 400, height: 300, channels: 3, background: RED } }).png().toBuffer();
    await assert.rejects(decodeImageBytes(big, 'big.png', { maxPixels: 1000 }), (error) => isUserError(error) && /too large/.test((error as Error).message));
  });
});
