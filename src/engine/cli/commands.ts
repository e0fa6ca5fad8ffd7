/**
 * The CLI's verbs. Each is a few lines over the same functions the engine server calls (llama.cpp's
 * common/ vs src/ split): forge, convert, generate, and the shortcuts caption, ocr, ask and detect.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DTYPE_CHOICES, dtypeForDevice, parseDtypeChoice, type DtypeChoice } from '../../common/dtypes.js';
import { thisCpu } from '../runtime/cpuFeatures.js';
import { locTokensToBoxes } from '../../common/locTokens.js';
import { requestForVerb, taskPrompt } from '../../common/prompts.js';
import type { SafetensorsDtype } from '../checkpoint/safetensors.js';
import { convertCheckpoint, defaultCacheRoot } from '../convert/convert.js';
import { askSharedEngine } from './viaSharedEngine.js';
import { chooseRuntime } from '../runtime/onnxRuntime.js';
import { UserError } from '../../common/errors.js';
import { answerIdsFor, forgeCheckpoint } from '../forge/forge.js';
import { isLoopbackHost } from '../http/browserGuard.js';
import { runOpenAiServer } from '../http/openaiServer.js';
import { runMcpServer } from '../mcp/mcpServer.js';
import { segmentationOf, writeMaskPngs } from './segmentOutput.js';
import { PRESETS } from '../forge/presets.js';
import { forgeVae } from '../forge/forgeVae.js';
import { loadModel, type PaliGemmaModel } from '../model.js';
import { decodeImageFile } from '../image/decode.js';
import { encodeImage } from '../paligemma/inputs.js';
import { generate, type GenerateResult } from '../generate/generate.js';
import { likeliestDevice, parseDevice } from '../runtime/device.js';
import { decimal, integer, parse, text, type Options, type Values } from './args.js';
import { DEFAULT_KEEP_ALIVE_MINUTES } from '../shared/sharedEngine.js';

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

function parseModelDtype(value: string | undefined): DtypeChoice {
  if (value === undefined) return 'auto';
  const choice = parseDtypeChoice(value);
  if (!choice) throw new UserError(`unknown --dtype "${value}": choose ${DTYPE_CHOICES.join(', ')}`);
  return choice;
}

/** --runtime native|wasm: onnxruntime-node, or onnxruntime-web's WebAssembly build (see runtime/onnxRuntime.ts). */
function selectRuntime(value: string | undefined): void {
  if (value === undefined) return;
  if (value !== 'native' && value !== 'wasm') throw new UserError(`unknown --runtime "${value}": choose native or wasm`);
  chooseRuntime(value);
}

function modelDir(values: Values): string {
  const dir = text(values.model) ?? process.env.PALI_MODEL;
  if (!dir) throw new UserError('no model: pass --model DIR or set PALI_MODEL to a PaliGemma checkpoint folder');
  return dir;
}

/** The model that --model (or PALI_MODEL), --dtype, --device, --runtime and --cache-dir name. */
export async function loadModelFromArgs(values: Values, io: Io, chatty: boolean): Promise<PaliGemmaModel> {
  selectRuntime(text(values.runtime));
  const model = await loadModel(modelDir(values), {
    dtype: parseModelDtype(text(values.dtype)),
    device: parseDevice(text(values.device) ?? 'auto'),
    cacheRoot: text(values['cache-dir']),
    onProgress: chatty ? (message) => io.err(`pali: ${message}`) : undefined,
  });
  if (chatty) for (const fallback of model.deviceFallbacks) io.err(`pali: ${fallback.device} not used: ${fallback.error}`);
  if (chatty && model.deviceNote) io.err(`pali: ${model.deviceNote}`);
  return model;
}

