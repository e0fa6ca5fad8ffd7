/**
 * One engine process and its connection, with no UI: spawned as `pali serve --ipc` on a runtime, checked
 * with the engine's self test before anything else is asked of it, and talked to over vscode-jsonrpc.
 * EngineClient decides which runtime to try, when to restart and what to tell the user; this only runs one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { IPCMessageReader, IPCMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import { SelfTestRequest, TextPieceNotification, type SelfTestResult } from '../../protocol.js';

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

export type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

const DEFAULT_SELF_TEST_TIMEOUT_MS = 60_000;

export class EngineProcess {
  private exited = false;
  private connectionClosed = false;
  private readonly exitListeners: ExitListener[] = [];
  private readonly pieceListeners = new Map<string, (piece: string) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly connection: MessageConnection,
    readonly selfTest: SelfTestResult,
  ) {}

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

  /** Streamed text pieces of the request that carries `streamId`, until the returned function is called. */
  onTextPieces(streamId: string, listener: (piece: string) => void): () => void {
    this.pieceListeners.set(streamId, listener);
    return () => this.pieceListeners.delete(streamId);
  }

  /** Stops the process; exit listeners are not told (an intentional stop is not a crash). */
  kill(): void {
    this.exitListeners.length = 0;
    this.connection.dispose();
    this.child.kill();
  }

  /** Spawns the engine and resolves once its self test has answered; rejects with why it could not start. */
  static start(options: EngineProcessOptions): Promise<EngineProcess> {
    return new Promise<EngineProcess>((resolve, reject) => {
      const child = spawn(options.command, [options.enginePath, 'serve', '--ipc'], {
        env: { ...process.env, ...options.env, PALI_CACHE_DIR: options.cacheDir },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) options.onStderrLine?.(line);
      });
      const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
      let engine: EngineProcess | undefined;
      let settled = false;
      connection.onNotification(TextPieceNotification, ({ streamId, piece }) => engine?.pieceListeners.get(streamId)?.(piece));
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
        if (!settled) return fail(`exited with ${signal ?? `code ${code}`}`);
        if (!engine) return;
        engine.exited = true;
        engine.connection.dispose();
        for (const listener of engine.exitListeners) listener(code, signal);
      });
      connection.sendRequest(SelfTestRequest).then(
        (selfTest) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          engine = new EngineProcess(child, connection, selfTest);
          resolve(engine);
        },
        (error: unknown) => fail(error instanceof Error ? error.message : String(error)),
      );
    });
  }
}
