/**
 * Teacher forcing, for comparing a quantized model with fp32 step by step: the reference decodes greedily
 * (never <eos>, so every run has the same length) and records each step's logits; the other model is fed
 * the reference's tokens and its logits are compared at every step. Used by the fidelity tests and by
 * `npm run bench:fidelity`.
 */
import { argmax } from '../../src/engine/generate/sampling.js';
import type { PaliGemmaModel } from '../../src/engine/model.js';
import { emptyCache, runDecoder } from '../../src/engine/paligemma/decoderRunner.js';
import { buildPromptIds, embedPrefix, embedTokens, encodeImage } from '../../src/engine/paligemma/inputs.js';
import { cosineSimilarity } from './numbers.js';

/** Runs `steps` decoder steps; with `forcedIds` the tokens are given, else chosen greedily (never <eos>). */
export async function runSteps(
  model: PaliGemmaModel,
  image: string,
  prompt: string,
  steps: number,
  forcedIds: number[] | null,
  onLogits: (step: number, logits: Float32Array) => void,
): Promise<{ ids: number[]; features: Float32Array }> {
  const encoded = await encodeImage(model, image);
  const promptIds = buildPromptIds(model, prompt);
  let step = await runDecoder(model, await embedPrefix(model, promptIds, encoded), promptIds.length, emptyCache(model), promptIds.length);
  const ids: number[] = [];
  for (let i = 0; i < steps; i++) {
    onLogits(i, step.logits);
    const masked = step.logits.slice();
    for (const eos of model.eosTokenIds) masked[eos] = -Infinity;
    const next = forcedIds ? forcedIds[i]! : argmax(masked);
    ids.push(next);
    if (i + 1 < steps) step = await runDecoder(model, await embedTokens(model, [next]), 1, step.cache, promptIds.length);
  }
  return { ids, features: encoded.features };
}

export interface StepAgreement {
  steps: number;
  /** Steps whose argmax equals the reference's. */
  top1Agreement: number;
  cosineMean: number;
  cosineMin: number;
}

/** Step-by-step agreement of `logits` with `reference` (the same steps, the same tokens fed). */
export function agreement(reference: Float32Array[], logits: Float32Array[]): StepAgreement {
  const cosines = reference.map((r, i) => cosineSimilarity(r, logits[i]!));
  const agree = reference.filter((r, i) => argmax(r) === argmax(logits[i]!)).length;
  return {
    steps: reference.length,
    top1Agreement: agree / reference.length,
    cosineMean: cosines.reduce((a, b) => a + b, 0) / cosines.length,
    cosineMin: Math.min(...cosines),
  };
}

/** The reference's greedy run, its logits kept. */
export async function referenceRun(model: PaliGemmaModel, image: string, prompt: string, steps: number): Promise<{ ids: number[]; logits: Float32Array[]; features: Float32Array }> {
  const logits: Float32Array[] = [];
  const { ids, features } = await runSteps(model, image, prompt, steps, null, (_, l) => logits.push(l.slice()));
  return { ids, logits, features };
}

/** `model` fed the reference's tokens, compared with the reference's logits. */
export async function forcedAgreement(model: PaliGemmaModel, image: string, prompt: string, reference: { ids: number[]; logits: Float32Array[] }): Promise<StepAgreement & { features: Float32Array }> {
  const logits: Float32Array[] = [];
  const { features } = await runSteps(model, image, prompt, reference.ids.length, reference.ids, (_, l) => logits.push(l.slice()));
  return { ...agreement(reference.logits, logits), features };
}
