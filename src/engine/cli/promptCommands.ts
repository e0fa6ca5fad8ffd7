/**
 * `pali generate` and its shortcuts (caption, ocr, ask, detect, segment): each reads its options into one
 * PromptRun, has it answered (by the user's shared engine when one runs, else in this process) and prints
 * the answer, with a detection's boxes and a segmentation's masks.
 */
import { UserError } from '../../common/errors.js';
import { locTokensToBoxes } from '../../common/locTokens.js';
import { requestForVerb, taskPrompt } from '../../common/prompts.js';
import type { SamplingOptions } from '../generate/sampling.js';
import { boxLines, generateJson, segmentLines } from './answerOutput.js';
import { decimal, integer, parse, readPromptFile, text, type Values } from './args.js';
import { MODEL_OPTIONS, modelDir, type Io } from './modelArgs.js';
import { segmentationOf, writeMaskPngs } from './segmentOutput.js';
import { CliAnswerer, type CliAnswer } from './answerer.js';

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
  const answerer = new CliAnswerer(values, io, run.chatty);
  try {
    const answered = await answerer.ask({
      image, prompt, maxNewTokens: run.maxNewTokens, sampling: run.sampling, maxPixels: run.maxPixels, withPromptIds: run.json,
      onText: run.streaming ? (piece) => io.out(piece) : undefined,
      logitsOut: run.logitsOut,
    });
    await printAnswer(values, run, answered, io);
  } finally {
    await answerer.close();
  }
}

/** Prints an answer, wherever it was generated: its text, a detection's boxes, a segmentation's masks. */
async function printAnswer(values: Values, run: PromptRun, { answer, where, extraJson }: CliAnswer, io: Io): Promise<void> {
  const { imageWidth: width, imageHeight: height } = answer;
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
