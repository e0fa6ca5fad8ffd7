/**
 * Choosing the next token from logits: greedy (argmax, HF's default for PaliGemma) or sampling with HF's
 * warpers in HF's order: temperature, then top-k, then top-p.
 */
import type { SeededRandom } from '../random.js';

export interface SamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i]! > bestValue) {
      bestValue = logits[i]!;
      best = i;
    }
  }
  return best;
}

export function sampleToken(logits: Float32Array, options: SamplingOptions, random: SeededRandom): number {
  const temperature = options.temperature > 0 ? options.temperature : 1;
  let candidates = Array.from(logits, (logit, id) => ({ id, logit: logit / temperature }));
  candidates.sort((a, b) => b.logit - a.logit || a.id - b.id);
  if (options.topK > 0) candidates = candidates.slice(0, options.topK);
  const max = candidates[0]!.logit;
  const weights = candidates.map((c) => Math.exp(c.logit - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let probabilities = weights.map((w) => w / total);
  if (options.topP > 0 && options.topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < probabilities.length && cumulative < options.topP) cumulative += probabilities[keep++]!;
    candidates = candidates.slice(0, Math.max(1, keep));
    const kept = probabilities.slice(0, candidates.length);
    const keptTotal = kept.reduce((a, b) => a + b, 0);
    probabilities = kept.map((p) => p / keptTotal);
  }
  let draw = random.next();
  for (let i = 0; i < candidates.length; i++) {
    draw -= probabilities[i]!;
    if (draw < 0) return candidates[i]!.id;
  }
  return candidates[candidates.length - 1]!.id;
}
