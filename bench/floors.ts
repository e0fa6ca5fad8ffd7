/**
 * What this machine allows, measured with onnxruntime-node in the same run as the engines: the GEMM rate at
 * the shapes of the vision tower and of the prefill, and the rate at which a decode-shaped matrix-vector
 * product streams weights from memory. From them: the compute floor of vision plus prefill, and the
 * bandwidth ceiling of decode tokens per second.
 * Usage (its own process, so that its buffers never count in an engine's memory):
 *   node --import tsx bench/floors.ts CONFIG_JSON DTYPE PREFIX_LENGTH DECODE_BYTES
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { readPaliGemmaConfig, type PaliGemmaConfig } from '../src/engine/checkpoint/config.js';
import { componentDtype, type ModelDtype } from '../src/engine/paligemma/components.js';
import { GraphBuilder } from '../src/engine/onnx/graphBuilder.js';
import { MATMUL_NBITS_ACCURACY_LEVEL, linear, type WeightDtype } from '../src/engine/onnx/layers.js';
import { InlineWeightStore } from '../src/engine/onnx/weightStore.js';
import { sessionOptions } from '../src/engine/runtime/device.js';

export interface Floors {
  /** GFLOP/s of the vision tower's linear layer (its dtype: q8 for int4 models) at its MLP shape. */
  visionGemmGflops: number;
  /** GFLOP/s of the decoder's linear layer (its dtype) at the prefill's shape. */
  prefillGemmGflops: number;
  /** GB/s that a one-row product reads weights at, over more bytes than any cache holds. */
  streamingGBps: number;
  visionFlops: number;
  prefillFlops: number;
  /** Vision plus prefill at the measured GEMM rates, ms. */
  computeFloorMs: number;
  /** Bytes a decode step reads (the decoder's weights), and the tokens/s that streaming them allows. */
  decodeBytes: number;
  decodeCeilingTokensPerS: number;
}

/** Multiply-adds x 2 of SigLIP on one image: patch embedding, every layer, and the projector. */
export function visionFlops(config: PaliGemmaConfig): number {
  const { hidden_size: H, intermediate_size: I, num_hidden_layers: L, patch_size: p } = config.vision;
  const T = config.num_image_tokens;
  const perLayer = 2 * T * (4 * H * H + 2 * H * I) + 4 * T * T * H;
  return 2 * T * 3 * p * p * H + L * perLayer + 2 * T * H * config.text.hidden_size;
}

/** Multiply-adds x 2 of Gemma over a prefix of P tokens, with the LM head for the last position only. */
export function prefillFlops(config: PaliGemmaConfig, P: number, vocab: number): number {
  const { hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: heads, num_key_value_heads: kv, head_dim: hd } = config.text;
  const linearParams = H * heads * hd * 2 + 2 * H * kv * hd + 3 * H * I;
  return L * (2 * P * linearParams + 4 * P * P * heads * hd) + 2 * H * vocab;
}

