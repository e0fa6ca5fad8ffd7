/**
 * This window as a client of the user's shared engine (`pali serve --shared`, engine/shared/): it connects
 * to the engine that is running, or starts one (startSharedEngine.ts). The engine outlives the window: it
 * unloads its model after keepAlive minutes without a request from anyone, and exits once it has neither
 * a client nor a model.
 */
import * as fs from 'node:fs';
import { SelfTestRequest, type SelfTestResult } from '../../protocol.js';
import { describeError } from '../../common/errors.js';
import { EngineNotifications } from '../../engine/shared/engineNotifications.js';
import type { SharedEngineConnection } from '../../engine/shared/sharedClient.js';
import { connectOrStartSharedEngine, engineEndInLog, logSince, sharedEngineLogFile, type StartSharedOptions } from '../../engine/shared/startSharedEngine.js';
import { OUT_OF_MEMORY, type EngineLink, type ExitCause, type ExitListener } from './engineLink.js';

export type SharedEngineOptions = StartSharedOptions;

/** How long a closed connection waits for the engine's end to reach its log (it takes milliseconds). */
const END_LINE_WAIT_MS = 2000;

export class SharedEngineLink implements EngineLink {
  readonly kind = 'shared';
  private closed = false;
  stoppedOnPurpose = false;
  private readonly exitListeners: ExitListener[] = [];
  private readonly causeKnown: Promise<ExitCause>;
  private resolveCause: (cause: ExitCause) => void = () => {};

  private constructor(
    private readonly shared: SharedEngineConnection,
    readonly selfTest: SelfTestResult,
    private readonly notifications: EngineNotifications,
    /** True when none answered at first and this window started one (another window starting one at the same moment may have won the lock). */
    readonly startedHere: boolean,
    /** The engine's cache folder (its log is there), and the log's length when this window connected. */
    private readonly log: { cacheDir: string; start: number },
  ) {
    this.causeKnown = new Promise((resolve) => (this.resolveCause = resolve));
    shared.connection.onClose(() => {
      this.closed = true;
      void this.settleWhyItEnded();
    });
  }

  /**
   * Why the connection closed: the engine said it was stopping (`pali stop`), an end and not a crash; or
   * how it ended as the shell it runs under wrote to its log (startSharedEngine.ts), which can lag the
   * socket's close by a moment: SIGKILL, what the kernel's out-of-memory killer sends, or V8's or ONNX
   * Runtime's own out-of-memory report, or another crash.
   */
  private async settleWhyItEnded(): Promise<void> {
    let end = engineEndInLog(this.logSinceConnected());
    for (let waited = 0; !this.stoppedOnPurpose && this.notifications.stopping === undefined && !end && waited < END_LINE_WAIT_MS; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      end = engineEndInLog(this.logSinceConnected());
    }
    const cause: ExitCause = this.notifications.stopping !== undefined ? 'stopped'
      : OUT_OF_MEMORY.test(this.logSinceConnected()) ? 'out-of-memory'
        : end?.signal === 'SIGKILL' ? 'killed' : 'crashed';
    this.resolveCause(cause);
    if (this.stoppedOnPurpose) return;
    for (const listener of this.exitListeners) listener(end?.code ?? null, end?.signal ?? null, cause);
  }

  private logSinceConnected(): string {
    return logSince(this.log.cacheDir, this.log.start);
  }

  get connection() {
    return this.shared.connection;
  }

  get pid(): number {
    return this.shared.pid;
  }

  get gone(): boolean {
    return this.closed;
  }

  onExit(listener: ExitListener): void {
    this.exitListeners.push(listener);
  }

  onTextPieces(streamId: string, listener: (piece: string) => void): () => void {
    return this.notifications.onTextPieces(streamId, listener);
  }

  onProgress(listener: (message: string) => void): () => void {
    return this.notifications.onProgress(listener);
  }

  onModelUnloaded(listener: (why: string) => void): void {
    this.notifications.onModelUnloaded(listener);
  }

  async whyStopped(waitMs: number): Promise<ExitCause | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), waitMs)));
    try {
      return await Promise.race([this.causeKnown, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Disconnects: the engine goes on serving its other clients (and cancels this window's requests). */
  kill(): void {
    this.stoppedOnPurpose = true;
    this.exitListeners.length = 0;
    this.shared.close();
  }

  /** Connects to the running engine, or starts one and connects; rejects with why neither worked. */
  static async connectOrStart(options: SharedEngineOptions): Promise<SharedEngineLink> {
    const { shared, startedHere } = await connectOrStartSharedEngine(options);
    const notifications = new EngineNotifications(shared.connection);
    const file = sharedEngineLogFile(options.cacheDir);
    const log = { cacheDir: options.cacheDir, start: fs.existsSync(file) ? fs.statSync(file).size : 0 };
    try {
      // The engine may run on another Node than this window would pick (the window that started it chose):
      // its self test says which.
      const selfTest = await shared.connection.sendRequest(SelfTestRequest);
      return new SharedEngineLink(shared, selfTest, notifications, startedHere, log);
    } catch (error) {
      shared.close();
      throw new Error(`the shared engine (pid ${shared.pid}) failed its self test: ${describeError(error)}`);
    }
  }
}
