/**
 * Segmentation in the CLI's outputs: masks for an answer that holds <seg> tokens (`pali segment`,
 * `pali generate --json`, `pali parse`), PNGs for --mask-out. The VQ-VAE is loaded only when the answer has
 * a well-formed object to decode.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { maskPng } from '../segmentation/imageMasks.js';
import { segmentAnswer, Segmenter, type Segmentation } from '../segmentation/segmenter.js';
import { findVaeFile, type VaeSource } from '../segmentation/vaeFile.js';

export async function segmentationOf(text: string, width: number, height: number, source: VaeSource): Promise<Segmentation> {
  let segmenter: Segmenter | undefined;
  try {
    return await segmentAnswer(text, width, height, async () => (segmenter = await Segmenter.load(await findVaeFile(source))));
  } finally {
    await segmenter?.release();
  }
}

/** One black-and-white PNG per object, the size of the image: 1-cat.png, 2-dog.png, ... */
export async function writeMaskPngs(dir: string, segmentation: Segmentation): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, mask] of segmentation.masks.entries()) {
    const label = segmentation.segments[i]!.label.replace(/[^\p{L}\p{N}_-]+/gu, '-').replace(/^-+|-+$/g, '') || 'object';
    const file = path.join(dir, `${i + 1}-${label}.png`);
    fs.writeFileSync(file, await maskPng(mask));
    files.push(file);
  }
  return files;
}
