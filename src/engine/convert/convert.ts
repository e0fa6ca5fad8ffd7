/**
 * Converts a Hugging Face PaliGemma checkpoint once into ONNX graphs in the onnx-community layout, in a
 * cache folder keyed by the checkpoint's content. Each graph is written under a temporary name and renamed
 * into place, so an interrupted conversion never leaves a half-written model that looks complete.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.js';
import { textNames } from '../checkpoint/weightNames.js';
import { UserError } from '../../common/errors.js';
import type { GraphBuilder } from '../onnx/graphBuilder.js';
import { ExternalWeightStore, InlineWeightStore, type WeightStore } from '../onnx/weightStore.js';
import { COMPONENTS, componentDtype, componentFile, WEIGHT_GROUPS, type Component, type ModelDtype } from '../paligemma/components.js';
import { isAlive } from '../processes.js';
import { checkpointKey } from './cacheKey.js';

export interface ConvertOptions {
  modelDir: string;
  dtype: ModelDtype;
  cacheRoot?: string;
  onProgress?: (message: string) => void;
}

export interface ConvertResult {
  /** The converted folder: an onnx-community layout with config and tokenizer files. */
  dir: string;
  /** Components written by this call; empty when everything was cached. */
  written: Component[];
}

/** Weights above this go to an external data file: protobuf caps a model at 2 GB, and it saves memory. */
const EXTERNAL_DATA_ABOVE_BYTES = 512 * 1024 * 1024;

const COPIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'generation_config.json'];

export function defaultCacheRoot(): string {
  if (process.env.PALI_CACHE_DIR) return process.env.PALI_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'paligemma-local');
}

function vocabSizeOf(checkpoint: Checkpoint): number {
  const embed = checkpoint.tensors.get(textNames.embedTokens);
  if (!embed) throw new UserError(`tensor ${textNames.embedTokens} is missing from ${checkpoint.dir}`);
  return embed.shape[0]!;
}

function estimatedBytes(checkpoint: Checkpoint, component: Component, vocabSize: number): number {
  const { text, vision } = checkpoint.config;
  if (component === 'embed_tokens') return vocabSize * text.hidden_size * 4;
  if (component === 'vision_encoder') return vision.num_hidden_layers * (4 * vision.hidden_size ** 2 + 2 * vision.hidden_size * vision.intermediate_size) * 4;
  const attention = text.hidden_size * text.head_dim * (2 * text.num_attention_heads + 2 * text.num_key_value_heads);
  return (text.num_hidden_layers * (attention + 3 * text.hidden_size * text.intermediate_size) + vocabSize * text.hidden_size) * 4;
}

/** The decoder graphs share one weight store: the masked decoder reads the merged decoder's data file. */
function writeGraphs(builders: GraphBuilder[], store: WeightStore, files: string[], tempDir: string, outDir: string): void {
  builders.forEach((builder, i) => {
    builder.save(path.join(tempDir, path.basename(files[i]!)));
    failIfDiskFullInjected();
  });
  store.close();
  fs.mkdirSync(path.join(outDir, 'onnx'), { recursive: true });
  // A graph's presence marks its component as converted, so its external data goes into place first: a
  // process killed between the renames leaves data without a graph (converted again), never the reverse.
  const names = fs.readdirSync(tempDir).sort((a, b) => Number(a.endsWith('.onnx')) - Number(b.endsWith('.onnx')));
  for (const name of names) fs.renameSync(path.join(tempDir, name), path.join(outDir, 'onnx', name));
}

/**
 * Fault injection for the disk-full test (a test cannot fill a real disk portably): with PALI_FAULT=disk-full,
 * writing a graph fails as a full disk makes it fail, after the first graph is written. Nothing sets it
 * outside that test.
 */
function failIfDiskFullInjected(): void {
  if (process.env.PALI_FAULT === 'disk-full') throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}

const TEMP_PREFIX = '.converting-';

