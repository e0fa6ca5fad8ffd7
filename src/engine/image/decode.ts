/**
 * Decodes an image file with sharp into 8-bit RGB as HF's image loading sees it: EXIF orientation applied
 * (as `load_image` does), the first frame of animations, and no ICC conversion (PIL ignores embedded
 * profiles, so the reference pixels are the file's own). Transparency is dropped and the stored colours
 * kept, as SiglipImageProcessor's `convert_rgb` (PIL's `convert("RGB")`) does. SVG, which PIL cannot
 * read, has no stored colours under its transparent areas: it is composited on white instead.
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { describeError, UserError } from '../../common/errors.js';
import { compositeOnWhite } from './pilResize.js';
import { IMAGE_FORMAT_NAMES } from '../../common/imageFiles.js';

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved RGB, 8 bits per channel, row-major. */
  rgb: Uint8Array;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (decompression bombs). */
  maxPixels?: number;
}

const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * Reads the bytes first and hands sharp a buffer: an SVG then has no base location, so librsvg cannot
 * follow references to other files.
 */
export async function decodeImageFile(file: string, options: DecodeOptions = {}): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `image ${file} does not exist` : `cannot read image ${file}: ${code ?? String(error)}`);
  }
  return decodeImageBytes(bytes, file, options);
}

export async function decodeImageBytes(bytes: Uint8Array, label: string, options: DecodeOptions = {}): Promise<RgbImage> {
  if (bytes.byteLength === 0) throw new UserError(`image ${label} is empty`);
  try {
    const image = sharp(bytes, {
      limitInputPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
      ignoreIcc: true,
      pages: 1,
      failOn: 'error',
    });
    const isSvg = (await image.metadata()).format === 'svg';
    const { data, info } = await image
      .rotate()
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const count = info.width * info.height;
    if (isSvg) return { width: info.width, height: info.height, rgb: compositeOnWhite(pixels, count) };
    const rgb = new Uint8Array(count * 3);
    for (let i = 0; i < count; i++) {
      rgb[i * 3] = pixels[i * 4]!;
      rgb[i * 3 + 1] = pixels[i * 4 + 1]!;
      rgb[i * 3 + 2] = pixels[i * 4 + 2]!;
    }
    return { width: info.width, height: info.height, rgb };
  } catch (error) {
    const message = describeError(error);
    if (/pixel limit/i.test(message)) {
      throw new UserError(`image ${label} is too large (over ${options.maxPixels ?? DEFAULT_MAX_PIXELS} pixels)`);
    }
    throw new UserError(`image ${label} cannot be decoded (${message.split('\n')[0]}): is it a ${IMAGE_FORMAT_NAMES} file?`);
  }
}
