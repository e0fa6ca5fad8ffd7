/**
 * One benchmark process for one engine, so that its memory is its own: loads the converted folder, asks a
 * first question about an image, then a second question about the same image, and prints one JSON line.
 * Usage: node --import tsx bench/measure.ts ours|transformers.js DIR DTYPE IMAGE TOKENS [FIRST_PROMPT]
 * (DTYPE `recommended` for transformers.js: the dtypes its PaliGemma card gives).
 */
import { componentDtype, type Component, type ModelDtype } from '../src/engine/paligemma/components.js';
import type { WeightDtype } from '../src/engine/onnx/layers.js';
import { loadModel } from '../src/engine/model.js';
import { TRANSFORMERS_JS_RECOMMENDED_DTYPES } from '../src/engine/convert/convert.js';
import { encodeImage } from '../src/engine/paligemma/inputs.js';
import { generate } from '../src/engine/generate/generate.js';
import { loadTransformers } from '../src/engine/text/tokenizer.js';

/** The first question: a caption, or what a preset's feature asks (`ocr` for the 448 px OCR model). */
export const FIRST_PROMPT = 'caption en';
export const SECOND_PROMPT = 'answer en what is on the screen?';

export interface QuestionFigures {
  preprocessMs: number;
  visionMs: number;
  /** From the end of the vision tower to the first token: embedding, prefill and the first argmax. */
  prefillMs: number;
  firstTokenMs: number;
  decodeTokensPerS: number;
  endToEndMs: number;
  ids: number[];
}

export interface ProcessFigures {
  engine: string;
  loadMs: number;
  first: QuestionFigures;
  second: QuestionFigures;
  peakRssMb: number;
  /** Ours: how each CPU session was made (from a copy prepared for this CPU or not: runtime/preparedSessions.ts). */
  loads?: Record<string, string>;
}

interface Engine {
  loadMs: number;
  loads?: Record<string, string>;
  ask(image: string, prompt: string, tokens: number): Promise<QuestionFigures>;
}

const now = () => performance.now();

async function ours(dir: string, dtype: ModelDtype): Promise<Engine> {
  loadTransformers(); // both engines start with their libraries imported: load time is the model's
  const start = now();
  const model = await loadModel(dir, { dtype, device: 'cpu' });
  const loadMs = now() - start;
  // The engine keeps an image's features for the next question about it (EngineService's FeatureCache).
  const features = new Map<string, Awaited<ReturnType<typeof encodeImage>>>();
  return {
    loadMs,
    loads: model.sessionLoads,
    ask: async (image, prompt, tokens) => {
      const begin = now();
      let encoded = features.get(image);
      const cached = encoded !== undefined;
      encoded ??= await encodeImage(model, image);
      features.set(image, encoded);
      const result = await generate(model, encoded, prompt, { maxNewTokens: tokens, minNewTokens: tokens });
      const endToEndMs = now() - begin;
      const firstTokenMs = endToEndMs - result.timings.decodeMs;
      const preprocessMs = cached ? 0 : encoded.timings.preprocessMs;
      const visionMs = cached ? 0 : encoded.timings.visionMs;
      return {
        preprocessMs,
        visionMs,
        prefillMs: firstTokenMs - preprocessMs - visionMs,
        firstTokenMs,
        decodeTokensPerS: ((result.generatedIds.length - 1) * 1000) / Math.max(result.timings.decodeMs, 1e-9),
        endToEndMs,
        ids: result.generatedIds,
      };
    },
  };
}

/** DTYPE for transformers.js at the dtypes its PaliGemma card recommends (TRANSFORMERS_JS_RECOMMENDED_DTYPES). */
export const RECOMMENDED = 'recommended' as const;

/** transformers.js names a component's dtype by its file suffix: '' fp32, _fp16 fp16, _q4 q4, _quantized q8, _int8 int8. */
function transformersJsDtypes(dtype: ModelDtype | typeof RECOMMENDED): Record<string, string> {
  if (dtype === RECOMMENDED) return TRANSFORMERS_JS_RECOMMENDED_DTYPES;
  const components: Component[] = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'];
  const names: Record<WeightDtype, string> = { fp32: 'fp32', fp16: 'fp16', int4: 'q4', q8: 'q8', int8: 'int8' };
  return Object.fromEntries(components.map((c) => [c, names[componentDtype(c, dtype)]]));
}

async function transformersJs(dir: string, dtype: ModelDtype | typeof RECOMMENDED): Promise<Engine> {
  const t = loadTransformers();
  const start = now();
  const processor = await t.AutoProcessor.from_pretrained(dir, { local_files_only: true });
  const model = await t.PaliGemmaForConditionalGeneration.from_pretrained(dir, {
    dtype: transformersJsDtypes(dtype) as never,
    device: 'cpu',
    local_files_only: true,
  });
  const loadMs = now() - start;
  return {
    loadMs,
    ask: async (image, prompt, tokens) => {
      const begin = now();
      const stamps: number[] = [];
      // A streamer sees each generated token as it is produced; the first put() is the prompt.
      const streamer = new (class extends t.BaseStreamer {
        calls = 0;
        override put() {
          if (this.calls++ > 0) stamps.push(now() - begin);
        }
        override end() {}
      })();
      const inputs = await processor(await t.RawImage.read(image), `<image>${prompt}`);
      const preprocessMs = now() - begin;
      const output = (await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false, streamer })) as { data: BigInt64Array };
      const endToEndMs = now() - begin;
      const ids = Array.from(output.data, Number).slice(Number(inputs.input_ids.dims.at(-1)));
      const firstTokenMs = stamps[0] ?? endToEndMs;
      // Its vision tower runs inside generate(); time the same call once more on its own to split the
      // time to first token (outside the end-to-end figure).
      const visionStart = now();
      await (model as unknown as { encode_image(inputs: unknown): Promise<unknown> }).encode_image({ pixel_values: inputs.pixel_values });
      const visionMs = now() - visionStart;
      return {
        preprocessMs,
        visionMs,
        prefillMs: firstTokenMs - preprocessMs - visionMs,
        firstTokenMs,
        decodeTokensPerS: ((ids.length - 1) * 1000) / Math.max(endToEndMs - firstTokenMs, 1e-9),
        endToEndMs,
        ids,
      };
    },
  };
}

async function main(): Promise<void> {
  const [engineName, dir, dtype, image, tokens, firstPrompt = FIRST_PROMPT] = process.argv.slice(2);
  const engine = engineName === 'ours' ? await ours(dir!, dtype as ModelDtype) : await transformersJs(dir!, dtype as ModelDtype | typeof RECOMMENDED);
  const first = await engine.ask(image!, firstPrompt, Number(tokens));
  const second = await engine.ask(image!, SECOND_PROMPT, Number(tokens));
  const figures: ProcessFigures = { engine: engineName!, loadMs: engine.loadMs, loads: engine.loads, first, second, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(figures) + '\n');
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
