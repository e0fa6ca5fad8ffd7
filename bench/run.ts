/**
 * `npm run bench`: our engine against transformers.js, the other JavaScript runtime of PaliGemma, on the
 * very same converted files, CPU, greedy, with the floors of this machine measured in the same run. Prints
 * figures and ratios; never pass/fail on time.
 *
 * Options: --preset NAME (default paligemma-3b-224, forged once into the cache; `tiny` for a quick run)
 *          --model DIR (a checkpoint instead), --dtype int8|int4|fp32|fp16 (int4), --tokens N (32, forced:
 *          <eos> is suppressed until then), --runs N (3 warm runs per engine, after one cold),
 *          --against DTYPE (our engine at another dtype, measured in the same rounds: with --dtype int8,
 *          int4 by default, so that the two paths are compared side by side), --prompt TEXT (the first
 *          question: `caption en`, or `ocr` on 448 px presets such as paligemma-3b-448), --json,
 *          --no-recommended (skip transformers.js at the dtypes its PaliGemma card recommends, TRANSFORMERS_JS_RECOMMENDED_DTYPES,
 *          a third contender by default).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readPaliGemmaConfig } from '../src/engine/checkpoint/config.js';
import { convertCheckpoint, convertForTransformersJsRecommended, defaultCacheRoot, TRANSFORMERS_JS_RECOMMENDED_DTYPES } from '../src/engine/convert/convert.js';
import { componentDtype, componentFile, type Component, type ModelDtype } from '../src/engine/paligemma/components.js';
import { findEmbeddingTable } from '../src/engine/paligemma/tokenEmbeddings.js';
import { loadTokenizer } from '../src/engine/text/tokenizer.js';
import { benchModelDir, screenshotFile } from './benchFiles.js';
import { bestOf, type Floors } from './floors.js';
import { cpuFeatures, type CpuFeatures } from '../src/engine/runtime/cpuFeatures.js';
import { preparedDirFor } from '../src/engine/runtime/preparedSessions.js';
import { engineEnvironment } from '../src/common/engineEnvironment.js';
import { FIRST_PROMPT, RECOMMENDED, type ProcessFigures, type QuestionFigures } from './measure.js';

/**
 * A process to measure: an engine at a dtype. `ours@int4` is our engine at the --against dtype;
 * `transformers.js, recommended` is transformers.js at the dtypes its PaliGemma card gives.
 */
interface Contender {
  label: string;
  engine: 'ours' | 'transformers.js';
  dtype: ModelDtype | typeof RECOMMENDED;
}

const PEER = 'transformers.js';
const RECOMMENDED_PEER = 'transformers.js, recommended';

/** The files an engine reads for a dtype: each component's graph and its external data. */
function filesInUse(dir: string, dtype: ModelDtype, components: Component[]): string[] {
  return components.flatMap((component) => {
    const file = path.join(dir, componentFile(component, dtype));
    return [file, `${file}_data`].filter((f) => fs.existsSync(f));
  });
}

const sizeOf = (files: string[]) => files.reduce((sum, f) => sum + fs.statSync(f).size, 0);

