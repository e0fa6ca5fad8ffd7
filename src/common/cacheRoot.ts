/**
 * The one cache folder of a user's PaliGemma: converted graphs, copies prepared for this CPU, tokenizer
 * tables, and the name of the shared engine that serves them. `pali` in a terminal, the VS Code extension
 * and the MCP server all use it, so that they share conversions and find the same engine.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export function defaultCacheRoot(): string {
  if (process.env.PALI_CACHE_DIR) return process.env.PALI_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'paligemma-local');
}