async function runPrompt(
  values: Values,
  image: string,
  prompt: string,
  io: Io,
  extra: { logitsOut?: string; detect?: boolean; segment?: boolean } = {},
): Promise<void> {
  const json = values.json === true;
  // Progress goes to a terminal only: scripts and CI read stderr for the one-line error.
  const chatty = io.interactive && !json && !values.quiet;
  const maxNewTokens = integer(values['max-new-tokens'], 'max-new-tokens', 64, 1);
  const temperature = decimal(values.temperature, 'temperature', 0);
  const sampling = temperature > 0
    ? { temperature, topK: integer(values['top-k'], 'top-k', 0), topP: decimal(values['top-p'], 'top-p', 1), seed: integer(values.seed, 'seed', 0) }
    : undefined;
  const maxPixels = values['max-image-pixels'] === undefined ? undefined : integer(values['max-image-pixels'], 'max-image-pixels', 0, 1);
  const segmentTask = extra.segment || /^segment\s/.test(prompt.trim());
  // Text streams to a terminal as it comes, unless boxes or masks follow it.
  const streaming = !json && !extra.detect && !extra.segment;

  /** Prints an answer, wherever it was generated: its text, a detection's boxes, a segmentation's masks. */
  const report = async (answer: Parameters<typeof generateJson>[0], width: number, height: number, where: string, extraJson: Record<string, unknown>) => {
    const boxes = extra.detect ? locTokensToBoxes(answer.text, width, height) : undefined;
    // Only a segment task's answer is read for masks (as the engine service does): a detection's <loc>
    // tokens, or a stray <loc> in an OCR answer, are not a failed segmentation. The masks come from the
    // VQ-VAE here, which needs no model: so an answer of the shared engine gets them as one of ours.
    const segmentation = segmentTask
      ? await segmentationOf(answer.text, width, height, {
        vaeFile: text(values.vae), modelDir: modelDir(values), cacheRoot: text(values['cache-dir']), signal: io.signal,
        onProgress: chatty ? (message) => io.err(`pali: ${message}`) : undefined,
      })
      : undefined;
    const maskOut = text(values['mask-out']);
    if (maskOut && segmentation) await writeMaskPngs(maskOut, segmentation);
    for (const note of segmentation?.notes ?? []) io.err(`pali: skipped ${note}`);
    if (json) {
      io.out(JSON.stringify({ ...generateJson(answer), ...(boxes ? { boxes } : {}), segments: segmentation?.segments ?? [], ...extraJson }) + '\n');
    } else if (segmentation && extra.segment) {
      io.out(`${answer.text}\n`);
      for (const s of segmentation.segments) io.out(`${s.label || '(no label)'}\t${[s.box.xMin, s.box.yMin, s.box.xMax, s.box.yMax].join('\t')}\n`);
    } else if (boxes) {
      io.out(`${answer.text}\n`);
      for (const b of boxes) io.out(`${b.label || '(no label)'}\t${[b.xMin, b.yMin, b.xMax, b.yMax].map((v) => v.toFixed(1)).join('\t')}\n`);
    } else {
      io.out('\n');
    }
    if (chatty) io.err(`pali: ${answer.generatedIds.length} tokens on ${answer.device} (${where}), ${answer.timings.tokensPerS.toFixed(1)} tokens/s`);
  };

  // A running shared engine answers (cli/viaSharedEngine.ts); the first step's logits are not in its protocol.
  if (!extra.logitsOut && !values.local && values.runtime === undefined) {
    const shared = await askSharedEngine({
      modelDir: modelDir(values), dtype: parseModelDtype(text(values.dtype)), device: parseDevice(text(values.device) ?? 'auto'),
      cacheRoot: text(values['cache-dir']) ?? defaultCacheRoot(), image, prompt, maxNewTokens, sampling, maxImagePixels: maxPixels,
      onText: streaming ? (piece) => io.out(piece) : undefined,
      onProgress: chatty ? (message) => io.err(`pali: ${message}`) : undefined,
      withPromptIds: json,
    }, io);
    if (shared) {
      const { answer, enginePid } = shared;
      await report(answer, answer.imageWidth, answer.imageHeight, `the shared engine, pid ${enginePid}`, { shared_engine_pid: enginePid });
      return;
    }
  }
  // Decode the image before loading the model: a bad image fails in milliseconds, not after a conversion.
  const rgb = await decodeImageFile(image, { maxPixels });
  const model = await loadModelFromArgs(values, io, chatty);
  try {
    const encoded = await encodeImage(model, rgb);
    const result: GenerateResult = await generate(model, encoded, prompt, {
      maxNewTokens,
      sampling,
      signal: io.signal,
      keepFirstLogits: extra.logitsOut !== undefined,
      onText: streaming ? (piece) => io.out(piece) : undefined,
    });
    if (extra.logitsOut && result.firstLogits) {
      const logits = result.firstLogits;
      fs.writeFileSync(extra.logitsOut, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
    }
    await report(result, encoded.width, encoded.height, model.dtypeReason ?? model.dtype, {});
  } finally {
    await model.release();
  }
}

export async function generateCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { ...MODEL_OPTIONS, image: { type: 'string' }, prompt: { type: 'string' }, 'prompt-file': { type: 'string' }, 'logits-out': { type: 'string' } });
  const image = text(values.image);
  const promptFile = text(values['prompt-file']);
  if (!image) throw new UserError('generate needs --image FILE');
  if (promptFile !== undefined && values.prompt !== undefined) throw new UserError('pass --prompt or --prompt-file, not both');
  const prompt = promptFile === undefined ? text(values.prompt) : readPromptFile(promptFile);
  if (prompt === undefined) throw new UserError('generate needs --prompt TEXT (for example "caption en") or --prompt-file FILE');
  await runPrompt(values, image, prompt, io, { logitsOut: text(values['logits-out']) });
}

