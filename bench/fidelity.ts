/**
 * `npm run bench:fidelity`: how far int8, int4 and fp16 move the logits from fp32 on the forged full-size model.
 * fp32 generates greedily (EOS suppressed) and records every step's logits; each other dtype then runs the
 * same tokens (teacher forcing) and is compared step by step: cosine similarity and top-1 agreement. The
 * image features (the vision tower's output, whose weights are 8-bit in int4 models) are compared too.
 * Options: --preset NAME (paligemma-3b-224), --model DIR, --steps N (256), --dtypes int8,int4,fp16, --json.
 * Each dtype runs in its own process, so only one model is in memory at a time.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ModelDtype } from '../src/engine/paligemma/components.js';
import { loadModel } from '../src/engine/model.js';
import { argmax } from '../src/engine/generate/sampling.js';
import { cosineSimilarity } from '../test/helpers/numbers.js';
import { runSteps as runModelSteps } from '../test/helpers/teacherForcing.js';
import { benchModelDir, screenshotFile } from './benchFiles.js';

const PROMPT = 'caption en';

interface Comparison {
  dtype: string;
  steps: number;
  cosine_mean: number;
  cosine_min: number;
  top1_agreement: number;
  image_features_cosine: number;
}

async function runSteps(modelDir: string, dtype: ModelDtype, image: string, steps: number, forcedIds: number[] | null, onLogits: (step: number, logits: Float32Array) => void): Promise<{ ids: number[]; features: Float32Array }> {
  const model = await loadModel(modelDir, { dtype, device: 'cpu' });
  try {
    return await runModelSteps(model, image, PROMPT, steps, forcedIds, onLogits);
  } finally {
    await model.release();
  }
}

async function child(mode: string, modelDir: string, dtype: ModelDtype, image: string, steps: number, file: string): Promise<void> {
  if (mode === 'reference') {
    const fd = fs.openSync(file, 'w');
    const { ids, features } = await runSteps(modelDir, dtype, image, steps, null, (_, logits) => fs.writeSync(fd, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength)));
    fs.closeSync(fd);
    fs.writeFileSync(`${file}.ids.json`, JSON.stringify(ids));
    fs.writeFileSync(`${file}.features.bin`, features);
    return;
  }
  const ids = JSON.parse(fs.readFileSync(`${file}.ids.json`, 'utf8')) as number[];
  const fd = fs.openSync(file, 'r');
  const cosines: number[] = [];
  let agree = 0;
  const { features } = await runSteps(modelDir, dtype, image, steps, ids, (i, logits) => {
    const reference = new Float32Array(logits.length);
    fs.readSync(fd, new Uint8Array(reference.buffer), 0, reference.byteLength, i * reference.byteLength);
    cosines.push(cosineSimilarity(reference, logits));
    if (argmax(reference) === argmax(logits)) agree++;
  });
  fs.closeSync(fd);
  const result: Comparison = {
    dtype,
    steps,
    cosine_mean: cosines.reduce((a, b) => a + b, 0) / cosines.length,
    cosine_min: Math.min(...cosines),
    top1_agreement: agree / steps,
    image_features_cosine: cosineSimilarity(new Float32Array(new Uint8Array(fs.readFileSync(`${file}.features.bin`)).buffer), features),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const [, , mode, modelDir, dtype, image, steps, file] = process.argv.slice(1);
    return child(mode!, modelDir!, dtype as ModelDtype, image!, Number(steps), file!);
  }
  const { values } = parseArgs({
    options: {
      preset: { type: 'string', default: 'paligemma-3b-224' },
      model: { type: 'string' },
      steps: { type: 'string', default: '256' },
      dtypes: { type: 'string', default: 'int8,int4,fp16' },
      json: { type: 'boolean', default: false },
    },
  });
  const log = (message: string) => (values.json ? process.stderr : process.stdout).write(message + '\n');
  const modelDir = values.model ?? benchModelDir(values.preset!, log);
  const image = await screenshotFile();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pali-fidelity-')), 'fp32-logits.bin');
  const run = (mode: string, dtype: string) => {
    log(`${mode === 'reference' ? 'fp32 reference' : dtype}: ${values.steps} steps ...`);
    const result = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', mode, modelDir, dtype, image, values.steps!, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (result.status !== 0) throw new Error(`${dtype} failed: ${result.stderr}`);
    return result.stdout.trim();
  };
  try {
    run('reference', 'fp32');
    const comparisons: Comparison[] = values.dtypes!.split(',').map((dtype) => JSON.parse(run('compare', dtype)));
    if (values.json) {
      process.stdout.write(JSON.stringify({ model: modelDir, prompt: PROMPT, comparisons }, null, 2) + '\n');
      return;
    }
    console.log(`\n${modelDir}, "${PROMPT}", logits against fp32 over the same ${values.steps} tokens`);
    console.log(`${'dtype'.padEnd(8)}${'cosine mean'.padStart(14)}${'cosine min'.padStart(14)}${'top-1 agreement'.padStart(18)}${'image features'.padStart(17)}`);
    for (const c of comparisons) {
      const row = [c.cosine_mean.toFixed(5).padStart(14), c.cosine_min.toFixed(5).padStart(14), `${(100 * c.top1_agreement).toFixed(1)}%`.padStart(18), c.image_features_cosine.toFixed(6).padStart(17)];
      console.log(`${c.dtype.padEnd(8)}${row.join('')}`);
    }
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
