/** Starts the built `pali serve --model DIR` on 127.0.0.1 with a free port, as the server tests need it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { PALI_CLI as CLI } from './pali.js';

export interface RunningServer {
  child: ChildProcess;
  /** http://127.0.0.1:PORT/v1 */
  baseURL: string;
  stderr: string[];
}

/** `dtype`: fp32 (exact, as the CLI tests compare) unless a test needs the CLI's default, auto. */
export async function startPaliServe(checkpointDir: string, cacheRoot: string, extraArgs: string[] = [], dtype: 'fp32' | 'auto' = 'fp32'): Promise<RunningServer> {
  const env = { ...process.env, PALI_CACHE_DIR: cacheRoot };
  const child = spawn(process.execPath, [CLI, 'serve', '--model', checkpointDir, '--port', '0', '--dtype', dtype, '--device', 'cpu', ...extraArgs], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  const baseURL = await new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr.push(chunk);
      const url = /serving \S+ at (http:\/\/\S+\/v1)/.exec(stderr.join(''))?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`pali serve exited with ${code}: ${stderr.join('')}`)));
  });
  return { child, baseURL, stderr };
}
