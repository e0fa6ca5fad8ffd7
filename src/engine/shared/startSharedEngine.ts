/**
 * Connect to the user's shared engine, or start one and connect once it listens: what a VS Code window and
 * the `pali mcp` that VS Code starts do (`pali caption` only connects: sharedClient.ts). The engine is
 * started detached, in a process group of its own, so that it serves others after its starter has gone;
 * its log goes to a file in the cache folder. Of clients that start one at once, the engine's lock lets
 * one serve; the others' engines say so and exit, and every client connects to the one that serves.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError } from '../../common/errors.js';
import { engineEnvironment } from '../../common/engineEnvironment.js';
import { connectToSharedEngine, type SharedEngineConnection } from './sharedClient.js';

export interface StartSharedOptions {
  /** The program that runs the engine, and its script (dist/pali.js). */
  command: string;
  enginePath: string;
  /** What the program needs in its environment (ELECTRON_RUN_AS_NODE for Electron). */
  env: Record<string, string>;
  cacheDir: string;
  /** For an engine started here: minutes an idle model stays loaded (0 keeps it). */
  keepAliveMinutes: number;
  /** How long a started engine may take to listen. */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
/** The log is appended to by every engine started for this cache; it starts over past this size. */
const LOG_LIMIT_BYTES = 8 * 2 ** 20;

/** Where a started engine writes its log: it outlives whoever started it, so not to their stderr. */
export function sharedEngineLogFile(cacheDir: string): string {
  return path.join(cacheDir, 'shared-engine.log');
}

/** The connection, and whether none answered at first so that this client started one. */
export async function connectOrStartSharedEngine(options: StartSharedOptions): Promise<{ shared: SharedEngineConnection; startedHere: boolean }> {
  // An engine that refuses us may be one starting over a dead one's token: starting ours settles it (the
  // lock lets one serve) and the loop below retries with the token of the one that serves.
  const running = await connectToSharedEngine(options.cacheDir).catch(() => null);
  if (running) return { shared: running, startedHere: false };
  return { shared: await startAndConnect(options), startedHere: true };
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
 * Why the engine did not start, in its own words: its last line of ours (`pali: ...`) or error line
 * (Node's "Error: Cannot find module ..."), not the stack trace around it.
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

async function startAndConnect(options: StartSharedOptions): Promise<SharedEngineConnection> {
  const log = openLog(options.cacheDir);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
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
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
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
    // Exit code 0 is "already running": another client's engine won the lock and will listen soon.
    if (exit && exit.code !== 0) {
      const why = lastErrorInLog(options.cacheDir, log.start);
      throw new Error(`the shared engine exited with ${exit.signal ?? `code ${exit.code}`} before it listened${why ? `: ${why}` : ''}`);
    }
    if (Date.now() > deadline) throw new Error(`the shared engine did not listen within ${Math.round(timeoutMs / 1000)} s${refused}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
