/**
 * The CLI's verbs beside generate and its shortcuts (promptCommands.ts): parse, forge, convert, mcp and
 * serve. Each is a few lines over the same functions the engine server calls (llama.cpp's common/ vs src/
 * split).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dtypeForDevice } from '../../common/dtypes.js';
import { thisCpu } from '../runtime/cpuFeatures.js';
import { locTokensToBoxes } from '../../common/locTokens.js';
import type { SafetensorsDtype } from '../checkpoint/safetensors.js';
import { convertCheckpoint } from '../convert/convert.js';
import { UserError } from '../../common/errors.js';
import { answerIdsFor, forgeCheckpoint } from '../forge/forge.js';
import { isLoopbackHost } from '../http/browserGuard.js';
import { runOpenAiServer } from '../http/openaiServer.js';
import { runMcpServer } from '../mcp/mcpServer.js';
import { segmentationOf, writeMaskPngs } from './segmentOutput.js';
import { PRESETS } from '../forge/presets.js';
import { forgeVae } from '../forge/forgeVae.js';
import { decodeImageFile } from '../image/decode.js';
import { boxLines, segmentLines } from './answerOutput.js';
import { likeliestDevice, parseDevice } from '../runtime/device.js';
import { decimal, integer, parse, readPromptFile, text } from './args.js';
import { modelDir, parseModelDtype, type Io } from './modelArgs.js';
import { DEFAULT_KEEP_ALIVE_MINUTES } from '../shared/sharedEngine.js';

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
  io.out(segmentation.segments.length ? segmentLines(segmentation.segments) : boxLines(boxes));
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
