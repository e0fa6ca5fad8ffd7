/**
 * Earlier versions kept the extension's conversions in its global storage (`<globalStorage>/cache`), apart
 * from the cache `pali` uses, so a model used from both was converted and prepared twice and their engines
 * could not meet. Now both use one cache (common/cacheRoot.ts). The old folder's conversions move over where
 * the new cache lacks them (their names are content hashes, valid wherever they sit); the rest (copies
 * prepared for the old paths, tokenizer tables) is cheaper to make again than to carry, and is removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError } from '../common/errors.js';

export interface OldCacheResult {
  moved: string[];
  /** Resolves once the rest is removed (gigabytes may take a moment; nothing waits for it). */
  removed: Promise<void>;
}

/** Moves `oldDir`'s conversions into `newDir` and removes the rest; null when there is no old folder. */
export function retireOldCache(oldDir: string, newDir: string, log: (line: string) => void): OldCacheResult | null {
  if (!fs.existsSync(oldDir) || path.resolve(oldDir) === path.resolve(newDir)) return null;
  const moved: string[] = [];
  const oldConversions = path.join(oldDir, 'onnx');
  if (fs.existsSync(oldConversions)) {
    fs.mkdirSync(path.join(newDir, 'onnx'), { recursive: true });
    for (const name of fs.readdirSync(oldConversions)) {
      const target = path.join(newDir, 'onnx', name);
      if (fs.existsSync(target) || name.endsWith('.partial')) continue;
      try {
        fs.renameSync(path.join(oldConversions, name), target);
        moved.push(name);
      } catch (error) {
        // Another file system (EXDEV): converting again is cheaper than copying gigabytes at activation.
        log(`the conversion ${name} stays behind and is made again when needed: ${describeError(error)}`);
      }
    }
  }
  // Out of the way at once, so that nothing reads a half-removed folder; removed in the background.
  const retired = `${oldDir}.retired-${process.pid}`;
  try {
    fs.renameSync(oldDir, retired);
  } catch (error) {
    log(`the old cache ${oldDir} could not be removed: ${describeError(error)}`);
    return { moved, removed: Promise.resolve() };
  }
  const removed = fs.promises.rm(retired, { recursive: true, force: true }).then(
    () => log(`moved ${moved.length} conversion(s) from ${oldDir} to ${newDir}, the cache pali uses too, and removed the rest of the old cache`),
    (error: unknown) => log(`the old cache ${retired} could not be removed: ${describeError(error)}`),
  );
  return { moved, removed };
}
