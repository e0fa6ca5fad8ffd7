/**
 * What every verb that runs the model shares: the terminal it talks to (Io), the model options
 * (--model or PALI_MODEL, --dtype, --device, --runtime, --cache-dir...) and how they are read.
 */
import { DTYPE_CHOICES, parseDtypeChoice, type DtypeChoice } from '../../common/dtypes.js';
import { UserError } from '../../common/errors.js';
import type { LoadModelParams } from '../../protocol.js';
import { parseDevice } from '../runtime/device.js';
import { chooseRuntime } from '../runtime/onnxRuntime.js';
import { text, type Options, type Values } from './args.js';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  signal: AbortSignal;
  /** stderr is a terminal: progress and device notes are shown. */
  interactive: boolean;
  /** Asks a yes/no question on the terminal; absent when standard input is not one. */
  confirm?: (question: string) => Promise<boolean>;
}

export const MODEL_OPTIONS: Options = {
  model: { type: 'string' },
  local: { type: 'boolean' },
  dtype: { type: 'string' },
  device: { type: 'string' },
  'cache-dir': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'max-image-pixels': { type: 'string' },
  json: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  quiet: { type: 'boolean' },
  runtime: { type: 'string' },
  vae: { type: 'string' },
  'mask-out': { type: 'string' },
};

export function parseModelDtype(value: string | undefined): DtypeChoice {
  if (value === undefined) return 'auto';
  const choice = parseDtypeChoice(value);
  if (!choice) throw new UserError(`unknown --dtype "${value}": choose ${DTYPE_CHOICES.join(', ')}`);
  return choice;
}

/** --runtime native|wasm: onnxruntime-node, or onnxruntime-web's WebAssembly build (see runtime/onnxRuntime.ts). */
export function selectRuntime(value: string | undefined): void {
  if (value === undefined) return;
  if (value !== 'native' && value !== 'wasm') throw new UserError(`unknown --runtime "${value}": choose native or wasm`);
  chooseRuntime(value);
}

/** The model --model (or PALI_MODEL), --dtype and --device name, as the engine's LoadModel takes it. */
export function modelChoice(values: Values): LoadModelParams {
  return { modelDir: modelDir(values), dtype: parseModelDtype(text(values.dtype)), device: parseDevice(text(values.device) ?? 'auto') };
}

export function modelDir(values: Values): string {
  const dir = text(values.model) ?? process.env.PALI_MODEL;
  if (!dir) throw new UserError('no model: pass --model DIR or set PALI_MODEL to a PaliGemma checkpoint folder');
  return dir;
}
