/**
 * `pali forge --outliers`: weights whose activations have the two kinds of outliers that make 8-bit
 * activations hard, as they are documented for real LLMs and ViTs:
 * - massive activations: a few tokens carry values hundreds of times the others' in a few fixed channels
 *   of the residual stream (Sun et al. 2024, "Massive Activations in Large Language Models": the first
 *   token and delimiters; Darcet et al. 2024 for ViTs' high-norm patch tokens). Here: <bos>'s embedding
 *   and one position of the vision tower.
 * - outlier channels: a few channels are large for every token (Dettmers et al. 2022, LLM.int8()), which
 *   the norms' scales produce. Here: the norms before every linear layer scale a few channels up, and a
 *   few rows of each up_proj make the down_proj's inputs large in a few channels.
 * Random weights cannot show which channels a real PaliGemma has (its weights cannot be loaded here); the
 * channels' magnitudes follow the papers' (x20); the massive tokens' are milder (see MASSIVE_FACTOR).
 */
import type { PaliGemmaConfig } from '../checkpoint/config.js';
import { textNames, visionNames } from '../checkpoint/weightNames.js';

export interface OutlierSpec {
  name: string;
  shape: number[];
  mean: number;
  std: number;
  patch?: (values: Float32Array, firstRow: number) => void;
}

/**
 * How much larger the massive tokens' values are than a typical value, in their channels. Real models
 * reach hundreds to thousands; on the tiny presets anything past about 10 makes the float model repeat
 * one token (the <bos> row then dominates every attention), and a test needs varied answers.
 */
export const MASSIVE_FACTOR = 10;
/** The norm scale of an outlier channel, where the others are about 1. */
export const OUTLIER_CHANNEL_SCALE = 20;
/** How much larger the outlier rows of up_proj and fc1 (so the next layer's inputs' channels) are. */
const OUTLIER_ROW_FACTOR = 10;

/** A few fixed channels spread over the width, as the papers find them: at least 2, about 0.3% of them. */
export function outlierChannels(width: number): number[] {
  const count = Math.max(2, Math.round(width * 0.003));
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.37) * width) / count));
}

type Patch = (values: Float32Array, firstRow: number) => void;

const scaleColumns = (rowLength: number, columns: number[], factor: number): Patch => (values) => {
  for (let start = 0; start < values.length; start += rowLength) {
    for (const c of columns) values[start + c] = values[start + c]! * factor;
  }
};

const scaleRows = (rowLength: number, rows: number[], factor: number): Patch => (values, firstRow) => {
  const count = values.length / rowLength;
  for (const row of rows) {
    if (row < firstRow || row >= firstRow + count) continue;
    for (let i = (row - firstRow) * rowLength; i < (row - firstRow + 1) * rowLength; i++) values[i] = values[i]! * factor;
  }
};

const setChannels = (channels: number[], value: number): Patch => (values) => channels.forEach((c) => (values[c] = value));

/**
 * The specs with outliers patched in; names that carry none pass through. As in trained models, the
 * weights that read an outlier channel are small where it is large (LLM.int8()'s observation that
 * makes SmoothQuant's migration work): the float model computes about what it would without them, so
 * its greedy answers stay varied, while its activations have the ranges that 8 bits must cover.
 */
export function withOutliers<Spec extends OutlierSpec>(specs: Spec[], config: PaliGemmaConfig): Spec[] {
  const { text, vision } = config;
  const H = text.hidden_size;
  const V = vision.hidden_size;
  const textChannels = outlierChannels(H);
  const visionChannels = outlierChannels(V);
  const textRows = outlierChannels(text.intermediate_size);
  const visionRows = outlierChannels(vision.intermediate_size);
  const mlpNorm = config.generation === 2 ? 'pre_feedforward_layernorm' : 'post_attention_layernorm';
  const patches: [RegExp, Patch][] = [
    // Gemma's RMSNorm scales by (1 + w): w = scale - 1 in the outlier channels.
    [new RegExp(`layers\\.\\d+\\.(input_layernorm|${mlpNorm})\\.weight$`), setChannels(textChannels, OUTLIER_CHANNEL_SCALE - 1)],
    [/language_model.*(q_proj|k_proj|v_proj|gate_proj)\.weight$/, scaleColumns(H, textChannels, 1 / OUTLIER_CHANNEL_SCALE)],
    [/language_model.*up_proj\.weight$/, (values, firstRow) => {
      scaleColumns(H, textChannels, 1 / OUTLIER_CHANNEL_SCALE)(values, firstRow);
      scaleRows(H, textRows, OUTLIER_ROW_FACTOR)(values, firstRow);
    }],
    [/language_model.*down_proj\.weight$/, scaleColumns(text.intermediate_size, textRows, 1 / OUTLIER_ROW_FACTOR)],
    [/encoder\.layers\.\d+\.layer_norm[12]\.weight$/, setChannels(visionChannels, OUTLIER_CHANNEL_SCALE)],
    [/encoder.*(q_proj|k_proj|v_proj)\.weight$/, scaleColumns(V, visionChannels, 1 / OUTLIER_CHANNEL_SCALE)],
    [/encoder.*fc1\.weight$/, (values, firstRow) => {
      scaleColumns(V, visionChannels, 1 / OUTLIER_CHANNEL_SCALE)(values, firstRow);
      scaleRows(V, visionRows, OUTLIER_ROW_FACTOR)(values, firstRow);
    }],
    [/encoder.*fc2\.weight$/, scaleColumns(vision.intermediate_size, visionRows, 1 / OUTLIER_ROW_FACTOR)],
  ];
  return specs.map((spec) => {
    let patch: Patch | undefined;
    if (spec.name === textNames.embedTokens) {
      // One row, <bos>, with massive values in two channels (signs kept from the random draw).
      patch = (values, firstRow) => {
        const row = config.bos_token_id - firstRow;
        if (row < 0 || (row + 1) * H > values.length) return;
        for (const c of textChannels.slice(0, 2)) values[row * H + c] = Math.sign(values[row * H + c]! || 1) * MASSIVE_FACTOR * spec.std;
      };
    } else if (spec.name === visionNames.positionEmbedding) {
      // One patch position, the vision tower's high-norm token.
      patch = (values, firstRow) => {
        if (firstRow === 0) for (const c of visionChannels.slice(0, 2)) values[c] = MASSIVE_FACTOR * spec.std;
      };
    } else {
      patch = patches.find(([pattern]) => pattern.test(spec.name))?.[1];
    }
    if (!patch) return spec;
    const own = spec.patch;
    return { ...spec, patch: (values: Float32Array, firstRow: number) => { own?.(values, firstRow); patch!(values, firstRow); } };
  });
}
