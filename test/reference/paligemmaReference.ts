/**
 * An independent PaliGemma forward pass in float64, written from the reference semantics (HF transformers'
 * SigLIP, PaliGemma projector and Gemma/Gemma 2) with plain loops and no ONNX. Tests compare our ONNX graphs
 * against it. Slow by design; only for tiny configs.
 */
import { loadWeight, type Checkpoint } from '../../src/engine/checkpoint/checkpoint.js';

type Matrix = Float64Array[];

const f64 = (a: Float32Array) => Float64Array.from(a);

function linear(x: Matrix, weight: Float64Array, outFeatures: number, bias?: Float64Array): Matrix {
  const inFeatures = x[0]!.length;
  return x.map((row) => {
    const out = new Float64Array(outFeatures);
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias ? bias[o]! : 0;
      for (let i = 0; i < inFeatures; i++) sum += row[i]! * weight[o * inFeatures + i]!;
      out[o] = sum;
    }
    return out;
  });
}

function add(a: Matrix, b: Matrix): Matrix {
  return a.map((row, r) => row.map((v, i) => v + b[r]![i]!));
}

function layerNorm(x: Matrix, weight: Float64Array, bias: Float64Array, eps: number): Matrix {
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * weight[i]! + bias[i]!);
  });
}

function rmsNorm(x: Matrix, weight: Float64Array, eps: number): Matrix {
  return x.map((row) => {
    const meanSquare = row.reduce((a, b) => a + b * b, 0) / row.length;
    return row.map((v, i) => (v / Math.sqrt(meanSquare + eps)) * (1 + weight[i]!));
  });
}

function gelu(x: number, kind: string): number {
  if (kind === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** Abramowitz-Stegun would be too coarse for 1e-4; a series/continued fraction is exact enough in float64. */
function erf(x: number): number {
  const sign = Math.sign(x);
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  return sign * (1 - Math.exp(-ax * ax) / (ax * Math.sqrt(Math.PI)));
}

function softmax(values: number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => (v === -Infinity ? 0 : Math.exp(v - max)));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** SigLIP + projector: pixel values [3, R, R] -> image features [N, text hidden], divided by sqrt(hidden). */
export function referenceImageFeatures(checkpoint: Checkpoint, pixels: Float32Array): Matrix {
  const { vision, text, projection_dim: E, num_image_tokens: N } = checkpoint.config;
  const w = (name: string, shape: number[]) => f64(loadWeight(checkpoint, name, shape));
  const D = vision.hidden_size;
  const P = vision.patch_size;
  const R = vision.image_size;
  const grid = R / P;
  const prefix = 'vision_tower.vision_model.';
  const patchWeight = w(`${prefix}embeddings.patch_embedding.weight`, [D, 3, P, P]);
  const patchBias = w(`${prefix}embeddings.patch_embedding.bias`, [D]);
  const positions = w(`${prefix}embeddings.position_embedding.weight`, [N, D]);
  let x: Matrix = [];
  for (let py = 0; py < grid; py++) {
    for (let px = 0; px < grid; px++) {
      const row = new Float64Array(D);
      for (let d = 0; d < D; d++) {
        let sum = patchBias[d]!;
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < P; ky++) {
            for (let kx = 0; kx < P; kx++) {
              sum += patchWeight[((d * 3 + c) * P + ky) * P + kx]! * pixels[(c * R + py * P + ky) * R + px * P + kx]!;
            }
          }
        }
        row[d] = sum + positions[(py * grid + px) * D + d]!;
      }
      x.push(row);
    }
  }
  const heads = vision.num_attention_heads;
  const hd = D / heads;
  for (let l = 0; l < vision.num_hidden_layers; l++) {
    const lw = (part: string, shape: number[]) => w(`${prefix}encoder.layers.${l}.${part}`, shape);
    const h = layerNorm(x, lw('layer_norm1.weight', [D]), lw('layer_norm1.bias', [D]), vision.layer_norm_eps);
    const q = linear(h, lw('self_attn.q_proj.weight', [D, D]), D, lw('self_attn.q_proj.bias', [D]));
    const k = linear(h, lw('self_attn.k_proj.weight', [D, D]), D, lw('self_attn.k_proj.bias', [D]));
    const v = linear(h, lw('self_attn.v_proj.weight', [D, D]), D, lw('self_attn.v_proj.bias', [D]));
    const attended: Matrix = x.map(() => new Float64Array(D));
    for (let head = 0; head < heads; head++) {
      for (let i = 0; i < N; i++) {
        const scores = [];
        for (let j = 0; j < N; j++) {
          let dot = 0;
          for (let e = 0; e < hd; e++) dot += q[i]![head * hd + e]! * k[j]![head * hd + e]!;
          scores.push(dot * hd ** -0.5);
        }
        const probs = softmax(scores);
        for (let e = 0; e < hd; e++) {
          let sum = 0;
          for (let j = 0; j < N; j++) sum += probs[j]! * v[j]![head * hd + e]!;
          attended[i]![head * hd + e] = sum;
        }
      }
    }
    x = add(x, linear(attended, lw('self_attn.out_proj.weight', [D, D]), D, lw('self_attn.out_proj.bias', [D])));
    const h2 = layerNorm(x, lw('layer_norm2.weight', [D]), lw('layer_norm2.bias', [D]), vision.layer_norm_eps);
    const I = vision.intermediate_size;
    const up = linear(h2, lw('mlp.fc1.weight', [I, D]), I, lw('mlp.fc1.bias', [I])).map((row) => row.map((v) => gelu(v, vision.hidden_act)));
    x = add(x, linear(up, lw('mlp.fc2.weight', [D, I]), D, lw('mlp.fc2.bias', [D])));
  }
  x = layerNorm(x, w(`${prefix}post_layernorm.weight`, [D]), w(`${prefix}post_layernorm.bias`, [D]), vision.layer_norm_eps);
  const projected = linear(x, w('multi_modal_projector.linear.weight', [E, D]), E, w('multi_modal_projector.linear.bias', [E]));
  return projected.map((row) => row.map((v) => v / Math.sqrt(text.hidden_size)));
}