async function bestMs(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number): Promise<number> {
  await session.run(feeds); // first run: allocations and prepacking
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

/** One linear layer y = x W^T, built by the engine's own `linear`, run at [1, M, K] x [N, K]. */
async function timeLinear(M: number, K: number, N: number, dtype: WeightDtype, runs: number): Promise<number> {
  const g = new GraphBuilder('floor', new InlineWeightStore());
  const x = g.input('x', 'float32', [1, M, K]);
  const weight = () => {
    const w = new Float32Array(N * K);
    for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
    return w;
  };
  g.output(linear(g, x, 'w', weight, N, K, dtype), 'y', 'float32', [1, M, N]);
  const session = await ort.InferenceSession.create(g.toModelBytes(), sessionOptions('cpu'));
  try {
    const input = new Float32Array(M * K).map((_, i) => Math.sin(i));
    return await bestMs(session, { x: new ort.Tensor('float32', input, [1, M, K]) }, runs);
  } finally {
    await session.release();
  }
}

/**
 * MatMulNBits at M = 1 with random packed weights made directly: quantizing ~1 G float weights in JS
 * would take longer than the whole benchmark.
 */
async function timeInt4Matvec(K: number, N: number, runs: number): Promise<number> {
  const g = new GraphBuilder('floor', new InlineWeightStore());
  const x = g.input('x', 'float32', [1, 1, K]);
  const blocks = K / 32;
  const packed = new Uint8Array(N * blocks * 16).map((_, i) => (i * 2654435761) >>> 24);
  const scales = new Float32Array(N * blocks).fill(0.01);
  const zeros = new Uint8Array(N * Math.ceil(blocks / 2)).fill(0x88);
  const y = g.microsoftOp('MatMulNBits', [x, g.weight('q', packed, [N, blocks, 16], 'uint8'), g.weight('s', scales, [N * blocks]), g.weight('z', zeros, [zeros.length], 'uint8')], {
    K, N, bits: 4, block_size: 32, accuracy_level: MATMUL_NBITS_ACCURACY_LEVEL,
  });
  g.output(y, 'y', 'float32', [1, 1, N]);
  const session = await ort.InferenceSession.create(g.toModelBytes(), sessionOptions('cpu'));
  try {
    return await bestMs(session, { x: new ort.Tensor('float32', new Float32Array(K).map((_, i) => Math.sin(i)), [1, 1, K]) }, runs);
  } finally {
    await session.release();
  }
}

export async function measureFloors(config: PaliGemmaConfig, dtype: ModelDtype, prefixLength: number, decodeBytes: number, vocab: number): Promise<Floors> {
  const { vision, text } = config;
  const visionMs = await timeLinear(config.num_image_tokens, vision.hidden_size, vision.intermediate_size, componentDtype('vision_encoder', dtype), 5);
  const visionGemmGflops = (2 * config.num_image_tokens * vision.hidden_size * vision.intermediate_size) / visionMs / 1e6;
  const prefillMs = await timeLinear(prefixLength, text.hidden_size, text.intermediate_size, dtype, 5);
  const prefillGemmGflops = (2 * prefixLength * text.hidden_size * text.intermediate_size) / prefillMs / 1e6;
  // A decode-shaped product over ~512 MB of weights in the decoder's dtype: far beyond any cache. int8
  // weights are quantized from float32 in JS here, so they stream 256 MB (still far beyond any cache).
  const bytesPerWeight = dtype === 'int4' ? 0.5 + 4 / 32 + 0.5 / 32 : dtype === 'int8' ? 1 : dtype === 'fp16' ? 2 : 4;
  const K = text.hidden_size;
  const streamBytes = (dtype === 'int8' ? 256 : 512) * 2 ** 20;
  const N = Math.round(streamBytes / (K * bytesPerWeight) / 64) * 64;
  const streamMs = dtype === 'int4' ? await timeInt4Matvec(K, N, 5) : await timeLinear(1, K, N, dtype, 5);
  const streamingGBps = (N * K * bytesPerWeight) / streamMs / 1e6;
  const vFlops = visionFlops(config);
  const pFlops = prefillFlops(config, prefixLength, vocab);
  return {
    visionGemmGflops,
    prefillGemmGflops,
    streamingGBps,
    visionFlops: vFlops,
    prefillFlops: pFlops,
    computeFloorMs: vFlops / visionGemmGflops / 1e6 + pFlops / prefillGemmGflops / 1e6,
    decodeBytes,
    decodeCeilingTokensPerS: (streamingGBps * 1e9) / decodeBytes,
  };
}

/**
 * The better of two measurements of the floors (taken before and after the engines): a shared machine's
 * noise only ever slows a measurement down, so the faster one is closer to what the hardware allows.
 */
export function bestOf(a: Floors, b: Floors): Floors {
  const visionGemmGflops = Math.max(a.visionGemmGflops, b.visionGemmGflops);
  const prefillGemmGflops = Math.max(a.prefillGemmGflops, b.prefillGemmGflops);
  const streamingGBps = Math.max(a.streamingGBps, b.streamingGBps);
  return {
    ...a,
    visionGemmGflops,
    prefillGemmGflops,
    streamingGBps,
    computeFloorMs: a.visionFlops / visionGemmGflops / 1e6 + a.prefillFlops / prefillGemmGflops / 1e6,
    decodeCeilingTokensPerS: (streamingGBps * 1e9) / a.decodeBytes,
  };
}

async function main(): Promise<void> {
  const [configFile, dtype, prefixLength, decodeBytes, vocab] = process.argv.slice(2);
  const config = readPaliGemmaConfig(JSON.parse(fs.readFileSync(configFile!, 'utf8')));
  const floors = await measureFloors(config, dtype as ModelDtype, Number(prefixLength), Number(decodeBytes), Number(vocab));
  process.stdout.write(JSON.stringify(floors) + '\n');
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