/** caption / ocr / ask / detect / segment: FILE [TEXT], with the model from --model or PALI_MODEL. */
export async function taskCommand(task: 'caption' | 'ocr' | 'ask' | 'detect' | 'segment', argv: string[], io: Io): Promise<void> {
  const { values, positionals } = parse(argv, { ...MODEL_OPTIONS, lang: { type: 'string' }, long: { type: 'boolean' } });
  const [image, question] = positionals;
  const needsText = task === 'ask' || task === 'detect' || task === 'segment';
  if (!image) throw new UserError(`${task} needs an image file: pali ${task} FILE${needsText ? ' TEXT' : ''}`);
  const request = requestForVerb(task === 'caption' && values.long ? 'describe' : task, text(values.lang), question);
  if (needsText && !question?.trim()) {
    throw new UserError(task === 'ask' ? 'ask needs a question: pali ask FILE "what is this?"' : `${task} needs objects: pali ${task} FILE "cat ; dog"`);
  }
  await runPrompt(values, image, taskPrompt(request), io, { detect: task === 'detect', segment: task === 'segment' });
}

/** `pali parse --image FILE --text TEXT`: boxes and masks from a model's answer, without the model. */
export async function parseCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { image: { type: 'string' }, text: { type: 'string' }, 'text-file': { type: 'string' }, vae: { type: 'string' }, 'mask-out': { type: 'string' }, 'cache-dir': { type: 'string' }, json: { type: 'boolean' } });
  const image = text(values.image);
  if (!image) throw new UserError('parse needs --image FILE (the image the answer is about: boxes and masks are in its pixels)');
  const textFile = text(values['text-file']);
  const answer = textFile !== undefined ? readPromptFile(textFile) : text(values.text);
  if (answer === undefined) throw new UserError('parse needs --text TEXT (the model\'s answer, with its <loc> and <seg> tokens) or --text-file FILE|-');
  const { width, height } = await decodeImageFile(image);
  const boxes = locTokensToBoxes(answer, width, height);
  const segmentation = await segmentationOf(answer, width, height, { vaeFile: text(values.vae), cacheRoot: text(values['cache-dir']), signal: io.signal });
  const maskOut = text(values['mask-out']);
  if (maskOut) await writeMaskPngs(maskOut, segmentation);
  for (const note of segmentation.notes) io.err(`pali: skipped ${note}`);
  if (values.json) {
    io.out(`${JSON.stringify({ imageWidth: width, imageHeight: height, boxes, segments: segmentation.segments })}\n`);
    return;
  }
  for (const s of segmentation.segments) io.out(`${s.label || '(no label)'}\t${[s.box.xMin, s.box.yMin, s.box.xMax, s.box.yMax].join('\t')}\n`);
  if (!segmentation.segments.length) for (const b of boxes) io.out(`${b.label || '(no label)'}\t${[b.xMin, b.yMin, b.xMax, b.yMax].map((v) => v.toFixed(1)).join('\t')}\n`);
}