/**
 * Gemma over the whole sequence at once: logits [L, vocab] for every position. Positions 0..prefixLength-1
 * attend to each other both ways (PaliGemma's prefix); later positions attend causally. Position ids
 * start at 1.
 */
export function referenceLogits(
  checkpoint: Checkpoint,
  imageFeatures: Matrix,
  ids: number[],
  prefixLength: number,
  imageTokenId: number,
  // Gemma 2's final soft-capping, as trained; newest HF's PaliGemma skips it (README: deliberate deviations).
  finalSoftcapping = true,
): Matrix {
  const { text, generation } = checkpoint.config;
  const H = text.hidden_size;
  const embedEntry = checkpoint.tensors.get('language_model.model.embed_tokens.weight')!;
  const V = embedEntry.shape[0]!;
  const w = (name: string, shape: number[]) => f64(loadWeight(checkpoint, name, shape));
  const embed = w('language_model.model.embed_tokens.weight', [V, H]);
  let imageRow = 0;
  let x: Matrix = ids.map((id) => {
    const row = id === imageTokenId ? Float64Array.from(imageFeatures[imageRow++]!) : embed.slice(id * H, (id + 1) * H);
    return row.map((v) => v * Math.sqrt(H));
  });
  const L = ids.length;
  const heads = text.num_attention_heads;
  const kvHeads = text.num_key_value_heads;
  const hd = text.head_dim;
  const groups = heads / kvHeads;
  const I = text.intermediate_size;
  const eps = text.rms_norm_eps;
  const scaling = generation === 2 ? text.query_pre_attn_scalar! ** -0.5 : hd ** -0.5;

  const rope = (vectors: Matrix, headCount: number): Matrix =>
    vectors.map((row, position) => {
      const out = new Float64Array(row.length);
      const p = position + 1;
      for (let h = 0; h < headCount; h++) {
        for (let i = 0; i < hd / 2; i++) {
          const angle = p / text.rope_theta ** ((2 * i) / hd);
          const a = row[h * hd + i]!;
          const b = row[h * hd + i + hd / 2]!;
          out[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
          out[h * hd + i + hd / 2] = b * Math.cos(angle) + a * Math.sin(angle);
        }
      }
      return out;
    });
  // Newest HF: the prefix block attends both ways on every layer, whatever the distance; elsewhere the
  // mask is causal, and on sliding layers also windowed (key j visible to query i when i - j < window).
  const visible = (i: number, j: number, layer: number) => {
    if (i < prefixLength && j < prefixLength) return true;
    const sliding = generation === 2 && text.layer_types[layer] === 'sliding_attention' && text.sliding_window !== null;
    return j <= i && !(sliding && i - j >= text.sliding_window!);
  };

  for (let l = 0; l < text.num_hidden_layers; l++) {
    const lw = (part: string, shape: number[]) => w(`language_model.model.layers.${l}.${part}`, shape);
    const h = rmsNorm(x, lw('input_layernorm.weight', [H]), eps);
    const q = rope(linear(h, lw('self_attn.q_proj.weight', [heads * hd, H]), heads * hd), heads);
    const k = rope(linear(h, lw('self_attn.k_proj.weight', [kvHeads * hd, H]), kvHeads * hd), kvHeads);
    const v = linear(h, lw('self_attn.v_proj.weight', [kvHeads * hd, H]), kvHeads * hd);
    const attended: Matrix = x.map(() => new Float64Array(heads * hd));
    for (let head = 0; head < heads; head++) {
      const kvHead = Math.floor(head / groups);
      for (let i = 0; i < L; i++) {
        const scores = [];
        for (let j = 0; j < L; j++) {
          if (!visible(i, j, l)) {
            scores.push(-Infinity);
            continue;
          }
          let dot = 0;
          for (let e = 0; e < hd; e++) dot += q[i]![head * hd + e]! * k[j]![kvHead * hd + e]!;
          let score = dot * scaling;
          if (generation === 2 && text.attn_logit_softcapping !== null) score = Math.tanh(score / text.attn_logit_softcapping) * text.attn_logit_softcapping;
          scores.push(score);
        }
        const probs = softmax(scores);
        for (let e = 0; e < hd; e++) {
          let sum = 0;
          for (let j = 0; j < L; j++) sum += probs[j]! * v[j]![kvHead * hd + e]!;
          attended[i]![head * hd + e] = sum;
        }
      }
    }
    let attentionOut = linear(attended, lw('self_attn.o_proj.weight', [H, heads * hd]), H);
    if (generation === 2) attentionOut = rmsNorm(attentionOut, lw('post_attention_layernorm.weight', [H]), eps);
    x = add(x, attentionOut);
    const mlpIn = rmsNorm(x, lw(generation === 2 ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight', [H]), eps);
    const gate = linear(mlpIn, lw('mlp.gate_proj.weight', [I, H]), I);
    const up = linear(mlpIn, lw('mlp.up_proj.weight', [I, H]), I);
    const product = gate.map((row, r) => row.map((g, i) => gelu(g, text.hidden_activation) * up[r]![i]!));
    let mlpOut = linear(product, lw('mlp.down_proj.weight', [H, I]), H);
    if (generation === 2) mlpOut = rmsNorm(mlpOut, lw('post_feedforward_layernorm.weight', [H]), eps);
    x = add(x, mlpOut);
  }
  x = rmsNorm(x, w('language_model.model.norm.weight', [H]), eps);
  const logits = linear(x, embed, V);
  if (generation === 2 && text.final_logit_softcapping !== null && finalSoftcapping) {
    const cap = text.final_logit_softcapping;
    return logits.map((row) => row.map((v) => Math.tanh(v / cap) * cap));
  }
  return logits;
}

/** Greedy decoding by full recomputation (no cache): the ids and each step's logits. */
export function referenceGreedy(
  checkpoint: Checkpoint,
  imageFeatures: Matrix,
  promptIds: number[],
  maxNewTokens: number,
  imageTokenId: number,
  eosIds: Set<number>,
): { ids: number[]; stepLogits: Float64Array[] } {
  const ids: number[] = [];
  const stepLogits: Float64Array[] = [];
  while (ids.length < maxNewTokens) {
    const logits = referenceLogits(checkpoint, imageFeatures, [...promptIds, ...ids], promptIds.length, imageTokenId);
    const last = logits[logits.length - 1]!;
    stepLogits.push(last);
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
    ids.push(best);
    if (eosIds.has(best)) break;
  }
  return { ids, stepLogits };
}
