/**
 * `pali forge`: writes a random-weight PaliGemma checkpoint in exactly Hugging Face's on-disk format, so the
 * loader that reads real checkpoints reads these too. Tensors are generated and written chunk by chunk: a
 * full-size preset never sits in memory whole.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readPaliGemmaConfig, type PaliGemmaConfig } from '../checkpoint/config.js';
import { f32ToBf16, f32ToF16 } from '../checkpoint/floatFormats.js';
import { writeSafetensors, type SafetensorsDtype, type TensorToWrite } from '../checkpoint/safetensors.js';
import {
  GEMMA_LINEAR_PARTS, SIGLIP_LAYER_PARTS, gemmaNormParts, projectorNames, textNames, visionNames,
} from '../checkpoint/weightNames.js';
import { UserError } from '../../common/errors.js';
import { PRESETS, type ForgePreset } from './presets.js';
import { SeededRandom } from '../random.js';
import { buildTokenizerFiles, tokenizerFilesFromGemma, type TokenizerFiles } from './tokenizerFiles.js';
import { forcedAnswer, forcedAnswerIds, patchEmbeddings, patchLmHead } from './forcedAnswer.js';
import { withOutliers } from './outliers.js';
import { loadTokenizer } from '../text/tokenizer.js';

export interface ForgeOptions {
  preset: string;
  seed: number;
  outDir: string;
  /** Overrides the preset's storage dtype. */
  dtype?: SafetensorsDtype;
  /** Weights that make greedy decoding answer this, whatever the input (forge/forcedAnswer.ts). */
  answer?: string;
  /** Massive activations and outlier channels, as real LLMs have them (forge/outliers.ts). */
  outliers?: boolean;
  /** A folder with a real Gemma tokenizer.json to extend, instead of the forged vocabulary. */
  tokenizerDir?: string;
  /**
   * The answer's token ids, for a real vocabulary: its tokenizer (transformers.js, which loads
   * asynchronously) splits the answer, so the caller tokenizes it (answerIdsFor).
   */
  answerIds?: number[];
}

/** How a tensor's random values are drawn: around 0 for weights, around 1 for LayerNorm scales. */
interface TensorSpec {
  name: string;
  shape: number[];
  mean: number;
  std: number;
  /** Rewrites a chunk of the random values; `firstRow` is the chunk's first row of the tensor. */
  patch?: (values: Float32Array, firstRow: number) => void;
}

const CHUNK_ELEMENTS = 1 << 20;

function tensorSpecs(config: PaliGemmaConfig, preset: ForgePreset): TensorSpec[] {
  const std = preset.weightStd;
  const { vision, text } = config;
  const specs: TensorSpec[] = [];
  const weight = (name: string, shape: number[], scale = 1) => specs.push({ name, shape, mean: 0, std: std * scale });
  const norm = (name: string, shape: number[], mean: number) => specs.push({ name, shape, mean, std: 0.1 });

  const V = vision.hidden_size;
  const C = vision.num_channels;
  const P = vision.patch_size;
  weight(visionNames.patchWeight, [V, C, P, P]);
  weight(visionNames.patchBias, [V], 0.1);
  weight(visionNames.positionEmbedding, [config.num_image_tokens, V]);
  for (let i = 0; i < vision.num_hidden_layers; i++) {
    for (const part of SIGLIP_LAYER_PARTS) {
      const name = visionNames.layer(i, part);
      if (part.startsWith('layer_norm')) norm(name, [V], part.endsWith('weight') ? 1 : 0);
      else if (part.endsWith('bias')) weight(name, [part.includes('fc1') ? vision.intermediate_size : V], 0.1);
      else if (part.includes('fc1')) weight(name, [vision.intermediate_size, V]);
      else if (part.includes('fc2')) weight(name, [V, vision.intermediate_size]);
      else weight(name, [V, V]);
    }
  }
  norm(visionNames.postLayerNormWeight, [V], 1);
  norm(visionNames.postLayerNormBias, [V], 0);
  weight(projectorNames.weight, [config.projection_dim, V]);
  weight(projectorNames.bias, [config.projection_dim], 0.1);

  const H = text.hidden_size;
  const q = text.num_attention_heads * text.head_dim;
  const kv = text.num_key_value_heads * text.head_dim;
  specs.push({ name: textNames.embedTokens, shape: [preset.vocabSize, H], mean: 0, std: preset.embeddingStd });
  const linearShapes: Record<string, number[]> = {
    'self_attn.q_proj.weight': [q, H],
    'self_attn.k_proj.weight': [kv, H],
    'self_attn.v_proj.weight': [kv, H],
    'self_attn.o_proj.weight': [H, q],
    'mlp.gate_proj.weight': [text.intermediate_size, H],
    'mlp.up_proj.weight': [text.intermediate_size, H],
    'mlp.down_proj.weight': [H, text.intermediate_size],
  };
  for (let i = 0; i < text.num_hidden_layers; i++) {
    for (const part of gemmaNormParts(config.generation)) {
      // Gemma 2 normalises each block's output before the residual add; scaled-up post-norms keep random
      // blocks from being drowned by the sqrt(H)-scaled embedding (else greedy decoding echoes its input).
      const postNorm = config.generation === 2 && part.startsWith('post_');
      norm(textNames.layer(i, part), [H], postNorm ? preset.gemma2PostNormMean : 0);
    }
    for (const part of GEMMA_LINEAR_PARTS) {
      weight(textNames.layer(i, part), linearShapes[part]!, part === 'mlp.down_proj.weight' ? preset.mlpOutScale : 1);
    }
  }
  norm(textNames.finalNorm, [H], 0);
  return specs;
}