/** Drops the files' pages from the page cache (posix_fadvise DONTNEED through GNU dd), for a cold load. */
function dropFromPageCache(files: string[]): void {
  for (const file of files) spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

function readIntoPageCache(files: string[]): void {
  const buffer = Buffer.allocUnsafe(1 << 24);
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      while (fs.readSync(fd, buffer, 0, buffer.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function runChild(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, script), ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (child.status !== 0) throw new Error(`${script} ${args[0]} failed: ${child.stderr}`);
  return child.stdout.trim().split('\n').at(-1)!;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

interface EngineSummary {
  load_cold_ms: number;
  load_warm_ms: number;
  preprocess_ms: number;
  vision_ms: number;
  prefill_ms: number;
  first_token_ms: number;
  decode_tokens_per_s: number;
  end_to_end_ms: number;
  second_question_ms: number;
  peak_rss_mb: number;
}

function summarise(processes: ProcessFigures[]): EngineSummary {
  const of = (pick: (q: QuestionFigures) => number) => median(processes.map((p) => pick(p.first)));
  return {
    load_cold_ms: processes[0]!.loadMs,
    load_warm_ms: median(processes.slice(1).map((p) => p.loadMs)),
    preprocess_ms: of((q) => q.preprocessMs),
    vision_ms: of((q) => q.visionMs),
    prefill_ms: of((q) => q.prefillMs),
    first_token_ms: of((q) => q.firstTokenMs),
    decode_tokens_per_s: of((q) => q.decodeTokensPerS),
    end_to_end_ms: of((q) => q.endToEndMs),
    second_question_ms: median(processes.map((p) => p.second.endToEndMs)),
    peak_rss_mb: median(processes.map((p) => p.peakRssMb)),
  };
}

const HIGHER_IS_BETTER = new Set(['decode_tokens_per_s']);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: 'string', default: 'paligemma-3b-224' },
      model: { type: 'string' },
      dtype: { type: 'string', default: 'int4' },
      tokens: { type: 'string', default: '32' },
      runs: { type: 'string', default: '3' },
      against: { type: 'string' },
      'no-recommended': { type: 'boolean', default: false },
      prompt: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const log = (message: string) => (values.json ? process.stderr : process.stdout).write(message + '\n');
  const dtype = values.dtype as ModelDtype;
  const runs = Math.max(1, Number(values.runs));
  const modelDir = values.model ?? benchModelDir(values.preset!, log);
  log(`converting to ${dtype} (cached after the first time) ...`);
  const dir = convertCheckpoint({ modelDir, dtype }).dir;
  const image = await screenshotFile();

  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  // A decode step reads the masked decoder's graph and the weights it shares with the merged decoder's
  // data file (tiny models keep their weights inside each graph, and have no data file).
  const mergedData = path.join(dir, `${componentFile('decoder_model_merged', dtype)}_data`);
  const decoderFiles = [path.join(dir, componentFile('decoder_model_masked', dtype)), ...(fs.existsSync(mergedData) ? [mergedData] : [])];
  // Our engine reads a plain embedding table row by row from disk (paligemma/tokenEmbeddings.ts): its bytes
  // are not weights it holds.
  const embedFromDisk = findEmbeddingTable(path.join(dir, componentFile('embed_tokens', dtype))) !== null;
  const oursFiles = [...filesInUse(dir, dtype, embedFromDisk ? ['vision_encoder'] : ['vision_encoder', 'embed_tokens']), ...decoderFiles];
  const allFiles = [...new Set([...oursFiles, ...filesInUse(dir, dtype, ['embed_tokens', 'decoder_model_merged'])])];

  log('measuring the floors of this machine ...');
  const tokenizer = await loadTokenizer(dir);
  const paliConfig = readPaliGemmaConfig(config);
  // The 448 px models are what OCR runs on: their first question is `ocr`.
  const prompt = values.prompt ?? (paliConfig.vision.image_size === 448 ? 'ocr' : FIRST_PROMPT);
  const prefix = paliConfig.num_image_tokens + 1 + tokenizer.encode(`${prompt}\n`).length;
  const decodeBytes = sizeOf(decoderFiles);
  const vocab = paliConfig.text.vocab_size;
  const measureFloors = (): Floors => JSON.parse(runChild('floors.ts', [path.join(dir, 'config.json'), dtype, String(prefix), String(decodeBytes), String(vocab)]));
  const floorsBefore = measureFloors();


  const against = (values.against ?? (dtype === 'int8' ? 'int4' : '')) as ModelDtype | '';
  const contenders: Contender[] = [
    { label: 'ours', engine: 'ours', dtype },
    { label: PEER, engine: 'transformers.js', dtype },
    ...(!values['no-recommended'] ? [{ label: RECOMMENDED_PEER, engine: 'transformers.js' as const, dtype: RECOMMENDED }] : []),
    ...(against && against !== dtype ? [{ label: `ours@${against}`, engine: 'ours' as const, dtype: against }] : []),
  ];
  // What each contender reads. A warm run reads every file into the page cache, then its own once more:
  // the files of four contenders (about 15 GB for the 3B, int8's prepared copies included) can outgrow the
  // page cache, and the first files read were evicted by the last, so that one engine ran warm and
  // another half cold.
  const ownFiles: Record<string, string[]> = {
    ours: [...oursFiles, ...filesInUse(dir, dtype, ['embed_tokens'])],
    [PEER]: filesInUse(dir, dtype, ['vision_encoder', 'embed_tokens', 'decoder_model_merged']),
  };
  if (against && against !== dtype) {
    convertCheckpoint({ modelDir, dtype: against });
    ownFiles[`ours@${against}`] = filesInUse(dir, against, ['vision_encoder', 'embed_tokens', 'decoder_model_masked', 'decoder_model_merged']);
    allFiles.push(...ownFiles[`ours@${against}`]!);
  }
  if (!values['no-recommended']) {
    ownFiles[RECOMMENDED_PEER] = convertForTransformersJsRecommended({ modelDir, onProgress: log }).files;
    allFiles.push(...ownFiles[RECOMMENDED_PEER]!);
  }
  const processes: Record<string, ProcessFigures[]> = Object.fromEntries(contenders.map((c) => [c.label, []]));
  // Round 0 loads cold; then warm rounds, the engines alternating (a b a b) so that drift hits both.
  for (let round = 0; round <= runs; round++) {
    for (const contender of contenders) {
      // int8's copies prepared for this CPU are what its sessions load: cold means those too.
      const files = [...allFiles, ...preparedFilesOf(allFiles)];
      const own = ownFiles[contender.label] ?? [];
      if (round === 0) dropFromPageCache(files);
      else readIntoPageCache([...files, ...own, ...preparedFilesOf(own)]);
      log(`${contender.label}, ${round === 0 ? 'cold' : `warm run ${round}/${runs}`} ...`);
      processes[contender.label]!.push(JSON.parse(runChild('measure.ts', [contender.engine, dir, contender.dtype, image, values.tokens!, prompt], contender.engine === 'ours' ? engineEnvironment(process.env) : process.env)));
    }
  }

  log('measuring the floors of this machine again ...');
  const floors = bestOf(floorsBefore, measureFloors());
  const ours = summarise(processes.ours!);
  const theirs = summarise(processes[PEER]!);
  const recommended = processes[RECOMMENDED_PEER] ? summarise(processes[RECOMMENDED_PEER]!) : null;
  const baseline = against && processes[`ours@${against}`] ? summarise(processes[`ours@${against}`]!) : null;
  const weightBytes = sizeOf(oursFiles);
  const closeness = {
    first_token_over_compute_floor: ours.first_token_ms / floors.computeFloorMs,
    decode_percent_of_bandwidth_ceiling: (100 * ours.decode_tokens_per_s) / floors.decodeCeilingTokensPerS,
    peak_rss_over_weight_bytes: (ours.peak_rss_mb * 2 ** 20) / weightBytes,
  };
  const sameIds = JSON.stringify(processes.ours![0]!.first.ids) === JSON.stringify(processes[PEER]![0]!.first.ids);
  const report = {
    preset: values.model ? null : values.preset,
    model: modelDir,
    dtype,
    prompt,
    tokens: Number(values.tokens),
    runs,
    prefix_length: prefix,
    weight_bytes: weightBytes,
    cpu: cpuFeatures(),
    engines: { ours, [PEER]: theirs, ...(recommended ? { [RECOMMENDED_PEER]: recommended } : {}), ...(baseline ? { [`ours@${against}`]: baseline } : {}) },
    speedup: speedups(ours, theirs),
    ...(recommended ? { speedup_over_recommended: speedups(ours, recommended), recommended_dtypes: TRANSFORMERS_JS_RECOMMENDED_DTYPES } : {}),
    ...(baseline ? { [`speedup_over_ours_${against}`]: speedups(ours, baseline) } : {}),
    floors,
    closeness,
    same_greedy_ids: sameIds,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return;
  }
  printTable(report, ours, theirs);
  const loads = Object.entries(processes.ours!.at(-1)!.loads ?? {});
  if (loads.length) console.log(`ours' sessions in the warm runs: ${loads.map(([name, how]) => `${name} ${how}`).join(', ')}`);
  if (recommended) {
    const dtypes = Object.entries(TRANSFORMERS_JS_RECOMMENDED_DTYPES).map(([component, d]) => `${component} ${d}`).join(', ');
    printComparison(`\nours at ${dtype} against transformers.js at the dtypes its PaliGemma card recommends (${dtypes}), same rounds`, dtype, ours, 'recommended', recommended);
  }
  if (baseline) printComparison(`\nours at ${dtype} against ours at ${against}, same rounds`, dtype, ours, against, baseline);
}

/** Ours over another engine, key by key: above 1 is ours ahead. */
function speedups(ours: EngineSummary, other: EngineSummary): Record<string, number> {
  const result: Record<string, number> = {};
  for (const key of Object.keys(ours) as (keyof EngineSummary)[]) {
    result[key.replace(/_(ms|mb|tokens_per_s)$/, '')] = HIGHER_IS_BETTER.has(key) ? ours[key] / other[key] : other[key] / ours[key];
  }
  return result;
}

/** The files of the prepared copies of `files` that exist (runtime/preparedSessions.ts). */
function preparedFilesOf(files: string[]): string[] {
  return files
    .filter((file) => file.endsWith('.onnx'))
    .map((file) => preparedDirFor(file, defaultCacheRoot()))
    .flatMap((dir) => ['model.onnx', 'model.onnx.data'].map((name) => path.join(dir, name)))
    .filter((file) => fs.existsSync(file));
}

/** The table's rows for ours against another engine measured in the same rounds. */
function printComparison(heading: string, oursName: string, ours: EngineSummary, otherName: string, other: EngineSummary): void {
  console.log(heading);
  console.log(`${''.padEnd(22)}${oursName.padStart(11)}${otherName.padStart(17)} ${''.padEnd(6)}${'speed-up'.padStart(9)}`);
  for (const [label, key, unit] of TABLE_ROWS) {
    const ratio = HIGHER_IS_BETTER.has(key) ? ours[key] / other[key] : other[key] / ours[key];
    console.log(`${label.padEnd(22)}${ours[key].toFixed(1).padStart(11)}${other[key].toFixed(1).padStart(17)} ${unit.padEnd(6)}${ratio.toFixed(2).padStart(8)}x`);
  }
}

const TABLE_ROWS: [string, keyof EngineSummary, string][] = [
    ['load, cold', 'load_cold_ms', 'ms'],
    ['load, warm', 'load_warm_ms', 'ms'],
    ['preprocess', 'preprocess_ms', 'ms'],
    ['vision', 'vision_ms', 'ms'],
    ['prefill', 'prefill_ms', 'ms'],
    ['time to first token', 'first_token_ms', 'ms'],
    ['decode', 'decode_tokens_per_s', 'tok/s'],
    ['end to end', 'end_to_end_ms', 'ms'],
    ['second question', 'second_question_ms', 'ms'],
    ['peak RSS', 'peak_rss_mb', 'MB'],
];

function printTable(report: { dtype: string; model: string; prompt: string; tokens: number; runs: number; weight_bytes: number; floors: Floors; closeness: Record<string, number>; same_greedy_ids: boolean; cpu: CpuFeatures }, ours: EngineSummary, theirs: EngineSummary): void {
  const rows = TABLE_ROWS;
  console.log(`\n${report.cpu.model}; ${report.cpu.summary}`);
  console.log(`\n${report.model}, ${report.dtype}, "${report.prompt}", ${report.tokens} new tokens forced, CPU; cold load once, then median of ${report.runs} warm runs`);
  console.log(`${''.padEnd(22)}${'ours'.padStart(11)}${'transformers.js'.padStart(17)} ${''.padEnd(6)}${'speed-up'.padStart(9)}`);
  for (const [label, key, unit] of rows) {
    const ratio = HIGHER_IS_BETTER.has(key) ? ours[key] / theirs[key] : theirs[key] / ours[key];
    console.log(`${label.padEnd(22)}${ours[key].toFixed(1).padStart(11)}${theirs[key].toFixed(1).padStart(17)} ${unit.padEnd(6)}${ratio.toFixed(2).padStart(8)}x`);
  }
  const f = report.floors;
  console.log('\nfloors of this machine (onnxruntime-node, same run; the better of before and after the engines)');
  const visionDtype = componentDtype('vision_encoder', report.dtype as ModelDtype);
  console.log(`  GEMM, vision shape (${visionDtype})${' '.repeat(Math.max(0, 13 - visionDtype.length))}${f.visionGemmGflops.toFixed(1)} GFLOP/s`);
  console.log(`  GEMM, prefill shape (${report.dtype})${' '.repeat(Math.max(0, 12 - report.dtype.length))}${f.prefillGemmGflops.toFixed(1)} GFLOP/s`);
  console.log(`  weight streaming (1-row product)  ${f.streamingGBps.toFixed(1)} GB/s`);
  console.log(`  compute floor, vision + prefill   ${f.computeFloorMs.toFixed(0)} ms; ours takes ${report.closeness.first_token_over_compute_floor!.toFixed(2)}x that to the first token`);
  console.log(`  decode ceiling (${(f.decodeBytes / 2 ** 30).toFixed(2)} GB per step) ${f.decodeCeilingTokensPerS.toFixed(1)} tok/s; ours reaches ${report.closeness.decode_percent_of_bandwidth_ceiling!.toFixed(0)}%`);
  console.log(`  peak RSS / weight bytes in use     ${report.closeness.peak_rss_over_weight_bytes!.toFixed(2)} (${(report.weight_bytes / 2 ** 30).toFixed(2)} GB of weights)`);
  console.log(`same greedy ids: ${report.same_greedy_ids ? 'yes' : 'no (transformers.js resizes with its own filter, not Pillow\'s, so its pixels differ; on images at the model\'s size the ids agree: test/engine/transformersJs.test.ts)'}`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
