/** The built CLI (dist/pali.js), run as users run it: one place for its path and for running it once. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const PALI_CLI = path.join(__dirname, '..', '..', 'dist', 'pali.js');

export interface PaliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `pali ARGS` to the end, with `env` over this process's environment and `input` on its stdin; a run past `timeoutMs` is killed. */
export function pali(args: string[], env: Record<string, string> = {}, options: { cwd?: string; timeoutMs?: number; input?: string } = {}): PaliRun {
  const result = spawnSync(process.execPath, [PALI_CLI, ...args], {
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: options.timeoutMs ?? 120_000,
  });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}