export async function forgeCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { preset: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, answer: { type: 'string' }, outliers: { type: 'boolean' }, tokenizer: { type: 'string' } });
  const preset = text(values.preset);
  const out = text(values.out);
  if (!preset) throw new UserError(`forge needs --preset (${[...Object.keys(PRESETS), 'vae-oid'].join('|')})`);
  if (!out) throw new UserError('forge needs --out DIR');
  if (preset === 'vae-oid') {
    // The mask VQ-VAE alone, in big_vision's vae-oid.npz layout; beside a model, segmentation finds it.
    io.out(`forged a random mask VQ-VAE: ${forgeVae(integer(values.seed, 'seed', 0), out)}\n`);
    return;
  }
  const dtypeArg = text(values.dtype);
  const dtypes: Record<string, SafetensorsDtype> = { f32: 'F32', fp32: 'F32', bf16: 'BF16', f16: 'F16', fp16: 'F16' };
  if (dtypeArg !== undefined && !dtypes[dtypeArg]) throw new UserError(`unknown --dtype "${dtypeArg}": choose f32, bf16 or f16`);
  const tokenizerDir = text(values.tokenizer);
  const answer = text(values.answer);
  const result = forgeCheckpoint({
    preset,
    seed: integer(values.seed, 'seed', 0),
    outDir: out,
    dtype: dtypeArg ? dtypes[dtypeArg] : undefined,
    outliers: values.outliers === true,
    tokenizerDir,
    // A real vocabulary tokenizes the answer its own way; the forged one takes it word by word.
    ...(answer !== undefined && tokenizerDir ? { answerIds: await answerIdsFor(answer, tokenizerDir, preset) } : { answer }),
  });
  io.out(`forged ${preset} into ${result.dir}: ${result.files.join(', ')}\n`);
}

export async function convertCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, { model: { type: 'string' }, dtype: { type: 'string' }, 'cache-dir': { type: 'string' } });
  const choice = parseModelDtype(text(values.dtype));
  // `auto` converts for the device a load would try first.
  const dtype = choice === 'auto' ? dtypeForDevice(likeliestDevice('auto'), thisCpu().integerDotProduct) : choice;
  const result = convertCheckpoint({
    modelDir: modelDir(values),
    dtype,
    cacheRoot: text(values['cache-dir']),
    onProgress: io.interactive ? (message) => io.err(`pali: ${message}`) : undefined,
  });
  io.out(`${result.written.length ? 'converted' : 'already converted'}: ${result.dir}\n`);
}

/**
 * `--json`'s contract (snake_case, as scripts already parse it), from the pipeline's camelCase result or
 * the shared engine's answer, which has the same fields.
 */
function generateJson(result: Pick<GenerateResult, 'text' | 'generatedIds' | 'device' | 'timings'> & { promptIds?: number[] }) {
  const { timings } = result;
  return {
    text: result.text,
    generated_ids: result.generatedIds,
    prompt_ids: result.promptIds,
    device: result.device,
    timings: {
      preprocess_ms: timings.preprocessMs,
      vision_ms: timings.visionMs,
      prefill_ms: timings.prefillMs,
      decode_ms: timings.decodeMs,
      tokens_per_s: timings.tokensPerS,
    },
  };
}

