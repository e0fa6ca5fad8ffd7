/**
 * Our resize and alpha compositing against Pillow's own output (fixtures made once by
 * scripts/make-pil-fixtures.py with Debian's python3-pil): zero pixel difference, shrinking and enlarging,
 * non-square included. Also through sharp decoding, since PNG decoding is lossless.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImageBytes } from '../../../src/engine/image/decode.js';
import { compositeOnWhite, pilResize } from '../../../src/engine/image/pilResize.js';
import { pattern, type PatternKind } from '../../helpers/patterns.js';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'pil');

interface Case {
  name: string;
  pattern: PatternKind;
  width: number;
  height: number;
  outWidth?: number;
  outHeight?: number;
  alpha?: boolean;
}

const manifest: { cases: Case[] } = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));

function countDifferences(actual: Uint8Array, expected: Uint8Array): number {
  assert.equal(actual.length, expected.length);
  let different = 0;
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) different++;
  return different;
}

describe('Pillow-exact bicubic resize', () => {
  for (const c of manifest.cases.filter((c) => !c.alpha)) {
    test(`${c.name}: ${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight} equals Pillow's pixels`, () => {
      const input = pattern(c.pattern, c.width, c.height, 3);
      const actual = pilResize(input, c.width, c.height, 3, c.outWidth!, c.outHeight!, 'bicubic');
      const expected = new Uint8Array(fs.readFileSync(path.join(FIXTURES, `${c.name}.rgb`)));
      assert.equal(countDifferences(actual, expected), 0);
    });
  }

  test('a PNG decoded by sharp then resized equals Pillow\'s pixels', async () => {
    const c = manifest.cases.find((c) => c.name === 'nonsquare')!;
    const png = await sharp(Buffer.from(pattern(c.pattern, c.width, c.height, 3)), { raw: { width: c.width, height: c.height, channels: 3 } }).png().toBuffer();
    const decoded = await decodeImageBytes(png, 'nonsquare.png');
    const actual = pilResize(decoded.rgb, decoded.width, decoded.height, 3, c.outWidth!, c.outHeight!, 'bicubic');
    assert.equal(countDifferences(actual, new Uint8Array(fs.readFileSync(path.join(FIXTURES, `${c.name}.rgb`)))), 0);
  });

  test('resizing to the same size returns the pixels unchanged', () => {
    const input = pattern('noise', 16, 16, 3);
    assert.deepEqual(pilResize(input, 16, 16, 3, 16, 16, 'bicubic'), input);
  });
});

describe('SVG transparency on white', () => {
  const c = manifest.cases.find((c) => c.alpha)!;
  const expected = new Uint8Array(fs.readFileSync(path.join(FIXTURES, `${c.name}.rgb`)));

  test('compositeOnWhite equals Pillow\'s alpha_composite', () => {
    const rgba = pattern(c.pattern, c.width, c.height, 4);
    assert.equal(countDifferences(compositeOnWhite(rgba, c.width * c.height), expected), 0);
  });
});
