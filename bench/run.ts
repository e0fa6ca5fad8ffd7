/**
 * `npm run bench`: our engine against transformers.js, the other JavaScript runtime of PaliGemma, on the
 * very same converted files, CPU, fp32, greedy. Prints figures and ratios; never pass/fail on time.
 * Options: --preset NAME (default tiny; full-size presets are forged once into the cache, ~6 GB each),
 *          --model DIR (a checkpoint or export instead), --tokens N (16), --runs N (3).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { convertCheckpoint, defaultCacheRoot } from '../src/engine/convert/convert.js';
import { forgeCheckpoint } from '../src/engine/forge/forge.js';

interface Measurement {
  engine: string;
  loadMs: number;
  firstTokenMs: number;
  totalMs: number;
  decodeTokensPerS: number;
  ids: number[];
  peakRssMb: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { preset: { type: 'string', default: 'tiny' }, model: { type: 'string' }, tokens: { type: 'string', default: '16' }, runs: { type: 'string', default: '3' } },
  });
  const benchRoot = path.join(defaultCacheRoot(), 'bench');
  let modelDir = values.model;
  if (!modelDir) {
    modelDir = path.join(benchRoot, `${values.preset}-seed1`);
    if (!fs.existsSync(path.join(modelDir, 'config.json'))) {
      console.log(`forging ${values.preset} into ${modelDir} ...`);
      forgeCheckpoint({ preset: values.preset!, seed: 1, outDir: modelDir });
    }
  }
  console.log('converting (cached after the first time) ...');
  const dir = convertCheckpoint({ modelDir, dtype: 'fp32' }).dir;
  const image = path.join(benchRoot, 'screenshot.png');
  fs.mkdirSync(benchRoot, { recursive: true });
  // A 1280x800 "screenshot": flat panels and noise, so resizing does real work.
  const pixels = Buffer.alloc(1280 * 800 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) % 251 < 200 ? 235 : (i * 7) % 256;
  await sharp(pixels, { raw: { width: 1280, height: 800, channels: 3 } }).png().toFile(image);

  const measurements: Measurement[] = [];
  for (const engine of ['ours', 'transformers.js']) {
    // Same start for both: the model's files read once just before, so neither engine's load time
    // depends on what the page cache kept from the run before it (full-size files are ~14 GB).
    warmPageCache(dir);
    console.log(`running ${engine} ...`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'measure.ts'), engine, dir, image, 'caption en', values.tokens!, values.runs!], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (child.status !== 0) throw new Error(`${engine} failed: ${child.stderr}`);
    measurements.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!));
  }
  const [ours, theirs] = measurements as [Measurement, Measurement];
  const row = (label: string, a: number, b: number, unit: string, higherIsBetter = false) =>
    console.log(`${label.padEnd(24)}${a.toFixed(1).padStart(12)}${b.toFixed(1).padStart(16)} ${unit.padEnd(8)}${(higherIsBetter ? a / b : b / a).toFixed(2).padStart(8)}x`);
  console.log(`\nmodel ${modelDir}, ${values.tokens} new tokens, median of ${values.runs} runs, CPU fp32`);
  console.log(`${''.padEnd(24)}${'ours'.padStart(12)}${'transformers.js'.padStart(16)} ${''.padEnd(8)}${'speed-up'.padStart(9)}`);
  row('load', ours.loadMs, theirs.loadMs, 'ms');
  row('time to first token', ours.firstTokenMs, theirs.firstTokenMs, 'ms');
  row('decode', ours.decodeTokensPerS, theirs.decodeTokensPerS, 'tok/s', true);
  row('total', ours.totalMs, theirs.totalMs, 'ms');
  row('peak memory', ours.peakRssMb, theirs.peakRssMb, 'MB');
  const same = JSON.stringify(ours.ids) === JSON.stringify(theirs.ids);
  console.log(`same greedy ids: ${same ? 'yes' : 'no'}${same ? '' : ' (transformers.js resizes with its own filter, not Pillow\'s, so its pixels differ;\n  on images at the model\'s size the ids agree: test/engine/transformersJs.test.ts)'}`);
}

function warmPageCache(dir: string): void {
  const buffer = Buffer.allocUnsafe(1 << 24);
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const fd = fs.openSync(path.join(entry.parentPath, entry.name), 'r');
    try {
      while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
