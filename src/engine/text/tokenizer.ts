/**
 * The checkpoint's tokenizer. A SentencePiece-style BPE (Gemma's, so every PaliGemma's) runs on compact
 * tables kept in the cache (bpeTables.ts: 2.4 s and about 400 MB less per engine start on the real Gemma
 * vocabulary); any other tokenizer.json runs through @huggingface/transformers' AutoTokenizer. Both read
 * local files only: the model hub is never contacted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError, UserError } from '../../common/errors.js';
import { buildBpeTables, type BpeTables } from './bpeTables.js';
import { readTablesFile, tablesFileFor, writeTablesFile } from './bpeTablesFile.js';
import { BpeTokenizer } from './bpeTokenizer.js';

export interface PaliTokenizer {
  /** Token ids of `text` without any added <bos>/<eos>, as PaliGemmaProcessor tokenizes. */
  encode(text: string): number[];
  /** Text of `ids` without special tokens (<eos>, <pad>, <image>, ...); <loc> and <seg> tokens stay. */
  decode(ids: number[]): string;
  tokenToId(token: string): number | undefined;
  bosToken: string;
}

export interface LoadedTokenizer extends PaliTokenizer {
  /** Which implementation runs it, and why: for the bench and diagnostics. */
  loadedFrom: string;
}

type TransformersModule = typeof import('@huggingface/transformers');
let transformers: TransformersModule | undefined;

/** Loads transformers.js lazily and switches its hub access off before first use. */
export function loadTransformers(): TransformersModule {
  if (!transformers) {
    transformers = require('@huggingface/transformers') as TransformersModule;
    transformers.env.allowRemoteModels = false;
    transformers.env.allowLocalModels = true;
  }
  return transformers;
}

/**
 * The tokenizer in `dir`. With a `cacheRoot`, the compact tables are read from (or written to) the cache;
 * without one they are built from tokenizer.json each time, which is still faster than transformers.js.
 */
export async function loadTokenizer(dir: string, cacheRoot?: string): Promise<LoadedTokenizer> {
  const compact = compactTables(dir, cacheRoot);
  if ('tables' in compact) return Object.assign(new BpeTokenizer(compact.tables), { loadedFrom: compact.loadedFrom });
  return Object.assign(await transformersTokenizer(dir), { loadedFrom: `transformers.js (${compact.unsupported})` });
}

function compactTables(dir: string, cacheRoot: string | undefined): { tables: BpeTables; loadedFrom: string } | { unsupported: string } {
  const files = [path.join(dir, 'tokenizer.json'), path.join(dir, 'tokenizer_config.json')];
  const cacheFile = cacheRoot === undefined ? null : tablesFileFor(files, cacheRoot);
  const cached = cacheFile === null ? null : readTablesFile(cacheFile);
  if (cached) return { tables: cached, loadedFrom: 'compact tables, cached' };
  let json: Record<string, unknown>[];
  try {
    json = files.map((file) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>);
  } catch (error) {
    // transformers.js then says what is wrong with the files, as it always has.
    return { unsupported: describeError(error) };
  }
  const built = buildBpeTables(json[0]!, json[1]!);
  if ('unsupported' in built) return built;
  if (cacheFile === null) return { tables: built, loadedFrom: 'compact tables, not cached' };
  try {
    writeTablesFile(cacheFile, built);
    return { tables: built, loadedFrom: 'compact tables, cached now' };
  } catch (error) {
    return { tables: built, loadedFrom: `compact tables, not cached (${describeError(error)})` };
  }
}

async function transformersTokenizer(dir: string): Promise<PaliTokenizer> {
  const { AutoTokenizer } = loadTransformers();
  let tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
  } catch (error) {
    throw new UserError(`cannot load the tokenizer in ${dir}: ${describeError(error)}`);
  }
  return {
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }),
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true }),
    tokenToId: (token) => {
      const ids = tokenizer.encode(token, { add_special_tokens: false });
      return ids.length === 1 && tokenizer.decode(ids, { skip_special_tokens: false }) === token ? ids[0] : undefined;
    },
    bosToken: (tokenizer as unknown as { bos_token?: string }).bos_token ?? '<bos>',
  };
}
