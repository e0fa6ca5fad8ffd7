/**
 * `pali generate` and its shortcuts (caption, ocr, ask, detect, segment): each reads its options into one
 * PromptRun, has it answered (by the user's shared engine when one runs, else in this process) and prints
 * the answer, with a detection's boxes and a segmentation's masks.
 */
import * as fs from 'node:fs';
import { UserError } from '../../common/errors.js';
import { locTokensToBoxes } from '../../common/locTokens.js';
import { requestForVerb, taskPrompt } from '../../common/prompts.js';
import { defaultCacheRoot } from '../convert/convert.js';
import type { SamplingOptions } from '../generate/sampling.js';
import { decodeImageFile } from '../image/decode.js';
import { parseDevice } from '../runtime/device.js';
import { boxLines, generateJson, segmentLines, type PrintedAnswer } from './answerOutput.js';
import { decimal, integer, parse, readPromptFile, text, type Values } from './args.js';
import { MODEL_OPTIONS, modelDir, parseModelDtype, selectRuntime, type Io } from './modelArgs.js';
import { EngineService } from '../service/engineService.js';
import { segmentationOf, writeMaskPngs } from './segmentOutput.js';
import { askSharedEngine } from './viaSharedEngine.js';

/** What `pali generate` and its shortcuts ask for, read from their options once. */
interface PromptRun {
  image: string;
  prompt: string;
  maxNewTokens: number;
  sampling?: SamplingOptions & { seed: number };
  maxPixels?: number;
  json: boolean;
  /** Progress goes to a terminal only: scripts and CI read stderr for the one-line error. */
  chatty: boolean;
  /** Text streams to a terminal as it comes, unless boxes or masks follow it. */
  streaming: boolean;
  /** The answer's <loc> tokens are printed as boxes (`pali detect`). */
  detect: boolean;
  /** Only a segment task's answer is read for masks (as the engine service does): a detection's <loc>
   * tokens, or a stray <loc> in an OCR answer, are not a failed segmentation. */
  segmentTask: boolean;
  /** `pali segment`: the masks' lines are printed. */
  printSegments: boolean;
  logitsOut?: string;
}

/** An answer and where it came from: the image's size (for boxes and masks) and a word for the log. */
interface Answered {
  answer: PrintedAnswer;
  width: number;
  height: number;
  where: string;
  extraJson: Record<string, unknown>;
}

function promptRun(values: Values, image: string, prompt: string, io: Io, extra: { logitsOut?: string; detect?: boolean; segment?: boolean }): PromptRun {
  const json = values.json === true;
  const temperature = decimal(values.temperature, 'temperature', 0);
  return {
    image,
    prompt,
    maxNewTokens: integer(values['max-new-tokens'], 'max-new-tokens', 64, 1),
    sampling: temperature > 0
      ? { temperature, topK: integer(values['top-k'], 'top-k', 0), topP: decimal(values['top-p'], 'top-p', 1), seed: integer(values.seed, 'seed', 0) }
      : undefined,
    maxPixels: values['max-image-pixels'] === undefined ? undefined : integer(values['max-image-pixels'], 'max-image-pixels', 0, 1),
    json,
    chatty: io.interactive && !json && !values.quiet,
    streaming: !json && !extra.detect && !extra.segment,
    detect: extra.detect === true,
    segmentTask: extra.segment === true || /^segment\s/.test(prompt.trim()),
    printSegments: extra.segment === true,
    logitsOut: extra.logitsOut,
  };
}

async function runPrompt(values: Values, image: string, prompt: string, io: Io, extra: { logitsOut?: string; detect?: boolean; segment?: boolean } = {}): Promise<void> {
  const run = promptRun(values, image, prompt, io, extra);
  // A running shared engine answers (cli/viaSharedEngine.ts); the first step's logits are not in its protocol.
  const useShared = !run.logitsOut && !values.local && values.runtime === undefined;
  const answered = (useShared ? await answerOnSharedEngine(values, run, io) : null) ?? await answerInProcess(values, run, io);
  await printAnswer(values, run, answered, io);
}

