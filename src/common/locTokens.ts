/**
 * PaliGemma's detection output: each object is four <locYYYY> tokens (y_min, x_min, y_max, x_max, each in
 * 1024 bins over the image) followed by its label, objects separated by " ; ". Pure: the engine parses
 * boxes with it, and the extension and the webview receive them already in image pixels.
 */

export interface DetectedBox {
  label: string;
  /** Pixel coordinates in the original image. */
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
}

const OBJECT_PATTERN = /((?:<loc\d{4}>){4})\s*([^<;]*)/g;
const LOC_PATTERN = /<loc(\d{4})>/g;

export const LOC_BINS = 1024;

export function locTokensToBoxes(text: string, imageWidth: number, imageHeight: number): DetectedBox[] {
  const boxes: DetectedBox[] = [];
  for (const match of text.matchAll(OBJECT_PATTERN)) {
    const bins = [...match[1]!.matchAll(LOC_PATTERN)].map((m) => Number(m[1]));
    if (bins.some((bin) => bin >= LOC_BINS)) continue;
    const [yMin, xMin, yMax, xMax] = bins as [number, number, number, number];
    boxes.push({
      label: match[2]!.trim(),
      yMin: (yMin / LOC_BINS) * imageHeight,
      xMin: (xMin / LOC_BINS) * imageWidth,
      yMax: (yMax / LOC_BINS) * imageHeight,
      xMax: (xMax / LOC_BINS) * imageWidth,
    });
  }
  return boxes;
}

/** Boxes for a detect request's answer; undefined for every other task (a raw prompt included). */
export function boxesForTask(task: { task: string } | { prompt: string }, text: string, imageWidth: number, imageHeight: number): DetectedBox[] | undefined {
  return 'task' in task && task.task === 'detect' ? locTokensToBoxes(text, imageWidth, imageHeight) : undefined;
}

/** Boxes as a model or a person reads them: one line per object, in pixels, or that nothing was found. */
export function boxesAsText(boxes: DetectedBox[], imageWidth: number, imageHeight: number): string {
  if (!boxes.length) return 'Nothing found.';
  const lines = boxes.map((b) => `${b.label || '(no label)'}: ${[b.xMin, b.yMin, b.xMax, b.yMax].map((v) => Math.round(v)).join(', ')}`);
  return `Found (xMin, yMin, xMax, yMax in pixels of a ${imageWidth}x${imageHeight} image):\n${lines.join('\n')}`;
}
