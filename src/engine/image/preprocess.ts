/**
 * SiglipImageProcessor's steps, in its order and its float types: resize the 8-bit image with Pillow's
 * filter, rescale (float64 multiply, stored as float32), normalise ((x - mean) / std in float32),
 * channels first.
 */
import { UserError } from '../../common/errors.js';
import type { RgbImage } from './decode.js';
import { pilFilterFromCode, pilResize } from './pilResize.js';

export interface ImageProcessorConfig {
  width: number;
  height: number;
  resample: number;
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

export function readImageProcessorConfig(raw: Record<string, unknown>, imageSize: number): ImageProcessorConfig {
  const size = (raw.size ?? {}) as { height?: number; width?: number; shortest_edge?: number };
  const triple = (value: unknown, fallback: number): [number, number, number] =>
    Array.isArray(value) ? [value[0], value[1], value[2]] : [fallback, fallback, fallback];
  return {
    width: size.width ?? size.shortest_edge ?? imageSize,
    height: size.height ?? size.shortest_edge ?? imageSize,
    resample: (raw.resample as number | undefined) ?? 3,
    doResize: raw.do_resize !== false,
    doRescale: raw.do_rescale !== false,
    rescaleFactor: (raw.rescale_factor as number | undefined) ?? 1 / 255,
    doNormalize: raw.do_normalize !== false,
    mean: triple(raw.image_mean, 0.5),
    std: triple(raw.image_std, 0.5),
  };
}

/** Returns the [3, height, width] float32 pixel values the vision encoder takes. */
export function imageToPixelValues(image: RgbImage, config: ImageProcessorConfig): Float32Array {
  let rgb = image.rgb;
  let width = image.width;
  let height = image.height;
  if (config.doResize && (width !== config.width || height !== config.height)) {
    const filter = pilFilterFromCode(config.resample);
    if (!filter) throw new UserError(`preprocessor_config.json asks for resample ${config.resample}: only 2 (bilinear) and 3 (bicubic) are supported`);
    rgb = pilResize(rgb, width, height, 3, config.width, config.height, filter);
    width = config.width;
    height = config.height;
  }
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const mean = config.mean.map(Math.fround);
  const std = config.std.map(Math.fround);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      let value = rgb[i * 3 + c]!;
      if (config.doRescale) value = Math.fround(value * config.rescaleFactor);
      if (config.doNormalize) value = Math.fround(Math.fround(value - mean[c]!) / std[c]!);
      out[c * plane + i] = value;
    }
  }
  return out;
}
