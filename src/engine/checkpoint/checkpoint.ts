/**
 * A Hugging Face PaliGemma checkpoint folder: config.json, safetensors weights (single or sharded; F32, F16
 * or BF16), tokenizer.json (+ tokenizer_config.json) and preprocessor_config.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../common/errors.js';
import { readPaliGemmaConfig, type PaliGemmaConfig } from './config.js';
import { listCheckpointTensors, readTensorAsFloat32, type TensorEntry } from './safetensors.js';
import { toOriginalName } from './weightNames.js';

export interface Checkpoint {
  dir: string;
  config: PaliGemmaConfig;
  tensors: Map<string, TensorEntry>;
}

export function readJsonFile(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${what} ${file} is missing`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${what} ${file} is not valid JSON`);
  }
}

export function openCheckpoint(dir: string): Checkpoint {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new UserError(`model folder ${dir} does not exist: pass a Hugging Face PaliGemma checkpoint folder with --model`);
  }
  const config = readPaliGemmaConfig(readJsonFile(path.join(dir, 'config.json'), 'config'));
  for (const file of ['tokenizer.json', 'preprocessor_config.json']) {
    if (!fs.existsSync(path.join(dir, file))) throw new UserError(`${path.join(dir, file)} is missing: the checkpoint is incomplete`);
  }
  const tensors = new Map<string, TensorEntry>();
  for (const [name, entry] of listCheckpointTensors(dir)) tensors.set(toOriginalName(name), entry);
  return { dir, config, tensors };
}

/** Reads a tensor by its original HF name as float32, checking its shape. */
export function loadWeight(checkpoint: Checkpoint, name: string, shape: number[]): Float32Array {
  const entry = checkpoint.tensors.get(name);
  if (!entry) throw new UserError(`tensor ${name} is missing from the checkpoint in ${checkpoint.dir}`);
  if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
    throw new UserError(`tensor ${name} has shape [${entry.shape.join(', ')}], config.json implies [${shape.join(', ')}]`);
  }
  return readTensorAsFloat32(entry);
}
