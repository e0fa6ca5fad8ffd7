/**
 * SmoothQuant's migration (Xiao et al. 2023) without calibration data, for int8 models. Per-token scales
 * cope with tokens that are large everywhere; a channel that is large in every token (an outlier
 * channel) still sets each token's step and rounds its other channels to a few levels. Migration moves
 * part of a channel's range from the activations into the weights that read it, where per-channel weight
 * scales absorb it: x W^T = (x / s) (W diag(s))^T, exactly, for any positive s.
 *
 * SmoothQuant measures each channel's range on calibration data; here the range comes from the weights,
 * which is where outlier channels come from in these models:
 * - after a norm, channel j is the normalised activation times the norm's scale, so |scale_j| (+ |bias_j|
 *   for LayerNorm) stands for its range, and dividing the norm's scale by s is exact;
 * - in Gemma's gated MLP, channel j of down_proj's input is act(gate_j) * up_j, linear in up_proj's row j:
 *   dividing that row by s_j and multiplying down_proj's column j by s_j is exact, and max |up row j|
 *   stands for the channel's range.
 * s_j = range_j^a / max_n |W_nj|^(1-a) with SmoothQuant's a = 0.5 splits the range evenly between the two.
 * Measured on the forged outlier model (`pali forge --outliers`) and the full-size one: README, int8.
 */

export const MIGRATION_STRENGTH = 0.5;

/** Ranges below this fraction of the largest are raised to it, so that no s is 0 or infinite. */
const SMALLEST_RELATIVE_RANGE = 1e-4;

function floored(values: Float32Array): Float32Array {
  let max = 0;
  for (const v of values) max = Math.max(max, v);
  const floor = max * SMALLEST_RELATIVE_RANGE || 1;
  return values.map((v) => Math.max(v, floor));
}

/** Per input channel (column) of W [rows, cols]: max |W[:, j]|, over every weight that reads the channel. */
function columnRanges(weights: Float32Array[], cols: number): Float32Array {
  const out = new Float32Array(cols);
  for (const w of weights) {
    for (let i = 0; i < w.length; i++) {
      const j = i % cols;
      out[j] = Math.max(out[j]!, Math.abs(w[i]!));
    }
  }
  return out;
}

/** The migration scales of `cols` channels whose activation ranges are `activationRanges`. */
export function migrationScales(activationRanges: Float32Array, weights: Float32Array[], cols: number, strength = MIGRATION_STRENGTH): Float32Array {
  const a = floored(activationRanges.map(Math.abs));
  const w = floored(columnRanges(weights, cols));
  return a.map((range, j) => range ** strength / w[j]! ** (1 - strength));
}

/**
 * W diag(s), in place: each column j of W [rows, cols] times s_j. In place because the LM head's copy is
 * 2 GB at float32; loadWeight returns a fresh array on every call, so nothing else sees the change.
 */
export function scaleColumns(weight: Float32Array, cols: number, s: Float32Array): Float32Array {
  for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! * s[i % cols]!;
  return weight;
}

/** diag(1/s) W, in place: each row r of W [rows, cols] divided by s_r. */
export function divideRows(weight: Float32Array, cols: number, s: Float32Array): Float32Array {
  for (let i = 0; i < weight.length; i++) weight[i] = weight[i]! / s[Math.floor(i / cols)]!;
  return weight;
}

/** Per row of W [rows, cols]: max |W[r, :]|. */
export function rowRanges(weight: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(weight.length / cols);
  for (let i = 0; i < weight.length; i++) {
    const r = Math.floor(i / cols);
    out[r] = Math.max(out[r]!, Math.abs(weight[i]!));
  }
  return out;
}

/**
 * A norm and the linear layers that read it, smoothed together: the norm divides by s (`divisors`) and each
 * weight's columns are multiplied by s. `normRanges` are |scale| (+ |bias|) of the norm.
 */
export function smoothAfterNorm(normRanges: Float32Array, weights: Float32Array[], cols: number): { divisors: Float32Array; weights: Float32Array[] } {
  const s = migrationScales(normRanges, weights, cols);
  return { divisors: s, weights: weights.map((w) => scaleColumns(w, cols, s)) };
}

/**
 * A channel counts as an outlier when its range is this many times the median channel's. Trained models'
 * outlier channels are 10-100x the rest (LLM.int8()); evenly spread weights stay within about 2x.
 */
export const OUTLIER_RATIO = 4;

/** Whether some of `ranges` are outliers (OUTLIER_RATIO times the median or more). */
export function hasOutlierChannels(ranges: Float32Array): boolean {
  const sorted = Float32Array.from(ranges, Math.abs).sort();
  const median = sorted[sorted.length >> 1]!;
  return sorted[sorted.length - 1]! >= OUTLIER_RATIO * median;
}

/** A value made on first use, then kept: a norm and its linear layers share one smoothing. */
export function once<T>(make: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = make();
      made = true;
    }
    return value as T;
  };
}
