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
