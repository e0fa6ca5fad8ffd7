/** Test fixtures made on the spot: forged tiny checkpoints and small images, in a fresh temp folder. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { forgeCheckpoint } from '../../src/engine/forge/forge.js';

const madeDirs: string[] = [];
// Removed when the test process ends (an e2e run leaves about 1 GB: code-server's data, the VSIX, models);
// PALI_KEEP_TEMP=1 keeps them for a look after a failure.
process.on('exit', () => {
  if (process.env.PALI_KEEP_TEMP) return;
  for (const dir of madeDirs) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pali-${label}-`));
  madeDirs.push(dir);
  return dir;
}

export interface TinyModel {
  checkpointDir: string;
  cacheRoot: string;
}

export function forgeTiny(root: string, preset: 'tiny' | 'tiny-paligemma2', seed = 7): TinyModel {
  const checkpointDir = path.join(root, preset);
  forgeCheckpoint({ preset, seed, outDir: checkpointDir });
  return { checkpointDir, cacheRoot: path.join(root, 'cache') };
}

/** A deterministic RGB gradient with some structure, so different images give different features. */
export function gradientPixels(width: number, height: number, phase = 0): Uint8Array {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / Math.max(1, width - 1);
      pixels[i + 1] = (y * 255) / Math.max(1, height - 1);
      pixels[i + 2] = ((x * 7 + y * 13 + phase) * 5) % 256;
    }
  }
  return pixels;
}

export async function writeGradientPng(file: string, width: number, height: number, phase = 0): Promise<string> {
  await sharp(Buffer.from(gradientPixels(width, height, phase)), { raw: { width, height, channels: 3 } }).png().toFile(file);
  return file;
}
