/**
 * One benchmark run of one engine, in its own process so that its memory is its own: loads the converted
 * folder, generates greedily for an image, prints one JSON line with timings, ids and peak memory.
 * Usage: node --import tsx bench/measure.ts ours|transformers.js DIR IMAGE PROMPT TOKENS RUNS
 */
import { loadModel } from '../src/engine/model.js';
import { encodeImage, generate } from '../src/engine/pipeline.js';
import { loadTransformers } from '../src/engine/text/tokenizer.js';

interface RunTimes {
  firstTokenMs: number;
  totalMs: number;
  decodeTokensPerS: number;
  ids: number[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function ours(dir: string, image: string, prompt: string, tokens: number): Promise<{ loadMs: number; run: () => Promise<RunTimes> }> {
  loadTransformers(); // both engines start with their libraries imported: load time is the model's
  const start = performance.now();
  const model = await loadModel(dir, { dtype: 'fp32', device: 'cpu' });
  const loadMs = performance.now() - start;
  return {
    loadMs,
    run: async () => {
      const begin = performance.now();
      const encoded = await encodeImage(model, image);
      const result = await generate(model, encoded, prompt, { maxNewTokens: tokens });
      const totalMs = performance.now() - begin;
      // The first token is chosen right after the prefill.
      const decode_ms = result.timings.decode_ms;
      const firstTokenMs = totalMs - decode_ms;
      return { firstTokenMs, totalMs, decodeTokensPerS: ((result.generated_ids.length - 1) * 1000) / Math.max(decode_ms, 1e-9), ids: result.generated_ids };
    },
  };
}

async function transformersJs(dir: string, image: string, prompt: string, tokens: number): Promise<{ loadMs: number; run: () => Promise<RunTimes> }> {
  const t = loadTransformers();
  const start = performance.now();
  const processor = await t.AutoProcessor.from_pretrained(dir, { local_files_only: true });
  const model = await t.PaliGemmaForConditionalGeneration.from_pretrained(dir, { dtype: 'fp32', device: 'cpu', local_files_only: true });
  const loadMs = performance.now() - start;
  return {
    loadMs,
    run: async () => {
      const begin = performance.now();
      const stamps: number[] = [];
      // A streamer sees each generated token as it is produced; the first put() is the prompt.
      const streamer = new (class extends t.BaseStreamer {
        calls = 0;
        override put() {
          if (this.calls++ > 0) stamps.push(performance.now() - begin);
        }
        override end() {}
      })();
      const inputs = await processor(await t.RawImage.read(image), `<image>${prompt}`);
      const output = (await model.generate({ ...inputs, max_new_tokens: tokens, do_sample: false, streamer })) as { data: BigInt64Array };
      const totalMs = performance.now() - begin;
      const ids = Array.from(output.data, Number).slice(Number(inputs.input_ids.dims.at(-1)));
      const first = stamps[0] ?? totalMs;
      return { firstTokenMs: first, totalMs, decodeTokensPerS: ((ids.length - 1) * 1000) / Math.max(totalMs - first, 1e-9), ids };
    },
  };
}

async function main(): Promise<void> {
  const [engine, dir, image, prompt, tokens, runs] = process.argv.slice(2);
  const setup = engine === 'ours' ? ours : transformersJs;
  const { loadMs, run } = await setup(dir!, image!, prompt!, Number(tokens));
  const results: RunTimes[] = [];
  for (let i = 0; i < Number(runs); i++) results.push(await run());
  process.stdout.write(JSON.stringify({
    engine,
    loadMs,
    firstTokenMs: median(results.map((r) => r.firstTokenMs)),
    totalMs: median(results.map((r) => r.totalMs)),
    decodeTokensPerS: median(results.map((r) => r.decodeTokensPerS)),
    ids: results[0]!.ids,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
