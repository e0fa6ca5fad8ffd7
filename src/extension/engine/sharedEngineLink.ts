/**
 * This window as a client of the user's shared engine (`pali serve --shared`, engine/shared/): it connects
 * to the engine that is running, or starts one detached from this window and connects once it listens.
 * Of windows that start one at once, the engine's lock lets one serve; the others' engines say so and
 * exit, and every window connects to the one that serves. The engine outlives the window: it unloads its
 * model after keepAlive minutes without a request, and exits once it has neither a client nor a model.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SelfTestRequest, type SelfTestResult } from '../../protocol.js';
import { describeError } from '../../common/errors.js';
import { connectToSharedEngine, type SharedEngineConnection } from '../../engine/shared/sharedClient.js';
import { EngineNotifications, type EngineLink, type ExitCause, type ExitListener } from './engineLink.js';
import { engineEnvironment, type EngineProcessOptions } from './engineProcess.js';

export interface SharedEngineOptions extends EngineProcessOptions {
  /** For an engine this window starts: minutes an idle model stays loaded (0 keeps it). */
  keepAliveMinutes: number;
  /** How long a started engine may take to listen. */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
/** The engine's log is appended to by every engine started for this cache; it starts over past this size. */
const LOG_LIMIT_BYTES = 8 * 2 ** 20;

/** Where a started engine writes its log (it outlives the window that started it, so not to our stderr). */
export function sharedEngineLogFile(cacheDir: string): string {
  return path.join(cacheDir, 'shared-engine.log');
}

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
  ) {
    this.causeKnown = new Promise((resolve) => (this.resolveCause = resolve));
    shared.connection.onClose(() => {
      this.closed = true;
      // The engine said it was stopping (`pali stop`): an end, not a crash.
      const cause: ExitCause = notifications.stopping !== undefined ? 'stopped' : 'crashed';
      this.resolveCause(cause);
      if (this.stoppedOnPurpose) return;
      for (const listener of this.exitListeners) listener(null, null, cause);
    });
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
    // An engine that refuses us may be one starting over a dead one's token: starting ours settles it (the
    // lock lets one serve) and the loop below retries with the token of the one that serves.
    let shared = await connectToSharedEngine(options.cacheDir).catch(() => null);
    const startedHere = !shared;
    if (!shared) shared = await startAndConnect(options);
    const notifications = new EngineNotifications(shared.connection);
    try {
      // The engine may run on another Node than this window would pick (the window that started it chose):
      // its self test says which.
      const selfTest = await shared.connection.sendRequest(SelfTestRequest);
      return new SharedEngineLink(shared, selfTest, notifications, startedHere);
    } catch (error) {
      shared.close();
      throw new Error(`the shared engine (pid ${shared.pid}) failed its self test: ${describeError(error)}`);
    }
  }
}

/** The log, opened for appending, and where this engine's lines will start. */
function openLog(cacheDir: string): { fd: number; start: number } {
  fs.mkdirSync(cacheDir, { recursive: true });
  const file = sharedEngineLogFile(cacheDir);
  try {
    if (fs.statSync(file).size > LOG_LIMIT_BYTES) fs.renameSync(file, `${file}.old`);
  } catch {
    // No log yet.
  }
  const fd = fs.openSync(file, 'a', 0o600);
  return { fd, start: fs.fstatSync(fd).size };
}

/**
 * Why the engine did not start, in its own words: the log's last line of ours (`pali: ...`) or error
 * line (Node's "Error: Cannot find module ..."), not the stack trace around it.
 */
function lastErrorInLog(cacheDir: string, start: number): string {
  let lines: string[];
  try {
    lines = fs.readFileSync(sharedEngineLogFile(cacheDir)).subarray(start).toString('utf8').split('\n').map((line) => line.trim()).filter(Boolean);
  } catch {
    return '';
  }
  return lines.findLast((line) => /^(pali:|\w*Error\b)/.test(line)) ?? lines.at(-1) ?? '';
}

async function startAndConnect(options: SharedEngineOptions): Promise<SharedEngineConnection> {
  const log = openLog(options.cacheDir);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
    // Detached, in a process group of its own: it serves other windows after this one closes.
    const child = spawn(options.command, [options.enginePath, 'serve', '--shared', '--keep-alive', String(options.keepAliveMinutes), '--cache-dir', options.cacheDir], {
      env: { ...engineEnvironment(process.env), ...options.env, PALI_CACHE_DIR: options.cacheDir },
      stdio: ['ignore', 'ignore', log.fd],
      detached: true,
    });
    child.once('error', () => (exit = { code: null, signal: null }));
    child.once('exit', (code, signal) => (exit = { code, signal }));
    child.unref();
  } finally {
    fs.closeSync(log.fd);
  }
  const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  let refused = '';
  for (;;) {
    try {
      const shared = await connectToSharedEngine(options.cacheDir);
      if (shared) return shared;
    } catch (error) {
      // A dead engine's token file, read just before the new engine replaced it: the new one refuses it.
      // Try again with the token it wrote.
      refused = `: ${describeError(error)}`;
    }
    // Exit code 0 is "already running": another window's engine won the lock and will listen soon.
    if (exit && exit.code !== 0) {
      const why = lastErrorInLog(options.cacheDir, log.start);
      throw new Error(`the shared engine exited with ${exit.signal ?? `code ${exit.code}`} before it listened${why ? `: ${why}` : ''}`);
    }
    if (Date.now() > deadline) throw new Error(`the shared engine did not listen within ${Math.round((options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000)} s${refused}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
