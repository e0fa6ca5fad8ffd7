/**
 * `npm run bench:serve`: `pali serve --model` under 1, 4 and 16 concurrent clients, with batching off
 * (--max-batch 1) and on, on the same model and images in the same run. Each client streams chat
 * completions (a different image each, `caption en`, max_tokens 32) one after another; the figures are
 * throughput (requests and generated tokens per second) and latency (time to first text, and to the end:
 * median and 95th percentile). Figures only, never pass/fail: the machine is shared.
 *
 *   npm run bench:serve -- [--preset paligemma-3b-224|tiny] [--dtype int4|fp32] [--clients 1,4,16]
 *                          [--requests N] [--max-batch 16] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { chatCompletion } from '../src/common/remote/chatClient.js';
import { benchModelDir, benchRoot } from './benchFiles.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'paligemma-3b-224' },
    dtype: { type: 'string', default: 'int4' },
    clients: { type: 'string', default: '1,4,16' },
    requests: { type: 'string' },
    'max-batch': { type: 'string', default: '16' },
    'max-tokens': { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);
const CLI = path.join(__dirname, '..', 'dist', 'pali.js');

async function startServer(modelDir: string, maxBatch: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', modelDir, '--port', '0', '--dtype', values.dtype!, '--device', 'cpu', '--max-batch', String(maxBatch)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let seen = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      seen += chunk;
      const match = /serving \S+ at (http:\/\/\S+)\/v1/.exec(seen);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`pali serve exited with ${code}: ${seen}`)));
  });
  return { child, url };
}

/** Distinct images, one per client, so that no answer comes from the image-feature cache. */
async function images(count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const png = await sharp({ create: { width: 640, height: 400, channels: 3, background: { r: (i * 47) % 256, g: (i * 91) % 256, b: (i * 13) % 256 } } })
      .composite([{ input: Buffer.from(`<svg width="640" height="400"><rect x="${20 + i * 7}" y="40" width="200" height="120" fill="white"/><text x="40" y="300" font-size="40">Build ${i} failed</text></svg>`) }])
      .png().toBuffer();
    return `data:image/png;base64,${png.toString('base64')}`;
  }));
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

interface LevelFigures {
  clients: number;
  maxBatch: number;
  requests: number;
  wallS: number;
  requestsPerS: number;
  tokensPerS: number;
  firstTextP50S: number;
  firstTextP95S: number;
  latencyP50S: number;
  latencyP95S: number;
}

async function level(url: string, maxBatch: number, clients: number, requestsPerClient: number, dataUrls: string[]): Promise<LevelFigures> {
  const firstText: number[] = [];
  const latency: number[] = [];
  let tokens = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let r = 0; r < requestsPerClient; r++) {
      const result = await chatCompletion({ url }, {
        model: 'bench',
        imageDataUrl: dataUrls[(c + r * clients) % dataUrls.length]!,
        prompt: 'caption en',
        maxTokens: Number(values['max-tokens']),
        onPiece: () => undefined,
      });
      firstText.push(result.firstTokenMs / 1000);
      latency.push(result.totalMs / 1000);
      tokens += result.completionTokens ?? 0;
    }
  }));
  const wallS = (performance.now() - started) / 1000;
  const requests = clients * requestsPerClient;
  return {
    clients, maxBatch, requests, wallS,
    requestsPerS: requests / wallS,
    tokensPerS: tokens / wallS,
    firstTextP50S: percentile(firstText, 50), firstTextP95S: percentile(firstText, 95),
    latencyP50S: percentile(latency, 50), latencyP95S: percentile(latency, 95),
  };
}

async function main(): Promise<void> {
  const modelDir = benchModelDir(values.preset!, log);
  const levels = values.clients!.split(',').map(Number);
  const dataUrls = await images(Math.max(...levels) * 2);
  const figures: LevelFigures[] = [];
  for (const maxBatch of [1, Number(values['max-batch'])]) {
    log(`pali serve --max-batch ${maxBatch} (${values.preset}, ${values.dtype}) ...`);
    const { child, url } = await startServer(modelDir, maxBatch);
    try {
      // One request first: the graphs' first runs allocate, and no level should pay for that.
      await level(url, maxBatch, 1, 1, dataUrls);
      for (const clients of levels) {
        const perClient = values.requests ? Number(values.requests) : clients === 1 ? 3 : 1;
        const result = await level(url, maxBatch, clients, perClient, dataUrls);
        log(`  ${clients} clients: ${result.requestsPerS.toFixed(3)} req/s, ${result.tokensPerS.toFixed(1)} tok/s, first text p50 ${result.firstTextP50S.toFixed(2)} s, end p50 ${result.latencyP50S.toFixed(2)} s p95 ${result.latencyP95S.toFixed(2)} s`);
        figures.push(result);
      }
    } finally {
      child.kill('SIGTERM');
    }
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ preset: values.preset, dtype: values.dtype, cacheDir: benchRoot(), figures }, null, 2)}\n`);
    return;
  }
  const rows = ['| clients | batching | requests | req/s | gen tok/s | first text p50 / p95 | end p50 / p95 |', '|---|---|---|---|---|---|---|'];
  for (const f of figures) {
    rows.push(`| ${f.clients} | ${f.maxBatch > 1 ? `on (max ${f.maxBatch})` : 'off'} | ${f.requests} | ${f.requestsPerS.toFixed(3)} | ${f.tokensPerS.toFixed(1)} | ${f.firstTextP50S.toFixed(2)} / ${f.firstTextP95S.toFixed(2)} s | ${f.latencyP50S.toFixed(2)} / ${f.latencyP95S.toFixed(2)} s |`);
  }
  for (const clients of levels) {
    const off = figures.find((f) => f.clients === clients && f.maxBatch === 1);
    const on = figures.find((f) => f.clients === clients && f.maxBatch > 1);
    if (off && on) rows.push(`\n${clients} clients: batching gives ${(on.tokensPerS / off.tokensPerS).toFixed(2)}x the generated tokens per second, end-to-end p50 ${(off.latencyP50S / on.latencyP50S).toFixed(2)}x`);
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}

void main().then(() => process.exit(0), (error) => {
  log(`bench:serve failed: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});
