/**
 * Pillow's `Image.resize` for 8-bit images, reproduced bit for bit (Pillow's libImaging/Resample.c):
 * separable filters whose support widens by the scale factor when shrinking (antialiasing), coefficients
 * normalised then turned into 22-bit fixed point, a horizontal pass rounded and clipped to 8 bits, then a
 * vertical pass. HF's SiglipImageProcessor resizes with exactly this, so matching it is what gives the
 * model the reference's pixels.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

export type PilFilter = 'bilinear' | 'bicubic';

interface Filter {
  support: number;
  weight: (x: number) => number;
}

const FILTERS: Record<PilFilter, Filter> = {
  bilinear: {
    support: 1,
    weight: (x) => {
      const ax = Math.abs(x);
      return ax < 1 ? 1 - ax : 0;
    },
  },
  bicubic: {
    // Keys' cubic with a = -0.5, as Pillow uses.
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const ax = Math.abs(x);
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0;
    },
  },
};

/** PIL's resample codes (Image.Resampling): 2 bilinear, 3 bicubic. */
export function pilFilterFromCode(code: number): PilFilter | null {
  if (code === 2) return 'bilinear';
  if (code === 3) return 'bicubic';
  return null;
}

interface Coefficients {
  kernelSize: number;
  /** Per output pixel: first input index and how many inputs it reads. */
  bounds: Int32Array;
  /** Fixed-point weights, kernelSize per output pixel. */
  weights: Int32Array;
}

interface FloatCoefficients {
  kernelSize: number;
  bounds: Int32Array;
  /** Normalised weights, kernelSize per output pixel (zero past each pixel's count). */
  weights: Float64Array;
}

/** Pillow's precompute_coeffs: each output pixel's input range and its normalised filter weights. */
function floatCoefficients(inSize: number, outSize: number, filter: Filter): FloatCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const kernelSize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * kernelSize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const inverseScale = 1 / filterScale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * inverseScale);
      weights[xx * kernelSize + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < xmax; x++) weights[xx * kernelSize + x] /= total;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { kernelSize, bounds, weights };
}

function precomputeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const float = floatCoefficients(inSize, outSize, filter);
  // normalize_coeffs_8bpc: round half away from zero, then truncate, as (int)(±0.5 + w * 2^22).
  const weights = Int32Array.from(float.weights, (w) => Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE));
  return { kernelSize: float.kernelSize, bounds: float.bounds, weights };
}

/**
 * Pillow's resize of a 32-bit float image (mode "F"): the same filters, double-precision sums, each pass
 * stored as float32, horizontal first. big_vision resizes the 64x64 mask to its box with this.
 */
export function pilResizeFloat(values: Float32Array, width: number, height: number, outWidth: number, outHeight: number, filterName: PilFilter): Float32Array {
  const filter = FILTERS[filterName];
  let current = values;
  let currentWidth = width;
  if (outWidth !== width) {
    const { kernelSize, bounds, weights } = floatCoefficients(width, outWidth, filter);
    const out = new Float32Array(outWidth * height);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        let sum = 0;
        for (let x = 0; x < bounds[xx * 2 + 1]!; x++) sum += current[y * width + bounds[xx * 2]! + x]! * weights[xx * kernelSize + x]!;
        out[y * outWidth + xx] = sum;
      }
    }
    current = out;
    currentWidth = outWidth;
  }
  if (outHeight !== height) {
    const { kernelSize, bounds, weights } = floatCoefficients(height, outHeight, filter);
    const out = new Float32Array(currentWidth * outHeight);
    for (let yy = 0; yy < outHeight; yy++) {
      for (let x = 0; x < currentWidth; x++) {
        let sum = 0;
        for (let y = 0; y < bounds[yy * 2 + 1]!; y++) sum += current[(bounds[yy * 2]! + y) * currentWidth + x]! * weights[yy * kernelSize + y]!;
        out[yy * currentWidth + x] = sum;
      }
    }
    current = out;
  }
  return current === values ? values.slice() : current;
}

