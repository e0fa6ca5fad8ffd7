/**
 * Connect to the user's shared engine, or start one and connect once it listens: what a VS Code window and
 * the `pali mcp` that VS Code starts do (`pali caption` only connects: sharedClient.ts). The engine is
 * started detached, in a process group of its own, so that it serves others after its starter has gone;
 * its log goes to a file in the cache folder. Of clients that start one at once, the engine's lock lets
 * one serve; the others' engines say so and exit, and every client connects to the one that serves.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeError } from '../../common/errors.js';
import { engineEnvironment } from '../../common/engineEnvironment.js';
import { connectToSharedEngine, SharedEngineUnreachable, type SharedEngineConnection } from './sharedClient.js';

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

/**
 * On POSIX the engine runs under a shell that outlives it by a moment to write how it ended to the log. A
 * process killed with SIGKILL (the kernel's out-of-memory killer does that) can say nothing itself, and
 * its clients, which are not its parent, could not tell that from any other crash. The shell costs about
 * a megabyte and does nothing else; a clean exit writes no line.
 */
const END_LINE = '[shared engine ended]';
const EXIT_REPORTER = `"$@"; status=$?; if [ $status -gt 128 ]; then echo "${END_LINE} signal $((status - 128))" >&2; `
  + `elif [ $status -ne 0 ]; then echo "${END_LINE} code $status" >&2; fi; exit $status`;

export interface EngineEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How the shared engine ended, from the reporter's line in its log text, or undefined if it wrote none. */
export function engineEndInLog(logText: string): EngineEnd | undefined {
  const match = /\[shared engine ended\] (signal|code) (\d+)/.exec(logText);
  if (!match) return undefined;
  const n = Number(match[2]);
  if (match[1] === 'code') return { code: n, signal: null };
  const signal = Object.entries(os.constants.signals).find(([, number]) => number === n)?.[0] as NodeJS.Signals | undefined;
  return { code: null, signal: signal ?? null };
}

/** The connection, and whether none answered at first so that this client started one. */
export async function connectOrStartSharedEngine(options: StartSharedOptions): Promise<{ shared: SharedEngineConnection; startedHere: boolean }> {
  // An engine that refuses us may be one starting over a dead one's token: starting ours settles it (the
  // lock lets one serve) and the loop below retries with the token of the one that serves.
  // Anything else (a folder others may enter) would stop the engine we start just the same: it is the caller's.
  const running = await connectToSharedEngine(options.cacheDir).catch((error: unknown) => {
    if (error instanceof SharedEngineUnreachable) return null;
    throw error;
  });
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

/** What the engines started for this cache have logged from byte `start` on ('' without a log). */
export function logSince(cacheDir: string, start: number): string {
  try {
    return fs.readFileSync(sharedEngineLogFile(cacheDir)).subarray(start).toString('utf8');
  } catch {
    return '';
  }
}

/**
 * Why the engine did not start, in its own words: its last line of ours (`pali: ...`) or error line
 * (Node's "Error: Cannot find module ..."), not the stack trace around it.
 */
function lastErrorInLog(cacheDir: string, start: number): string {
  const lines = logSince(cacheDir, start).split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith(END_LINE));
  return lines.findLast((line) => /^(pali:|\w*Error\b)/.test(line)) ?? lines.at(-1) ?? '';
}

async function startAndConnect(options: StartSharedOptions): Promise<SharedEngineConnection> {
  const log = openLog(options.cacheDir);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  try {
    const engine = [options.command, options.enginePath, 'serve', '--shared', '--started-by-client', '--keep-alive', String(options.keepAliveMinutes), '--cache-dir', options.cacheDir];
    const [program, ...args] = process.platform === 'win32' ? engine : ['/bin/sh', '-c', EXIT_REPORTER, 'pali-engine', ...engine];
    const child = spawn(program!, args, {
      env: { ...engineEnvironment(process.env), ...options.env, PALI_CACHE_DIR: options.cacheDir },
      stdio: ['ignore', 'ignore', log.fd],
      detached: true,
      // A detached child gets a console of its own on Windows: none is shown.
      windowsHide: true,
    });
    child.once('error', () => (exit = { code: null, signal: null }));
    child.once('exit', (code, signal) => (exit = engineEndInLog(logSince(options.cacheDir, log.start)) ?? { code, signal }));
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
