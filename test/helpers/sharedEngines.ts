/**
 * The shared engines serving a cache folder, found in /proc by their command line (Linux): the engine
 * itself, not the shell it runs under to report how it ended (startSharedEngine.ts), which carries the
 * same arguments.
 */
import * as fs from 'node:fs';

export function sharedEnginePids(cacheDir: string): number[] {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    let args: string[];
    try {
      args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return false; // exited while we looked
    }
    return args[0] !== '/bin/sh' && args.includes('serve') && args.includes('--shared') && args.includes(cacheDir);
  });
}

/**
 * The processes that have a file under `dir` mapped into memory (/proc/PID/maps, Linux): what holds a
 * model's weights, as ONNX Runtime maps their external data. Processes we may not read are skipped.
 */
export function pidsMapping(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').some((line) => line.includes(` ${prefix}`));
    } catch {
      return false;
    }
  });
}
