/**
 * How the CLI prints an answer, wherever it came from (`pali generate` and its shortcuts, `pali parse`):
 * `--json`'s contract, and one tab-separated line per box or mask.
 */
import type { DetectedBox } from '../../common/locTokens.js';
import type { Segment } from '../segmentation/segmenter.js';
import type { GenerateResultMessage } from '../../protocol.js';

/** `--json`'s contract (snake_case, as scripts already parse it), from the engine's answer (camelCase). */
export function generateJson(result: GenerateResultMessage) {
  const { timings } = result;
  return {
    text: result.text,
    generated_ids: result.generatedIds,
    prompt_ids: result.promptIds,
    device: result.device,
    timings: {
      preprocess_ms: timings.preprocessMs,
      vision_ms: timings.visionMs,
      prefill_ms: timings.prefillMs,
      decode_ms: timings.decodeMs,
      tokens_per_s: timings.tokensPerS,
    },
  };
}

/** `label<TAB>xMin<TAB>yMin<TAB>xMax<TAB>yMax`, in the image's pixels, one decimal. */
export function boxLines(boxes: DetectedBox[]): string {
  return boxes.map((b) => `${b.label || '(no label)'}\t${[b.xMin, b.yMin, b.xMax, b.yMax].map((v) => v.toFixed(1)).join('\t')}\n`).join('');
}

/** The same for masks: their boxes, in whole pixels. */
export function segmentLines(segments: Segment[]): string {
  return segments.map((s) => `${s.label || '(no label)'}\t${[s.box.xMin, s.box.yMin, s.box.xMax, s.box.yMax].join('\t')}\n`).join('');
}
