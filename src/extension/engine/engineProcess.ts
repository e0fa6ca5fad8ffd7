/**
 * One engine process and its connection, with no UI: spawned as `pali serve --ipc` on a runtime, checked
 * with the engine's self test before anything else is asked of it, and talked to over vscode-jsonrpc.
 * EngineClient decides which runtime to try, when to restart and what to tell the user; this only runs one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { IPCMessageReader, IPCMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import { SelfTestRequest, type SelfTestResult } from '../../protocol.js';
import { describeError } from '../../common/errors.js';
import { EngineNotifications } from '../../engine/shared/engineNotifications.js';
import { OUT_OF_MEMORY, type EngineLink, type ExitCause, type ExitListener } from './engineLink.js';
import { engineEnvironment } from '../../common/engineEnvironment.js';

export type { ExitCause, ExitListener } from './engineLink.js';

export interface EngineProcessOptions {
  /** dist/pali.js */
  enginePath: string;
  /** The program that runs it, and what it needs in its environment (ELECTRON_RUN_AS_NODE for Electron). */
  command: string;
  env: Record<string, string>;
  cacheDir: string;
  /** Each line the engine writes to stderr (its log). */
  onStderrLine?: (line: string) => void;
  selfTestTimeoutMs?: number;
}


const DEFAULT_SELF_TEST_TIMEOUT_MS = 60_000;

export class EngineProcess implements EngineLink {
  readonly kind = 'own';
  private exited = false;
  private connectionClosed = false;
  private readonly exitListeners: ExitListener[] = [];
  /** The engine wrote an allocation failure to stderr (V8's report is followed by a long stack trace). */
  private reportedOutOfMemory = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly connection: MessageConnection,
    readonly selfTest: SelfTestResult,
    private readonly notifications: EngineNotifications,
  ) {
    this.causeKnown = new Promise((resolve) => (this.resolveCause = resolve));
  }

  /** Set once the process has exited after a successful start. */
  exitCause: ExitCause | undefined;
  private readonly causeKnown: Promise<ExitCause>;
  private resolveCause: (cause: ExitCause) => void = () => {};

  /** Why the process stopped, once it has (or undefined if it is still running after `waitMs`). */
  async whyStopped(waitMs: number): Promise<ExitCause | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), waitMs)));
    try {
      return await Promise.race([this.causeKnown, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The process has exited or its connection has closed: a dying engine closes the connection first. */
  get gone(): boolean {
    return this.exited || this.connectionClosed || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Called once when the process exits after a successful start (not for kill()'s exit: see kill). */
  onExit(listener: ExitListener): void {
    this.exitListeners.push(listener);
  }

  onTextPieces(streamId: string, listener: (piece: string) => void): () => void {
    return this.notifications.onTextPieces(streamId, listener);
  }

  onProgress(listener: (message: string) => void): () => void {
    return this.notifications.onProgress(listener);
  }

  /** Never: this window's engine keeps its model until the window stops it (EngineClient's idle stop). */
  onModelUnloaded(): void {}

  /** Set by kill(): the process was stopped on purpose (a restart, new settings), not lost. */
  stoppedOnPurpose = false;

  /** Stops the process; exit listeners are not told (an intentional stop is not a crash). */
  kill(): void {
    this.stoppedOnPurpose = true;
    this.exitListeners.length = 0;
    this.connection.dispose();
    this.child.kill();
  }

  /** Spawns the engine and resolves once its self test has answered; rejects with why it could not start. */
  static start(options: EngineProcessOptions): Promise<EngineProcess> {
    return new Promise<EngineProcess>((resolve, reject) => {
      const child = spawn(options.command, [options.enginePath, 'serve', '--ipc'], {
        env: { ...engineEnvironment(process.env), ...options.env, PALI_CACHE_DIR: options.cacheDir },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (!line.trim()) continue;
          options.onStderrLine?.(line);
          if (engine && OUT_OF_MEMORY.test(line)) engine.reportedOutOfMemory = true;
        }
      });
      const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
      let engine: EngineProcess | undefined;
      let settled = false;
      const notifications = new EngineNotifications(connection);
      connection.onClose(() => {
        if (engine) engine.connectionClosed = true;
      });
      connection.listen();
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        connection.dispose();
        child.kill();
        reject(new Error(why));
      };
      const timeoutMs = options.selfTestTimeoutMs ?? DEFAULT_SELF_TEST_TIMEOUT_MS;
      const timer = setTimeout(() => fail(`no answer to its self test within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`), timeoutMs);
      child.once('error', (error) => fail(error.message));
      child.once('exit', (code, signal) => {
        if (!settled) fail(`exited with ${signal ?? `code ${code}`}`);
        else if (engine) engine.exited = true;
      });
      // 'close' comes after stderr has been read to its end: an out-of-memory report is in by then.
      child.once('close', (code, signal) => {
        if (!engine) return;
        engine.exited = true;
        engine.connection.dispose();
        const cause: ExitCause = engine.reportedOutOfMemory ? 'out-of-memory' : signal === 'SIGKILL' ? 'killed' : 'crashed';
        engine.exitCause = cause;
        engine.resolveCause(cause);
        for (const listener of engine.exitListeners) listener(code, signal, cause);
      });
      connection.sendRequest(SelfTestRequest).then(
        (selfTest) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          engine = new EngineProcess(child, connection, selfTest, notifications);
          resolve(engine);
        },
        (error: unknown) => fail(describeError(error)),
      );
    });
  }
}
