/**
 * A corpus of hostile and broken image inputs, generated from real encoded images: truncations and bit
 * flips of PNG, JPEG, WebP, GIF, TIFF and AVIF files, empty files and wrong extensions, degenerate sizes
 * and decompression bombs, odd but valid layouts (animated, CMYK, 16-bit, palette, alpha), and SVGs that
 * try to read files, reach the network or explode their entities.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { SeededRandom } from '../../src/engine/random.js';
import { pattern } from './patterns.js';

export interface HostileInput {
  name: string;
  bytes: Uint8Array;
  /** What a correct answer is: a decoded image (valid but unusual inputs), or either (broken ones). */
  expect: 'image' | 'image-or-error' | 'error';
}

export const RASTER_FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const;

const WIDTH = 64;
const HEIGHT = 48;

/** A small "photo": the noise pattern, so every codec has real work to do. */
function base(): sharp.Sharp {
  return sharp(Buffer.from(pattern('noise', WIDTH, HEIGHT, 3)), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } });
}

async function encode(format: (typeof RASTER_FORMATS)[number], image = base()): Promise<Uint8Array> {
  return new Uint8Array(await image.toFormat(format).toBuffer());
}

function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG whose header declares width x height, with `rows` of real data behind it (a bomb when short). */
export function pngDeclaring(width: number, height: number, rows = 1): Uint8Array {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  const rowBytes = width + 1; // a filter byte, then one byte per pixel
  const data = deflateSync(Buffer.alloc(rowBytes * rows));
  const signature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', header), pngChunk('IDAT', data), pngChunk('IEND', new Uint8Array(0))]);
}

/** A valid GIF whose logical screen claims 65535 x 65535. */
async function gifBomb(): Promise<Uint8Array> {
  const gif = Buffer.from(await encode('gif'));
  gif.writeUInt16LE(65535, 6);
  gif.writeUInt16LE(65535, 8);
  return gif;
}

/** A valid JPEG whose frame header (SOF0) claims 65500 x 65500. */
async function jpegBomb(): Promise<Uint8Array> {
  const jpeg = Buffer.from(await encode('jpeg'));
  for (let i = 2; i < jpeg.length - 9; i++) {
    if (jpeg[i] === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2)) {
      jpeg.writeUInt16BE(65500, i + 5);
      jpeg.writeUInt16BE(65500, i + 7);
      return jpeg;
    }
  }
  throw new Error('no SOF marker in the JPEG');
}

/** A 32 x 32 SVG on a white rectangle, with `body` drawn over it. */
export function svg(body: string, prolog = ''): Buffer {
  return Buffer.from(`${prolog}<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="32" height="32"><rect width="32" height="32" fill="white"/>${body}</svg>`);
}

/**
 * What the secret text file holds: CSS that would turn the rectangle red if an @import loaded it, and
 * text that would draw glyphs if an external entity expanded it.
 */
export const SECRET_TEXT = 'rect { fill: #ff0000 }';

