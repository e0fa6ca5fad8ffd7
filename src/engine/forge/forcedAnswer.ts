/**
 * `pali forge --answer TEXT`: a tiny checkpoint whose weights make greedy decoding answer TEXT, whatever the
 * image and prompt. A random model never writes a well-formed detection or segmentation, so the tests and
 * the end-to-end suite use this to drive those paths through the real graphs and pipeline.
 *
 * How: every attention and MLP block writes zeros (o_proj and down_proj are zero), so the last hidden
 * state is the input token's embedding, normalised by the final RMSNorm (its weight zero: scale 1). The
 * answer's tokens c0 = "\n" (the prefix's last token), c1 ... cN-1 get orthogonal embeddings (unit vectors),
 * and an untied LM head maps each c_k to c_k+1, then the last to <eos>: the logit of the next token is
 * sqrt(hidden) and every other logit 0.
 */
import { UserError } from '../../common/errors.js';

export interface ForcedAnswer {
  /** Token ids: "\n", the answer's tokens, then <eos>. */
  chain: number[];
  hidden: number;
}

/** The answer's tokens from the forged vocabulary: <locNNNN>, <segNNN> and whole words ("▁word"). */
export function forcedAnswer(answer: string, vocab: Map<string, number>, eosId: number, hidden: number): ForcedAnswer {
  const ids = [...answer.matchAll(/<loc\d{4}>|<seg\d{3}>|\s*[^\s<]+/g)].map(([piece]) => {
    const key = piece.startsWith('<') ? piece : piece.replace(/^\s+/, '▁');
    const id = vocab.get(key) ?? vocab.get(key.replace(/^▁/, ''));
    if (id === undefined) throw new UserError(`--answer: "${piece.trim()}" is not one token of the forged vocabulary (use <loc>, <seg> tokens and words such as cat, dog, car)`);
    return id;
  });
  return forcedAnswerIds(ids, vocab, eosId, hidden);
}

/**
 * The same from the answer's token ids, for a real vocabulary (`--tokenizer`), whose tokenizer splits the
 * answer (any script, emoji) into its own pieces.
 */
export function forcedAnswerIds(ids: number[], vocab: Map<string, number>, eosId: number, hidden: number): ForcedAnswer {
  const newline = vocab.get('\n');
  if (newline === undefined) throw new Error('the vocabulary has no "\\n"');
  const chain = [newline, ...ids, eosId];
  // Each token has one successor: a token that came twice would make the answer loop.
  if (new Set(chain.slice(0, -1)).size !== chain.length - 1) throw new UserError('--answer: every token must differ from the others (and from "\\n")');
  if (chain.length - 1 > hidden) throw new UserError(`--answer: at most ${hidden - 1} tokens for this preset's hidden size`);
  return { chain, hidden };
}

/** Rows of the embedding table: the chain's tokens (all but <eos>) as unit vectors, one axis each. */
export function patchEmbeddings(forced: ForcedAnswer, values: Float32Array, firstRow: number): void {
  const { chain, hidden } = forced;
  chain.slice(0, -1).forEach((id, axis) => {
    const row = id - firstRow;
    if (row < 0 || (row + 1) * hidden > values.length) return;
    values.fill(0, row * hidden, (row + 1) * hidden);
    values[row * hidden + axis] = 1;
  });
}

/** The untied LM head: token c_k+1's row is the unit vector of c_k; every other row is zero. */
export function patchLmHead(forced: ForcedAnswer, values: Float32Array, firstRow: number): void {
  const { chain, hidden } = forced;
  values.fill(0);
  for (let axis = 0; axis < chain.length - 1; axis++) {
    const row = chain[axis + 1]! - firstRow;
    if (row >= 0 && (row + 1) * hidden <= values.length) values[row * hidden + axis] = 1;
  }
}
