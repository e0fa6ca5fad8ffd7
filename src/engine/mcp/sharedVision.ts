/**
 * `pali mcp --shared`: the image tools answer from the user's shared engine (engine/shared/), as VS Code's
 * windows do, so that an agent's calls and the editor's features share one loaded model instead of
 * holding two. The engine is connected to on the first image call, or started if none runs; a call's
 * cancellation cancels it there; an engine that goes away is started again by the next call.
 */
import { randomUUID } from 'node:crypto';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc';
import type { TaskRequest } from '../../common/prompts.js';
import { GenerateRequest, LoadModelRequest, USER_ERROR_CODE, type ImageSource, type LoadModelParams } from '../../protocol.js';
import { abortError, describeError, UserError } from '../../common/errors.js';
import { EngineNotifications } from '../shared/engineNotifications.js';
import type { SharedEngineConnection } from '../shared/sharedClient.js';
import { connectOrStartSharedEngine, sharedEngineLogFile } from '../shared/startSharedEngine.js';
import type { Vision, VisionAnswer } from './remoteVision.js';

export interface SharedVisionOptions {
  model: LoadModelParams;
  cacheDir: string;
  /** For an engine started here: minutes an idle model stays loaded. */
  keepAliveMinutes: number;
  log?: (line: string) => void;
}

interface Link {
  shared: SharedEngineConnection;
  /** This connection's model, chosen once: the engine loads it again for our calls when it has to. */
  loaded: Promise<unknown> | undefined;
  notifications: EngineNotifications;
  closed: boolean;
}

export class SharedVision implements Vision {
  private link: Promise<Link> | undefined;

  constructor(private readonly options: SharedVisionOptions) {}

  private connect(): Promise<Link> {
    if (this.link) return this.link;
    const link = this.start();
    this.link = link;
    // Gone (stopped, crashed) or never there: the next call connects again, or starts one.
    const forget = () => {
      if (this.link === link) this.link = undefined;
    };
    link.then((l) => l.shared.connection.onClose(() => {
      l.closed = true;
      forget();
    }), forget);
    return link;
  }

  private async start(): Promise<Link> {
    let started: Awaited<ReturnType<typeof connectOrStartSharedEngine>>;
    try {
      started = await connectOrStartSharedEngine({
        // This same program: the Node (or Electron as Node) and pali.js that run this server.
        command: process.execPath,
        enginePath: process.argv[1]!,
        env: {},
        cacheDir: this.options.cacheDir,
        keepAliveMinutes: this.options.keepAliveMinutes,
      });
    } catch (error) {
      throw new UserError(`the shared engine could not start: ${describeError(error)}`);
    }
    const { shared, startedHere } = started;
    this.options.log?.(`pali mcp: ${startedHere ? 'started' : 'using'} the shared engine (pid ${shared.pid}; its log: ${sharedEngineLogFile(this.options.cacheDir)})`);
    return { shared, loaded: undefined, notifications: new EngineNotifications(shared.connection), closed: false };
  }

  async generate(image: ImageSource, task: TaskRequest, maxNewTokens: number, signal: AbortSignal, onPiece: (piece: string) => void, onProgress: (message: string) => void): Promise<VisionAnswer> {
    const link = await this.connect();
    const cancel = new CancellationTokenSource();
    const onAbort = () => cancel.cancel();
    signal.addEventListener('abort', onAbort);
    const streamId = randomUUID();
    const stopPieces = link.notifications.onTextPieces(streamId, onPiece);
    const stopProgress = link.notifications.onProgress(onProgress);
    try {
      link.loaded ??= link.shared.connection.sendRequest(LoadModelRequest, { ...this.options.model, keepAliveMinutes: this.options.keepAliveMinutes }, cancel.token).catch((error: unknown) => {
        link.loaded = undefined;
        throw error;
      });
      await link.loaded;
      const result = await link.shared.connection.sendRequest(GenerateRequest, { image, task, maxNewTokens, streamId, keepAliveMinutes: this.options.keepAliveMinutes }, cancel.token);
      return { text: result.text, boxes: result.boxes, imageWidth: result.imageWidth, imageHeight: result.imageHeight };
    } catch (error) {
      if (signal.aborted) throw abortError();
      if (error instanceof ResponseError && error.code === USER_ERROR_CODE) throw new UserError(error.message);
      if (link.closed) {
        throw new UserError(`the shared engine stopped while working on this call (its log: ${sharedEngineLogFile(this.options.cacheDir)}); the next call starts it again`);
      }
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
      stopPieces();
      stopProgress();
      cancel.dispose();
    }
  }

  /** Disconnects: the engine serves its other clients, and unloads by itself when idle. */
  async close(): Promise<void> {
    const link = await this.link?.catch(() => undefined);
    this.link = undefined;
    link?.shared.close();
  }
}
