/** The integer pixel patterns of scripts/make-pil-fixtures.py, rebuilt byte for byte. */
export type PatternKind = 'screenshot' | 'noise';

export function pattern(kind: PatternKind, width: number, height: number, channels: number): Uint8Array {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let v: number;
        if (kind === 'screenshot') {
          v = (Math.floor(x / 40) + Math.floor(y / 25)) % 3 ? 240 : 30 + 20 * c;
          if ((x * 7 + y * 3) % 97 < 3) v = (x * 13 + y * 29 + c * 71) % 256;
        } else {
          v = (x * 31 + y * 17 + c * 101 + ((x * y) % 7) * 13) % 256;
        }
        if (c === 3) v = (x * 37 + y * 11) % 256;
        data[(y * width + x) * channels + c] = v;
      }
    }
  }
  return data;
}
