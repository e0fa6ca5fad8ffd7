/**
 * Who answers the CLI's questions: the user's shared engine when one runs (cli/viaSharedEngine.ts: no load,
 * the model stays for the next question), else an EngineService in this process, the same service a shared
 * engine runs, loaded on the first question and kept for the next. `--local`, another `--runtime` and
 * `--logits-out` (not in the engine's protocol) always run here.
 */
import * as fs from 'node:fs';
import type { GenerateResultMessage, ModelInfo } from '../../protocol.js';
import { defaultCacheRoot } from '../convert/convert.js';
import { decodeImageFile } from '../image/decode.js';
import { EngineService } from '../service/engineService.js';
import { text, type Values } from './args.js';
import { modelChoice, selectRuntime, type Io } from './modelArgs.js';
import { askSharedEngine } from './viaSharedEngine.js';

export interface CliQuestion {
  image: string;
  prompt: string;
  maxNewTokens: number;
  sampling?: { temperature: number; topK: number; topP: number; seed: number };
  maxPixels?: number;
  withPromptIds?: boolean;
  onText?: (piece: string) => void;
  /** Where the first decode step's logits go (`--logits-out`): only this process can give them. */
  logitsOut?: string;
}

export interface CliAnswer {
  answer: GenerateResultMessage;
  /** Which engine answered, for the closing line on a terminal. */
  where: string;
  /** Added to `--json`'s object: the shared engine's pid. */
  extraJson: Record<string, unknown>;
}

export class CliAnswerer {
  /** This process's engine, made on the first question that runs here. */
  private service: EngineService | undefined;
  private model: ModelInfo | undefined;
  /** Once a question has run here, the rest do too: one model in memory, not one here and one there. */
  private sharedOff: boolean;

  constructor(private readonly values: Values, private readonly io: Io, private readonly chatty: boolean) {
    this.sharedOff = values.local === true || values.runtime !== undefined;
  }

  private get onProgress(): ((message: string) => void) | undefined {
    return this.chatty ? (message) => this.io.err(`pali: ${message}`) : undefined;
  }

  async ask(question: CliQuestion): Promise<CliAnswer> {
    if (!this.sharedOff && !question.logitsOut) {
      const shared = await askSharedEngine({
        ...modelChoice(this.values),
        cacheRoot: text(this.values['cache-dir']) ?? defaultCacheRoot(), image: question.image, prompt: question.prompt,
        maxNewTokens: question.maxNewTokens, sampling: question.sampling, maxImagePixels: question.maxPixels,
        onText: question.onText, onProgress: this.onProgress, withPromptIds: question.withPromptIds,
      }, this.io);
      if (shared) return { answer: shared.answer, where: `the shared engine, pid ${shared.enginePid}`, extraJson: { shared_engine_pid: shared.enginePid } };
    }
    this.sharedOff = true;
    return this.askHere(question);
  }

  private async askHere(question: CliQuestion): Promise<CliAnswer> {
    const { service, model } = await this.loadedHere(question);
    const logitsOut = question.logitsOut;
    const answer = await service.generate(
      { image: { path: question.image }, task: { prompt: question.prompt }, maxNewTokens: question.maxNewTokens, sampling: question.sampling, maxImagePixels: question.maxPixels, withPromptIds: true },
      this.io.signal,
      {
        onText: question.onText,
        onFirstLogits: logitsOut ? (logits) => fs.writeFileSync(logitsOut, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength)) : undefined,
      },
    );
    return { answer, where: model.dtypeReason ?? model.dtype, extraJson: {} };
  }

  private async loadedHere(first: CliQuestion): Promise<{ service: EngineService; model: ModelInfo }> {
    if (this.service && this.model) return { service: this.service, model: this.model };
    // Decode the first image before loading the model: a bad image fails in milliseconds, not after a conversion.
    await decodeImageFile(first.image, { maxPixels: first.maxPixels });
    selectRuntime(text(this.values.runtime));
    const service = (this.service = new EngineService({ cacheRoot: text(this.values['cache-dir']) }));
    const model = await service.loadModel(modelChoice(this.values), this.io.signal, { onProgress: this.onProgress });
    if (this.chatty) for (const fallback of model.fallbacks) this.io.err(`pali: ${fallback.device} not used: ${fallback.error}`);
    if (this.chatty && model.deviceNote) this.io.err(`pali: ${model.deviceNote}`);
    this.model = model;
    return { service, model };
  }

  /** Releases this process's model, once a cancelled request's last decode step has ended (in the queue). */
  async close(): Promise<void> {
    await this.service?.unloadWhenIdle();
  }
}