/** A prompt from a file, or from standard input for `-`, without the final newline an editor adds. */
function readPromptFile(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new UserError(`cannot read the prompt file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** `pali mcp`: the Model Context Protocol server over stdio (engine/mcp/mcpServer.ts). */
export async function mcpCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    model: { type: 'string' }, root: { type: 'string', multiple: true }, dtype: { type: 'string' }, device: { type: 'string' }, 'cache-dir': { type: 'string' },
    remote: { type: 'string' }, shared: { type: 'boolean' }, 'keep-alive': { type: 'string' },
  });
  const roots = ((values.root as unknown as string[] | undefined) ?? []).map((root) => path.resolve(root));
  for (const root of roots) if (!fs.existsSync(root)) throw new UserError(`--root ${root}: no such folder`);
  const remote = text(values.remote);
  if (remote !== undefined && text(values.model) !== undefined) throw new UserError('mcp takes --model DIR or --remote URL, not both');
  if (remote !== undefined && values.shared) throw new UserError('mcp takes --remote URL or --shared, not both');
  await runMcpServer({
    // The model is needed by the image tools only: check_alt_text works without one.
    modelDir: remote === undefined ? text(values.model) ?? (process.env.PALI_MODEL || undefined) : undefined,
    // The key from the environment only: a command line is visible to every user of the machine.
    remote: remote === undefined ? undefined : { url: remote, apiKey: process.env.PALI_API_KEY || undefined },
    dtype: parseModelDtype(text(values.dtype)),
    device: parseDevice(text(values.device) ?? 'auto'),
    // Resolved here: the engine it starts, and every other client, must name the same folder.
    cacheRoot: text(values['cache-dir']) === undefined ? undefined : path.resolve(text(values['cache-dir'])!),
    shared: values.shared ? { keepAliveMinutes: decimal(values['keep-alive'], 'keep-alive', DEFAULT_KEEP_ALIVE_MINUTES) } : undefined,
    roots,
  });
}

/** Requests decoded together by `pali serve --model`; 1 turns batching off. Measured: npm run bench:serve. */
const DEFAULT_MAX_BATCH = 8;

/** `pali serve --model DIR`: the OpenAI-compatible HTTP server (engine/http/openaiServer.ts). */
export async function httpServeCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parse(argv, {
    model: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, 'api-key': { type: 'string' },
    dtype: { type: 'string' }, device: { type: 'string' }, 'cache-dir': { type: 'string' }, 'max-body-mb': { type: 'string' },
    'allow-remote-images': { type: 'boolean' }, 'max-batch': { type: 'string' }, 'allow-origin': { type: 'string', multiple: true },
  });
  const model = modelDir(values);
  const port = integer(values.port, 'port', 8000);
  if (port > 65535) throw new UserError(`--port must be at most 65535, got ${port}`);
  const host = text(values.host) ?? '127.0.0.1';
  const apiKey = text(values['api-key']) ?? (process.env.PALI_API_KEY || undefined);
  if (!apiKey && !isLoopbackHost(host)) {
    io.err(`pali: no API key: anyone who can reach port ${port} on ${host} can use this server; set one with --api-key KEY or PALI_API_KEY`);
  }
  await runOpenAiServer(
    {
      modelDir: model,
      modelName: path.basename(path.resolve(model)),
      host,
      port,
      apiKey,
      allowedOrigins: ((values['allow-origin'] ?? []) as string[]).flatMap((value) => value.split(',')).map((origin) => origin.trim()).filter(Boolean),
      maxBodyBytes: integer(values['max-body-mb'], 'max-body-mb', 32, 1) * 2 ** 20,
      allowRemoteImages: values['allow-remote-images'] === true,
      maxBatch: integer(values['max-batch'], 'max-batch', DEFAULT_MAX_BATCH, 1),
      cacheRoot: text(values['cache-dir']),
      onListening: (url) => io.err(`pali: serving ${path.basename(path.resolve(model))} at ${url}/v1`),
    },
    parseModelDtype(text(values.dtype)),
    parseDevice(text(values.device) ?? 'auto'),
    (line) => io.err(line),
  );
}