async function answerOnSharedEngine(values: Values, run: PromptRun, io: Io): Promise<Answered | null> {
  const shared = await askSharedEngine({
    modelDir: modelDir(values), dtype: parseModelDtype(text(values.dtype)), device: parseDevice(text(values.device) ?? 'auto'),
    cacheRoot: text(values['cache-dir']) ?? defaultCacheRoot(), image: run.image, prompt: run.prompt,
    maxNewTokens: run.maxNewTokens, sampling: run.sampling, maxImagePixels: run.maxPixels,
    onText: run.streaming ? (piece) => io.out(piece) : undefined,
    onProgress: run.chatty ? (message) => io.err(`pali: ${message}`) : undefined,
    withPromptIds: run.json,
  }, io);
  if (!shared) return null;
  const { answer, enginePid } = shared;
  return { answer, width: answer.imageWidth, height: answer.imageHeight, where: `the shared engine, pid ${enginePid}`, extraJson: { shared_engine_pid: enginePid } };
}

/** This process answers (--local, --runtime, --logits-out, or no shared engine running): the same EngineService a shared engine runs. */
async function answerInProcess(values: Values, run: PromptRun, io: Io): Promise<Answered> {
  // Decode the image before loading the model: a bad image fails in milliseconds, not after a conversion.
  await decodeImageFile(run.image, { maxPixels: run.maxPixels });
  selectRuntime(text(values.runtime));
  const service = new EngineService({ cacheRoot: text(values['cache-dir']) });
  try {
    const onProgress = run.chatty ? (message: string) => io.err(`pali: ${message}`) : undefined;
    const model = await service.loadModel({ modelDir: modelDir(values), dtype: parseModelDtype(text(values.dtype)), device: parseDevice(text(values.device) ?? 'auto') }, io.signal, { onProgress });
    if (run.chatty) for (const fallback of model.fallbacks) io.err(`pali: ${fallback.device} not used: ${fallback.error}`);
    if (run.chatty && model.deviceNote) io.err(`pali: ${model.deviceNote}`);
    const logitsOut = run.logitsOut;
    const answer = await service.generate(
      { image: { path: run.image }, task: { prompt: run.prompt }, maxNewTokens: run.maxNewTokens, sampling: run.sampling, maxImagePixels: run.maxPixels, withPromptIds: true },
      io.signal,
      {
        onText: run.streaming ? (piece) => io.out(piece) : undefined,
        onFirstLogits: logitsOut ? (logits) => fs.writeFileSync(logitsOut, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength)) : undefined,
      },
    );
    return { answer, width: answer.imageWidth, height: answer.imageHeight, where: model.dtypeReason ?? model.dtype, extraJson: {} };
  } finally {
    // In the queue: a cancelled request's last decode step ends before the sessions are released.
    await service.unloadWhenIdle();
  }
}

/** Prints an answer, wherever it was generated: its text, a detection's boxes, a segmentation's masks. */
async function printAnswer(values: Values, run: PromptRun, { answer, width, height, where, extraJson }: Answered, io: Io): Promise<void> {
  const boxes = run.detect ? locTokensToBoxes(answer.text, width, height) : undefined;
  // The masks come from the VQ-VAE here, which needs no model: so an answer of the shared engine gets them as one of ours.
  const segmentation = run.segmentTask
    ? await segmentationOf(answer.text, width, height, {
      vaeFile: text(values.vae), modelDir: modelDir(values), cacheRoot: text(values['cache-dir']), signal: io.signal,
      onProgress: run.chatty ? (message) => io.err(`pali: ${message}`) : undefined,
    })
    : undefined;
  const maskOut = text(values['mask-out']);
  if (maskOut && segmentation) await writeMaskPngs(maskOut, segmentation);
  for (const note of segmentation?.notes ?? []) io.err(`pali: skipped ${note}`);
  if (run.json) {
    io.out(JSON.stringify({ ...generateJson(answer), ...(boxes ? { boxes } : {}), segments: segmentation?.segments ?? [], ...extraJson }) + '\n');
  } else if (segmentation && run.printSegments) {
    io.out(`${answer.text}\n${segmentLines(segmentation.segments)}`);
  } else if (boxes) {
    io.out(`${answer.text}\n${boxLines(boxes)}`);
  } else {
    // The text has streamed already.
    io.out('\n');
  }
  if (run.chatty) io.err(`pali: ${answer.generatedIds.length} tokens on ${answer.device} (${where}), ${answer.timings.tokensPerS.toFixed(1)} tokens/s`);
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