/** SVGs that try to reach outside themselves; `secretPng` and `secretText` are files they must not read. */
function hostileSvgs(secretPng: string, secretText: string): HostileInput[] {
  const laughs = ['<!ENTITY l0 "lol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`)].join('');
  const redPng = fs.readFileSync(secretPng).toString('base64');
  return [
    // The control: an image the SVG carries itself (a data: URL) is drawn, so a drawing from a file would show.
    { name: 'data-url.svg', bytes: svg(`<image href="data:image/png;base64,${redPng}" width="32" height="32"/>`), expect: 'image' },
    { name: 'file-href.svg', bytes: svg(`<image href="file://${secretPng}" width="32" height="32"/>`), expect: 'image-or-error' },
    { name: 'xlink-file-href.svg', bytes: svg(`<image xlink:href="file://${secretPng}" width="32" height="32"/>`), expect: 'image-or-error' },
    { name: 'relative-href.svg', bytes: svg(`<image href="${path.basename(secretPng)}" width="32" height="32"/>`), expect: 'image-or-error' },
    { name: 'passwd-href.svg', bytes: svg('<image href="file:///etc/passwd" width="32" height="32"/>'), expect: 'image-or-error' },
    { name: 'http-href.svg', bytes: svg('<image href="http://127.0.0.1:9/x.png" width="32" height="32"/>'), expect: 'image-or-error' },
    { name: 'css-import.svg', bytes: svg(`<style>@import url("file://${secretText}");</style>`), expect: 'image-or-error' },
    { name: 'xxe.svg', bytes: svg('<text x="1" y="20" font-size="8">&secret;</text>', `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY secret SYSTEM "file://${secretText}">]>`), expect: 'image-or-error' },
    // The control for xxe.svg: the same text written in the SVG itself draws glyphs.
    { name: 'text-control.svg', bytes: svg(`<text x="1" y="20" font-size="8">${SECRET_TEXT}</text>`), expect: 'image' },
    { name: 'billion-laughs.svg', bytes: svg('<text x="1" y="20">&l9;</text>', `<?xml version="1.0"?><!DOCTYPE svg [${laughs}]>`), expect: 'image-or-error' },
    { name: 'huge-canvas.svg', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="10" height="10"/></svg>'), expect: 'error' },
    { name: 'script.svg', bytes: svg('<script>while(true){}</script><foreignObject width="32" height="32"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'), expect: 'image-or-error' },
    { name: 'not-closed.svg', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect'), expect: 'error' },
  ];
}

/** The whole corpus; `dir` receives the secret files the SVGs try to read. */
export async function hostileImages(dir: string): Promise<{ inputs: HostileInput[]; secretPng: string; secretText: string }> {
  const random = new SeededRandom(11, 'hostile');
  const inputs: HostileInput[] = [];
  for (const format of RASTER_FORMATS) {
    const valid = await encode(format);
    inputs.push({ name: `valid.${format}`, bytes: valid, expect: 'image' });
    // Truncated: every 1/30 of the file, and one byte short.
    for (let k = 0; k < 30; k++) inputs.push({ name: `truncated-${k}of30.${format}`, bytes: valid.slice(0, Math.floor((valid.length * k) / 30)), expect: k === 0 ? 'error' : 'image-or-error' });
    inputs.push({ name: `one-byte-short.${format}`, bytes: valid.slice(0, valid.length - 1), expect: 'image-or-error' });
    // Bit flips: one bit anywhere, or a run of random bytes.
    for (let k = 0; k < 50; k++) {
      const bytes = valid.slice();
      const at = Math.floor(random.next() * bytes.length);
      if (k % 5 === 4) for (let i = at; i < Math.min(bytes.length, at + 16); i++) bytes[i] = Math.floor(random.next() * 256);
      else bytes[at] = bytes[at]! ^ (1 << Math.floor(random.next() * 8));
      inputs.push({ name: `flipped-${k}.${format}`, bytes, expect: 'image-or-error' });
    }
    inputs.push({ name: `empty.${format}`, bytes: new Uint8Array(0), expect: 'error' });
  }
  inputs.push({ name: 'empty.svg', bytes: new Uint8Array(0), expect: 'error' });
  // Wrong extensions: the content decides, as it should; text is no image.
  inputs.push({ name: 'png-named.jpg', bytes: await encode('png'), expect: 'image' });
  inputs.push({ name: 'jpeg-named.png', bytes: await encode('jpeg'), expect: 'image' });
  inputs.push({ name: 'gif-named.webp', bytes: await encode('gif'), expect: 'image' });
  inputs.push({ name: 'text-named.png', bytes: Buffer.from('this is a text file, not an image\n'), expect: 'error' });
  inputs.push({ name: 'pdf-named.png', bytes: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n'), expect: 'error' });
  inputs.push({ name: 'html-named.jpg', bytes: Buffer.from('<html><body><img src="x.png"></body></html>'), expect: 'error' });
  // Degenerate sizes and bombs.
  inputs.push({ name: '0x0.png', bytes: pngDeclaring(0, 0), expect: 'error' });
  inputs.push({ name: '1x100000.png', bytes: pngDeclaring(1, 100_000, 100_000), expect: 'image' });
  inputs.push({ name: '100000x1.png', bytes: pngDeclaring(100_000, 1, 1), expect: 'image' });
  inputs.push({ name: 'bomb-100000x100000.png', bytes: pngDeclaring(100_000, 100_000), expect: 'error' });
  inputs.push({ name: 'bomb-65535x65535.gif', bytes: await gifBomb(), expect: 'image-or-error' });
  inputs.push({ name: 'bomb-65500x65500.jpg', bytes: await jpegBomb(), expect: 'error' });
  // Valid, unusual layouts.
  const frames = 3000;
  const animation = Buffer.alloc(8 * 8 * frames * 3).map((_, i) => (i * 7) & 255);
  inputs.push({ name: `animated-${frames}-frames.gif`, bytes: new Uint8Array(await sharp(animation, { raw: { width: 8, height: 8 * frames, channels: 3, pageHeight: 8 } }).gif().toBuffer()), expect: 'image' });
  inputs.push({ name: 'cmyk.jpg', bytes: await encode('jpeg', base().toColourspace('cmyk')), expect: 'image' });
  inputs.push({ name: 'cmyk.tiff', bytes: await encode('tiff', base().toColourspace('cmyk')), expect: 'image' });
  inputs.push({ name: '16-bit.png', bytes: await encode('png', base().toColourspace('rgb16')), expect: 'image' });
  inputs.push({ name: '16-bit.tiff', bytes: await encode('tiff', base().toColourspace('rgb16')), expect: 'image' });
  inputs.push({ name: 'palette.png', bytes: new Uint8Array(await base().png({ palette: true }).toBuffer()), expect: 'image' });
  inputs.push({ name: 'greyscale.png', bytes: await encode('png', base().greyscale()), expect: 'image' });
  for (const format of ['png', 'webp', 'avif', 'tiff'] as const) {
    inputs.push({ name: `alpha.${format}`, bytes: await encode(format, base().ensureAlpha(0.5)), expect: 'image' });
  }
  const secretPng = path.join(dir, 'secret.png');
  const secretText = path.join(dir, 'secret.txt');
  await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(secretPng);
  fs.writeFileSync(secretText, SECRET_TEXT);
  inputs.push(...hostileSvgs(secretPng, secretText));
  return { inputs, secretPng, secretText };
}
