/**
 * A CLI question answered by the running shared engine (engine/shared/), when there is one: no load, the
 * model stays for the next question. The CLI makes a detection's boxes and a segmentation's masks from the
 * answer as it does for its own (the masks from the VQ-VAE, which needs no model). `--local` runs in process
 * instead, and so do --logits-out (not in the engine's protocol) and another --runtime. It never starts an
 * engine: `pali serve --shared`, a VS Code window or `pali mcp --shared` does.
 */
import * as path from 'node:path';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc';
import { GenerateRequest, LoadModelRequest, ProgressNotification, TextPieceNotification, USER_ERROR_CODE, type DeviceChoice, type DtypeChoice, type GenerateResultMessage } from '../../protocol.js';
import { abortError, UserError } from '../../common/errors.js';
import { connectToSharedEngine, SharedEngineUnreachable, type SharedEngineConnection } from '../shared/sharedClient.js';
import type { Io } from './modelArgs.js';

export interface SharedQuestion {
  modelDir: string;
  dtype: DtypeChoice;
  device: DeviceChoice;
  cacheRoot: string;
  image: string;
  prompt: string;
  maxNewTokens: number;
  sampling?: { temperature: number; topK: number; topP: number; seed: number };
  maxImagePixels?: number;
  /** Each piece of the answer as it comes. */
  onText?: (piece: string) => void;
  withPromptIds?: boolean;
  /** What the engine says while it loads the model. */
  onProgress?: (message: string) => void;
}

/**
 * The engine's answer, or null when no shared engine runs or it would not take us (the caller then runs
 * the model itself; the second case says why on stderr).
 */
export async function askSharedEngine(question: SharedQuestion, io: Io): Promise<{ answer: GenerateResultMessage; enginePid: number } | null> {
  let engine: SharedEngineConnection | null;
  try {
    engine = await connectToSharedEngine(question.cacheRoot);
  } catch (error) {
    if (!(error instanceof SharedEngineUnreachable)) throw error;
    io.err(`pali: ${error.message}; running in this process instead`);
    return null;
  }
  if (!engine) return null;
  if (io.signal.aborted) {
    engine.close();
    throw abortError();
  }
  const cancel = new CancellationTokenSource();
  // Ctrl+C: the engine hears the cancellation, and the CLI does not wait for it to act (a load cannot be
  // interrupted there): the request is abandoned at once, and closing the connection ends its work.
  let abandon: (error: Error) => void = () => {};
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));
  abandoned.catch(() => undefined);
  const onAbort = () => {
    cancel.cancel();
    abandon(abortError());
  };
  io.signal.addEventListener('abort', onAbort);
  const untilAborted = <T>(request: Promise<T>) => Promise.race([request, abandoned]);
  try {
    if (question.onText) {
      const onText = question.onText;
      engine.connection.onNotification(TextPieceNotification, ({ streamId, piece }) => {
        if (streamId === 'cli') onText(piece);
      });
    }
    // Load progress, as an in-process load reports it (a first load converts, which takes minutes).
    if (question.onProgress) engine.connection.onNotification(ProgressNotification, ({ message }) => question.onProgress!(message));
    await untilAborted(engine.connection.sendRequest(LoadModelRequest, { modelDir: path.resolve(question.modelDir), dtype: question.dtype, device: question.device }, cancel.token));
    const answer = await untilAborted(engine.connection.sendRequest(GenerateRequest, {
      image: { path: path.resolve(question.image) },
      task: { prompt: question.prompt },
      maxNewTokens: question.maxNewTokens,
      sampling: question.sampling,
      maxImagePixels: question.maxImagePixels,
      streamId: 'cli',
      withPromptIds: question.withPromptIds,
    }, cancel.token));
    return { answer, enginePid: engine.pid };
  } catch (error) {
    if (io.signal.aborted) throw abortError();
    // The engine's user errors are the user's: say them as the CLI says its own.
    if (error instanceof ResponseError && error.code === USER_ERROR_CODE) throw new UserError(error.message);
    throw error;
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    engine.close();
  }
}