/** Removes the temporary folders of conversions whose process died (killed, out of memory, power cut). */
function removeAbandonedConversions(outDir: string): void {
  for (const name of fs.readdirSync(outDir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    // Folders without a pid come from older versions, which never left one behind on purpose.
    const pid = Number(/^\.converting-(\d+)-/.exec(name)?.[1]);
    if (pid && isAlive(pid)) continue;
    fs.rmSync(path.join(outDir, name), { recursive: true, force: true });
  }
}


function makeStore(checkpoint: Checkpoint, component: Component, vocabSize: number, dataFile: string, tempDir: string): WeightStore {
  if (estimatedBytes(checkpoint, component, vocabSize) <= EXTERNAL_DATA_ABOVE_BYTES) return new InlineWeightStore();
  return new ExternalWeightStore(path.join(tempDir, dataFile), dataFile);
}

export function convertCheckpoint(options: ConvertOptions): ConvertResult {
  const progress = options.onProgress ?? (() => {});
  const checkpoint = openCheckpoint(options.modelDir);
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const weightFiles = [...new Set([...checkpoint.tensors.values()].map((t) => t.file))];
  const key = checkpointKey(checkpoint.dir, weightFiles, cacheRoot);
  const outDir = path.join(cacheRoot, 'onnx', key);
  const vocabSize = vocabSizeOf(checkpoint);
  fs.mkdirSync(path.join(outDir, 'onnx'), { recursive: true });

  const externalData: Record<string, number> = {};
  const written: Component[] = [];
  const pending = (component: Component) => !fs.existsSync(path.join(outDir, componentFile(component, options.dtype)));
  removeAbandonedConversions(outDir);
  const tempDir = fs.mkdtempSync(path.join(outDir, `${TEMP_PREFIX}${process.pid}-`));
  try {
    for (const group of WEIGHT_GROUPS) {
      const files = group.map((component) => componentFile(component, options.dtype));
      const dataFile = `${path.basename(files[0]!)}_data`;
      if (fs.existsSync(path.join(outDir, 'onnx', dataFile))) externalData[path.basename(files[0]!)] = 1;
      if (!group.some(pending)) continue;
      progress(`converting ${group.join(' and ')} (${componentDtype(group[0]!, options.dtype)})`);
      const store = makeStore(checkpoint, group[0]!, vocabSize, dataFile, tempDir);
      if (store instanceof ExternalWeightStore) externalData[path.basename(files[0]!)] = 1;
      const builders = group.map((component) => COMPONENTS[component].build(checkpoint, store, componentDtype(component, options.dtype), vocabSize));
      writeGraphs(builders, store, files, tempDir, outDir);
      written.push(...group);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
    // Nothing half-written is left: the temporary folder goes (below) and no graph was renamed into place.
    const neededGB = WEIGHT_GROUPS.flat().filter(pending).reduce((sum, c) => sum + estimatedBytes(checkpoint, c, vocabSize), 0) / 2 ** 30;
    throw new UserError(`the disk is full: converting ${checkpoint.dir} needs up to ${neededGB.toFixed(1)} GB in ${cacheRoot}. Free some space, or set PALI_CACHE_DIR (or --cache-dir) to a disk with room`);
  } finally {
    fs.rmSync(tempDir, { recursive: true, force: true });
  }

  for (const name of COPIED_FILES) copyIfChanged(path.join(checkpoint.dir, name), path.join(outDir, name));
  writeConvertedConfig(checkpoint, outDir, externalData);
  return { dir: outDir, written };
}

/**
 * Copies a side file (the tokenizer's among them) unless the copy is already the source's: same size and
 * time, which the copy takes from its source. A copy on every load would cost 17.7 MB of writing for a
 * real tokenizer.json and change its time, which names the tokenizer's cached tables (text/bpeTablesFile.ts).
 */
function copyIfChanged(source: string, target: string): void {
  const from = fs.statSync(source, { throwIfNoEntry: false });
  if (!from) return;
  const to = fs.statSync(target, { throwIfNoEntry: false });
  // Within a millisecond: file systems keep times at different precisions.
  if (to && to.size === from.size && Math.abs(to.mtimeMs - from.mtimeMs) < 1) return;
  fs.copyFileSync(source, target);
  fs.utimesSync(target, from.atime, from.mtime);
}

/** config.json for the converted folder: the checkpoint's, plus what transformers.js needs to load it. */
function writeConvertedConfig(checkpoint: Checkpoint, outDir: string, externalData: Record<string, number>): void {
  const file = path.join(outDir, 'config.json');
  let previous: Record<string, unknown> = {};
  try {
    previous = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // First conversion in this folder.
  }
  const previousJs = (previous['transformers.js_config'] ?? {}) as Record<string, unknown>;
  const previousExternal = (previousJs.use_external_data_format ?? {}) as Record<string, number>;
  const config = {
    ...checkpoint.config.raw,
    'transformers.js_config': {
      ...previousJs,
      use_external_data_format: { ...previousExternal, ...externalData },
    },
    converted_from: path.resolve(checkpoint.dir),
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
}
