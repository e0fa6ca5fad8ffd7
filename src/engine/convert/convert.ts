/**
 * Converts a Hugging Face PaliGemma checkpoint once into ONNX graphs in the onnx-community layout, in a
 * cache folder keyed by the checkpoint's content. Each graph is written under a temporary name and renamed
 * into place, so an interrupted conversion never leaves a half-written model that looks complete.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCacheRoot } from '../../common/cacheRoot.js';
import { faultInjected } from '../testHooks.js';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.js';
import { textNames } from '../checkpoint/weightNames.js';
import { UserError } from '../../common/errors.js';
import type { GraphBuilder } from '../onnx/graphBuilder.js';
import { ExternalWeightStore, InlineWeightStore, type WeightStore } from '../onnx/weightStore.js';
import type { WeightDtype } from '../onnx/layers.js';
import { COMPONENTS, componentDtype, componentFileAt, WEIGHT_GROUPS, type Component, type ModelDtype } from '../paligemma/components.js';
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

export { defaultCacheRoot };

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

/** The disk-full test's injected fault (testHooks.ts): a test cannot fill a real disk portably. */
function failIfDiskFullInjected(): void {
  if (faultInjected('disk-full')) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
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

interface Conversion {
  checkpoint: Checkpoint;
  cacheRoot: string;
  outDir: string;
  vocabSize: number;
}

function openConversion(modelDir: string, cacheRoot: string): Conversion {
  const checkpoint = openCheckpoint(modelDir);
  const weightFiles = [...new Set([...checkpoint.tensors.values()].map((t) => t.file))];
  const outDir = path.join(cacheRoot, 'onnx', checkpointKey(checkpoint.dir, weightFiles, cacheRoot));
  fs.mkdirSync(path.join(outDir, 'onnx'), { recursive: true });
  return { checkpoint, cacheRoot, outDir, vocabSize: vocabSizeOf(checkpoint) };
}

/**
 * Writes the graphs of `groups` that are missing, each component at the weights `weightOf` gives it, and
 * config.json. Returns the components written.
 */
function writeMissing(conversion: Conversion, groups: readonly Component[][], weightOf: (component: Component) => WeightDtype, progress: (message: string) => void): Component[] {
  const { checkpoint, cacheRoot, outDir, vocabSize } = conversion;
  const fileOf = (component: Component) => componentFileAt(component, weightOf(component));
  const externalData: Record<string, number> = {};
  const written: Component[] = [];
  const pending = (component: Component) => !fs.existsSync(path.join(outDir, fileOf(component)));
  removeAbandonedConversions(outDir);
  const tempDir = fs.mkdtempSync(path.join(outDir, `${TEMP_PREFIX}${process.pid}-`));
  try {
    for (const group of groups) {
      const files = group.map(fileOf);
      const dataFile = `${path.basename(files[0]!)}_data`;
      if (fs.existsSync(path.join(outDir, 'onnx', dataFile))) externalData[path.basename(files[0]!)] = 1;
      if (!group.some(pending)) continue;
      progress(`converting ${group.join(' and ')} (${weightOf(group[0]!)})`);
      const store = makeStore(checkpoint, group[0]!, vocabSize, dataFile, tempDir);
      if (store instanceof ExternalWeightStore) externalData[path.basename(files[0]!)] = 1;
      const builders = group.map((component) => COMPONENTS[component].build(checkpoint, store, weightOf(component), vocabSize));
      writeGraphs(builders, store, files, tempDir, outDir);
      written.push(...group);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
    // Nothing half-written is left: the temporary folder goes (below) and no graph was renamed into place.
    const neededGB = groups.flat().filter(pending).reduce((sum, c) => sum + estimatedBytes(checkpoint, c, vocabSize), 0) / 2 ** 30;
    throw new UserError(`the disk is full: converting ${checkpoint.dir} needs up to ${neededGB.toFixed(1)} GB in ${cacheRoot}. Free some space, or set PALI_CACHE_DIR (or --cache-dir) to a disk with room`);
  } finally {
    fs.rmSync(tempDir, { recursive: true, force: true });
  }

  for (const name of COPIED_FILES) copyIfChanged(path.join(checkpoint.dir, name), path.join(outDir, name));
  writeConvertedConfig(checkpoint, outDir, externalData);
  return written;
}

export function convertCheckpoint(options: ConvertOptions): ConvertResult {
  const conversion = openConversion(options.modelDir, options.cacheRoot ?? defaultCacheRoot());
  const written = writeMissing(conversion, WEIGHT_GROUPS, (component) => componentDtype(component, options.dtype), options.onProgress ?? (() => {}));
  return { dir: conversion.outDir, written };
}

/**
 * The dtypes transformers.js's own model card for PaliGemma gives (onnx-community/paligemma2-3b-pt-896,
 * "Usage (Transformers.js)"): a float16 embedding table, a 4-bit vision tower and a 4-bit decoder. The
 * bench runs its peer at these too.
 */
export const TRANSFORMERS_JS_RECOMMENDED_DTYPES = { embed_tokens: 'fp16', vision_encoder: 'q4', decoder_model_merged: 'q4' } as const;

/**
 * Writes the files TRANSFORMERS_JS_RECOMMENDED_DTYPES names into the converted folder: the int4
 * conversion (its decoder_model_merged_q4), plus vision_encoder_q4 and embed_tokens_fp16, which no dtype
 * of ours uses. Returns the files transformers.js then reads.
 */
export function convertForTransformersJsRecommended(options: Omit<ConvertOptions, 'dtype'>): { dir: string; files: string[] } {
  const { dir } = convertCheckpoint({ ...options, dtype: 'int4' });
  const conversion = openConversion(options.modelDir, options.cacheRoot ?? defaultCacheRoot());
  const weights: Partial<Record<Component, WeightDtype>> = { vision_encoder: 'int4', embed_tokens: 'fp16' };
  // One group each: the decoders, which share a weight store, are not among them.
  writeMissing(conversion, [['vision_encoder'], ['embed_tokens']], (component) => weights[component]!, options.onProgress ?? (() => {}));
  const files = [componentFileAt('vision_encoder', 'int4'), componentFileAt('embed_tokens', 'fp16'), componentFileAt('decoder_model_merged', 'int4')]
    .map((file) => path.join(dir, file))
    .flatMap((file) => [file, `${file}_data`])
    .filter((file) => fs.existsSync(file));
  return { dir, files };
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
