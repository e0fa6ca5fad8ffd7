/**
 * PaliGemma's segmentation output, parsed as big_vision's segmentation evaluator and Google's PaliGemma demo
 * read it: per object, four <locYYYY> tokens (y_min, x_min, y_max, x_max over 1024 bins), sixteen <segNNN>
 * tokens (codebook indices of the mask VQ-VAE), then the label; objects separated by " ; ". An object that
 * is cut off or malformed is skipped with a note saying why; nothing here throws on model output. Pure.
 */

export interface SegmentTokens {
  label: string;
  /** y_min, x_min, y_max, x_max, each 0..1023. */
  locs: [number, number, number, number];
  /** 16 codebook indices, each 0..127, row by row over a 4x4 grid. */
  codes: number[];
}

export interface ParsedSegments {
  segments: SegmentTokens[];
  /** Why each skipped part of the text was skipped. */
  notes: string[];
}

const SEG_CODES = 16;
const TOKEN = /<(loc|seg)(\d+)>/g;

/** Splits the answer into objects at " ; " outside tokens, and reads each. */
export function parseSegments(text: string): ParsedSegments {
  const segments: SegmentTokens[] = [];
  const notes: string[] = [];
  const body = text.replace(/<eos>\s*$/, '');
  const parts = body.split(/\s*;\s*/).map((p) => p.trim()).filter((p) => p.length > 0);
  parts.forEach((part, index) => {
    const where = `object ${index + 1}`;
    const tokens = [...part.matchAll(TOKEN)];
    const locs = tokens.filter((t) => t[1] === 'loc');
    const segs = tokens.filter((t) => t[1] === 'seg');
    if (!locs.length && !segs.length) {
      notes.push(`${where}: no <loc> or <seg> tokens in "${part.slice(0, 40)}"`);
      return;
    }
    // The reference's pattern: exactly <loc>x4 <seg>x16 in that order, then the label.
    const head = /^((?:<loc\d{4}>){4})\s*((?:<seg\d{3}>){16})\s*([^<>;]*)$/.exec(part);
    if (!head) {
      notes.push(`${where}: expected 4 <loc> then 16 <seg> tokens and a label, got ${locs.length} <loc> and ${segs.length} <seg>${segs.length < SEG_CODES && locs.length === 4 ? ' (cut off?)' : ''}`);
      return;
    }
    const values = [...head[1]!.matchAll(/<loc(\d{4})>/g)].map((m) => Number(m[1]));
    const codes = [...head[2]!.matchAll(/<seg(\d{3})>/g)].map((m) => Number(m[1]));
    if (values.some((v) => v > 1023)) return void notes.push(`${where}: a <loc> value above 1023`);
    if (codes.some((c) => c > 127)) return void notes.push(`${where}: a <seg> value above 127`);
    const [yMin, xMin, yMax, xMax] = values as [number, number, number, number];
    // As big_vision's evaluator: an empty or inverted box is not a prediction.
    if (yMax <= yMin || xMax <= xMin) return void notes.push(`${where}: an empty box`);
    segments.push({ label: head[3]!.trim(), locs: [yMin, xMin, yMax, xMax], codes });
  });
  return { segments, notes };
}

export interface PixelBox {
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
}

/** The object's box in whole pixels, as big_vision's evaluator computes it: int(loc / 1023 * size). */
export function segmentBox(locs: SegmentTokens['locs'], width: number, height: number): PixelBox {
  const [yMin, xMin, yMax, xMax] = locs;
  return {
    xMin: Math.trunc((xMin / 1023) * width),
    yMin: Math.trunc((yMin / 1023) * height),
    xMax: Math.trunc((xMax / 1023) * width),
    yMax: Math.trunc((yMax / 1023) * height),
  };
}
