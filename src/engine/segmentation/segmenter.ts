/**
 * Segmentation masks from PaliGemma's answer text: parse the objects (common/segmentTokens.ts), decode
 * their codes with the mask VQ-VAE (one batched run), and place each mask in the image's pixels. Used by
 * the CLI (`pali segment`, `pali parse`, `generate --json`), the engine server and the Describe panel.
 */
import * as fs from 'node:fs';
import { parseSegments } from '../../common/segmentTokens.js';
import type { PixelBox } from '../../common/segmentTokens.js';
import { cocoRle, maskInImage, type CocoRle, type ImageMask } from './imageMasks.js';
import { MaskDecoder } from './maskDecoder.js';
import { readNpz } from './npz.js';

export interface Segment {
  label: string;
  box: PixelBox;
  mask: CocoRle;
}

export interface Segmentation {
  segments: Segment[];
  /** The masks themselves, for PNGs. */
  masks: ImageMask[];
  /** Objects skipped, and why. */
  notes: string[];
}

/**
 * Masks for an answer: parsed first, so that the VQ-VAE is loaded (by `load`) only when there is a
 * well-formed object to decode.
 */
export async function segmentAnswer(text: string, width: number, height: number, load: () => Promise<Segmenter>): Promise<Segmentation> {
  const { segments, notes } = parseSegments(text);
  if (!segments.length) return { segments: [], masks: [], notes };
  return (await load()).segment(text, width, height);
}

export class Segmenter {
  private constructor(private readonly decoder: MaskDecoder) {}

  static async load(vaeFile: string): Promise<Segmenter> {
    return new Segmenter(await MaskDecoder.create(readNpz(fs.readFileSync(vaeFile), vaeFile)));
  }

  async segment(text: string, imageWidth: number, imageHeight: number): Promise<Segmentation> {
    const { segments: parsed, notes } = parseSegments(text);
    const decoded = await this.decoder.decode(parsed.map((s) => s.codes));
    const masks = parsed.map((s, i) => maskInImage(decoded[i]!, s.locs, imageWidth, imageHeight));
    return {
      segments: parsed.map((s, i) => ({ label: s.label, box: masks[i]!.box, mask: cocoRle(masks[i]!) })),
      masks,
      notes,
    };
  }

  release(): Promise<void> {
    return this.decoder.release();
  }
}
