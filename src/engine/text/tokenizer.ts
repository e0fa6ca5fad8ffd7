/**
 * The checkpoint's tokenizer.json through @huggingface/transformers' AutoTokenizer, from local files only:
 * the model hub is never contacted.
 */
import { describeError, UserError } from '../../common/errors.js';

export interface PaliTokenizer {
  /** Token ids of `text` without any added <bos>/<eos>, as PaliGemmaProcessor tokenizes. */
  encode(text: string): number[];
  /** Text of `ids` without special tokens (<eos>, <pad>, <image>, ...); <loc> and <seg> tokens stay. */
  decode(ids: number[]): string;
  tokenToId(token: string): number | undefined;
  bosToken: string;
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

export async function loadTokenizer(dir: string): Promise<PaliTokenizer> {
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