function* randomChunks(spec: TensorSpec, seed: number, dtype: SafetensorsDtype): Iterable<Uint8Array> {
  const random = new SeededRandom(seed, spec.name);
  let remaining = spec.shape.reduce((a, b) => a * b, 1);
  const rowLength = spec.shape.slice(1).reduce((a, b) => a * b, 1);
  let done = 0;
  while (remaining > 0) {
    // Whole rows per chunk, so that a patch sees rows.
    const values = new Float32Array(Math.min(remaining, Math.max(rowLength, CHUNK_ELEMENTS - (CHUNK_ELEMENTS % rowLength))));
    for (let i = 0; i < values.length; i++) values[i] = random.uniform(spec.mean, spec.std);
    spec.patch?.(values, done / rowLength);
    done += values.length;
    remaining -= values.length;
    const encoded = dtype === 'F32' ? values : dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
    yield new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** Splits tensors into shards of at most `shardBytes`, in order, like HF's save_pretrained. */
function shard(tensors: TensorToWrite[], shardBytes: number): TensorToWrite[][] {
  const bytes = (t: TensorToWrite) => t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 2);
  const shards: TensorToWrite[][] = [[]];
  let current = 0;
  for (const tensor of tensors) {
    if (current > 0 && current + bytes(tensor) > shardBytes) {
      shards.push([]);
      current = 0;
    }
    shards.at(-1)!.push(tensor);
    current += bytes(tensor);
  }
  return shards;
}

/** Every piece and added token by its content: the model's vocabulary plus loc, seg and image tokens. */
function tokenVocabulary(tokenizer: TokenizerFiles): Map<string, number> {
  const json = tokenizer.tokenizerJson as { model: { vocab: Record<string, number> }; added_tokens: { id: number; content: string }[] };
  return new Map([...Object.entries(json.model.vocab), ...json.added_tokens.map((t): [string, number] => [t.content, t.id])]);
}

export function writeTokenizerFiles(outDir: string, tokenizer: TokenizerFiles): void {
  writeJson(path.join(outDir, 'tokenizer.json'), tokenizer.tokenizerJson);
  writeJson(path.join(outDir, 'tokenizer_config.json'), tokenizer.tokenizerConfig);
  writeJson(path.join(outDir, 'special_tokens_map.json'), tokenizer.specialTokensMap);
}

export function forgeCheckpoint(options: ForgeOptions): { dir: string; files: string[] } {
  const preset = PRESETS[options.preset];
  if (!preset) {
    throw new UserError(`unknown preset "${options.preset}": choose one of ${Object.keys(PRESETS).join(', ')}`);
  }
  const rawConfig = structuredClone(preset.config) as Record<string, unknown> & { text_config: Record<string, unknown> };
  const tokenizer = options.tokenizerDir ? tokenizerFilesFromGemma(options.tokenizerDir, preset.baseVocabSize) : buildTokenizerFiles(preset.baseVocabSize);
  let specs = tensorSpecs(readPaliGemmaConfig(structuredClone(preset.config)), preset);
  if (options.outliers) specs = withOutliers(specs, readPaliGemmaConfig(structuredClone(preset.config)));
  if (options.answer !== undefined || options.answerIds !== undefined) {
    const hidden = Number(rawConfig.text_config.hidden_size);
    const vocab = tokenVocabulary(tokenizer);
    const forced = options.answerIds ? forcedAnswerIds(options.answerIds, vocab, 1, hidden) : forcedAnswer(options.answer!, vocab, 1, hidden);
    rawConfig.text_config.tie_word_embeddings = false;
    specs = specs.map((spec) => {
      // Blocks write nothing into the residual stream, and the final norm keeps unit scale.
      if (/o_proj\.weight$|down_proj\.weight$/.test(spec.name) || spec.name === textNames.finalNorm) return { ...spec, mean: 0, std: 0 };
      if (spec.name === textNames.embedTokens) return { ...spec, patch: (values, row) => patchEmbeddings(forced, values, row) };
      return spec;
    });
    specs.push({ name: textNames.lmHead, shape: [preset.vocabSize, hidden], mean: 0, std: 0, patch: (values, row) => patchLmHead(forced, values, row) });
  }
  const config = readPaliGemmaConfig(structuredClone(rawConfig));
  const dtype = options.dtype ?? preset.storageDtype;
  fs.mkdirSync(options.outDir, { recursive: true });
  const tensors: TensorToWrite[] = specs.map((spec) => ({
    name: spec.name,
    dtype,
    shape: spec.shape,
    chunks: () => randomChunks(spec, options.seed, dtype),
  }));
  const written: string[] = [];
  const shards = shard(tensors, preset.shardBytes);
  if (shards.length === 1) {
    writeSafetensors(path.join(options.outDir, 'model.safetensors'), tensors);
    written.push('model.safetensors');
  } else {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    shards.forEach((shardTensors, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      writeSafetensors(path.join(options.outDir, file), shardTensors);
      written.push(file);
      for (const t of shardTensors) {
        weightMap[t.name] = file;
        totalSize += t.shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2);
      }
    });
    writeJson(path.join(options.outDir, 'model.safetensors.index.json'), { metadata: { total_size: totalSize }, weight_map: weightMap });
    written.push('model.safetensors.index.json');
  }

  const torchDtype = dtype === 'F32' ? 'float32' : dtype === 'BF16' ? 'bfloat16' : 'float16';
  writeJson(path.join(options.outDir, 'config.json'), { ...rawConfig, torch_dtype: torchDtype });
  writeTokenizerFiles(options.outDir, tokenizer);
  const size = config.vision.image_size;
  writeJson(path.join(options.outDir, 'preprocessor_config.json'), {
    do_convert_rgb: null,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'SiglipImageProcessor',
    image_seq_length: config.num_image_tokens,
    image_std: [0.5, 0.5, 0.5],
    processor_class: 'PaliGemmaProcessor',
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { height: size, width: size },
  });
  writeJson(path.join(options.outDir, 'generation_config.json'), {
    bos_token_id: 2,
    eos_token_id: 1,
    pad_token_id: 0,
  });
  written.push('config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'generation_config.json');
  return { dir: options.outDir, files: written };
}

/**
 * The token ids of `answer` in the preset's vocabulary extended from the Gemma tokenizer in `tokenizerDir`
 * (written into a scratch folder for transformers.js to load).
 */
export async function answerIdsFor(answer: string, tokenizerDir: string, preset: string): Promise<number[]> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pali-answer-'));
  try {
    writeTokenizerFiles(scratch, tokenizerFilesFromGemma(tokenizerDir, PRESETS[preset]?.baseVocabSize ?? 0));
    return (await loadTokenizer(scratch)).encode(answer);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
