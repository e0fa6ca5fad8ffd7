/**
 * From a decoded 64x64 mask to a mask over the whole image, as big_vision's segmentation evaluator does:
 * the box is the <loc> values over 1023 (the bins its tokenizer rounded to), truncated to whole pixels; the
 * mask is resized to the box with Pillow's bilinear filter on float values and kept where it is above 0.
 * Masks leave as uncompressed COCO RLE (column-major runs, first of zeros, as pycocotools reads them).
 */
import sharp from 'sharp';
import { segmentBox, type PixelBox, type SegmentTokens } from '../../common/segmentTokens.js';
import { pilResizeFloat } from '../image/pilResize.js';
import { MASK_SIZE } from './maskDecoder.js';


export interface ImageMask {
  /** Whole pixels, end exclusive. */
  box: PixelBox;
  /** height x width, row-major, 1 inside the object. */
  pixels: Uint8Array;
  width: number;
  height: number;
}

export interface CocoRle {
  size: [number, number];
  counts: number[];
}

export function maskInImage(mask64: Float32Array, locs: SegmentTokens['locs'], width: number, height: number): ImageMask {
  const box = segmentBox(locs, width, height);
  const pixels = new Uint8Array(width * height);
  const boxWidth = box.xMax - box.xMin;
  const boxHeight = box.yMax - box.yMin;
  // A box under one pixel wide or high after truncation has no pixels (the evaluator scores it as invalid).
  if (boxWidth > 0 && boxHeight > 0) {
    const resized = pilResizeFloat(mask64, MASK_SIZE, MASK_SIZE, boxWidth, boxHeight, 'bilinear');
    for (let y = 0; y < boxHeight; y++) {
      for (let x = 0; x < boxWidth; x++) {
        if (resized[y * boxWidth + x]! > 0) pixels[(box.yMin + y) * width + box.xMin + x] = 1;
      }
    }
  }
  return { box, pixels, width, height };
}

/** Uncompressed COCO RLE: run lengths down each column in turn, starting with a (maybe empty) run of 0s. */
export function cocoRle(mask: ImageMask): CocoRle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < mask.width; x++) {
    for (let y = 0; y < mask.height; y++) {
      const value = mask.pixels[y * mask.width + x]!;
      if (value !== current) {
        counts.push(run);
        run = 0;
        current = value;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [mask.height, mask.width], counts };
}

/** The mask as a black-and-white PNG the size of the image. */
export function maskPng(mask: ImageMask): Promise<Buffer> {
  return sharp(Buffer.from(mask.pixels.map((v) => v * 255)), { raw: { width: mask.width, height: mask.height, channels: 1 } }).png().toBuffer();
}