function clip8(accumulator: number): number {
  const value = Math.floor(accumulator / ONE);
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

/**
 * Resizes interleaved 8-bit pixels (`channels` per pixel) the way Pillow does with `box` = the whole image
 * and `reducing_gap` = None.
 */
export function pilResize(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  filterName: PilFilter,
): Uint8Array {
  const filter = FILTERS[filterName];
  let current = pixels;
  let currentWidth = width;
  let currentHeight = height;

  // Every sum is of integers far below 2^53, so it is exact in any order: the loops below are ordered
  // for memory access, and still give Pillow's int32 results.
  if (outWidth !== width) {
    const { kernelSize, bounds, weights } = precomputeCoefficients(width, outWidth, filter);
    const out = new Uint8Array(outWidth * height * channels);
    let o = 0;
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let xx = 0; xx < outWidth; xx++) {
        const start = row + bounds[xx * 2]! * channels;
        const count = bounds[xx * 2 + 1]!;
        const kernel = xx * kernelSize;
        if (channels === 3) {
          // RGB, the only layout the pipeline resizes: one pass over the taps for the three channels.
          let r = HALF;
          let g = HALF;
          let b = HALF;
          for (let x = 0, p = start; x < count; x++, p += 3) {
            const weight = weights[kernel + x]!;
            r += current[p]! * weight;
            g += current[p + 1]! * weight;
            b += current[p + 2]! * weight;
          }
          out[o++] = clip8(r);
          out[o++] = clip8(g);
          out[o++] = clip8(b);
          continue;
        }
        for (let c = 0; c < channels; c++) {
          let sum = HALF;
          for (let x = 0, p = start + c; x < count; x++, p += channels) sum += current[p]! * weights[kernel + x]!;
          out[o++] = clip8(sum);
        }
      }
    }
    current = out;
    currentWidth = outWidth;
  }

  if (outHeight !== currentHeight) {
    const { kernelSize, bounds, weights } = precomputeCoefficients(currentHeight, outHeight, filter);
    const rowLength = currentWidth * channels;
    const out = new Uint8Array(rowLength * outHeight);
    const sums = new Float64Array(rowLength);
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = bounds[yy * 2]!;
      const count = bounds[yy * 2 + 1]!;
      const kernel = yy * kernelSize;
      // Whole input rows, one tap at a time: sequential reads instead of a column walk per output pixel.
      sums.fill(HALF);
      for (let y = 0; y < count; y++) {
        const weight = weights[kernel + y]!;
        const source = (ymin + y) * rowLength;
        for (let i = 0; i < rowLength; i++) sums[i] += current[source + i]! * weight;
      }
      const target = yy * rowLength;
      for (let i = 0; i < rowLength; i++) out[target + i] = clip8(sums[i]!);
    }
    current = out;
    currentHeight = outHeight;
  }
  return current === pixels ? pixels.slice() : current;
}

/**
 * Pillow's Image.alpha_composite of RGBA pixels over opaque white (libImaging/AlphaComposite.c, 7-bit
 * precision, rounded division by 255): how we flatten SVGs, which have no colour under transparency.
 */
export function compositeOnWhite(rgba: Uint8Array, pixelCount: number): Uint8Array {
  const rgb = new Uint8Array(pixelCount * 3);
  const shiftForDiv255 = (a: number) => (((a >>> 8) + a) >>> 8);
  for (let i = 0; i < pixelCount; i++) {
    const alpha = rgba[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      if (alpha === 0) {
        rgb[i * 3 + c] = 255;
        continue;
      }
      const outAlpha255 = alpha * 255 + 255 * (255 - alpha);
      const coef1 = Math.floor((alpha * 255 * 255 * 128) / outAlpha255);
      const coef2 = 255 * 128 - coef1;
      const mixed = rgba[i * 4 + c]! * coef1 + 255 * coef2;
      rgb[i * 3 + c] = shiftForDiv255(mixed + (0x80 << 7)) >>> 7;
    }
  }
  return rgb;
}
