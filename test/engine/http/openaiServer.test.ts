/**
 * `pali serve --model DIR`, the OpenAI-compatible HTTP API, driven by the official `openai` npm client:
 * models, a chat completion (the engine's own answer), the same streamed, sampling (the CLI's sample for
 * the same seed), clear 4xx errors in OpenAI's shape, the API key, a client that goes away (its decoding
 * stops), and a graceful stop on SIGTERM (the stream in flight is finished in full).
 */
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { startPaliServe } from '../../helpers/paliServe.js';
import { pali } from '../../helpers/pali.js';

const KEY = 'test-key';

describe('pali serve --model: the OpenAI-compatible API', () => {
  const root = tempDir('openai');
  let child: ChildProcess;
  let baseURL: string;
  let serverLog: string[];
  let client: OpenAI;
  let dataUrl: string;
  let image: string;
  /** The CLI's environment: the server's cache, so that both use one conversion. */
  let cacheEnv: Record<string, string>;
  let checkpointDir: string;

  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 8);
    checkpointDir = tiny.checkpointDir;
    cacheEnv = { PALI_CACHE_DIR: tiny.cacheRoot };
    image = await writeGradientPng(path.join(root, 'image.png'), 60, 40);
    dataUrl = `data:image/png;base64,${fs.readFileSync(image).toString('base64')}`;
    ({ child, baseURL, stderr: serverLog } = await startPaliServe(checkpointDir, tiny.cacheRoot, ['--api-key', KEY]));
    client = new OpenAI({ baseURL, apiKey: KEY, maxRetries: 0 });
  });
  after(() => child?.kill('SIGKILL'));

  const request = (prompt: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}): OpenAI.ChatCompletionCreateParamsNonStreaming => ({
    model: 'tiny',
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text: prompt }] }],
    max_tokens: 6,
    ...extra,
  });

  test('lists its model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
  });

  test('answers a chat completion with the engine\'s own answer, streamed or not', async () => {
    const expected = JSON.parse(pali(['generate', '--model', checkpointDir, '--image', image, '--prompt', 'caption en', '--max-new-tokens', '6', '--dtype', 'fp32', '--device', 'cpu', '--json'], cacheEnv).stdout);
    const completion = await client.chat.completions.create(request('caption en'));
    assert.equal(completion.choices[0]!.message.content, expected.text);
    assert.equal(completion.usage!.completion_tokens, expected.generated_ids.length);
    assert.equal(completion.usage!.prompt_tokens, expected.prompt_ids.length);
    assert.ok(['stop', 'length'].includes(completion.choices[0]!.finish_reason));
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of await client.chat.completions.create({ ...request('caption en'), stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(streamed, expected.text);
    assert.equal(finish, completion.choices[0]!.finish_reason);
  });

  /** The CLI's answer on the same model and image. */
  const cliAnswer = (...args: string[]) => JSON.parse(pali(['generate', '--model', checkpointDir, '--image', image, '--prompt', 'caption en', '--dtype', 'fp32', '--device', 'cpu', '--json', ...args], cacheEnv).stdout) as { text: string; generated_ids: number[] };

  test('samples with temperature, top_p and seed: the CLI\'s sample for the same seed, not the greedy answer', async () => {
    const sampled = async (seed: number) => (await client.chat.completions.create(request('caption en', { temperature: 1.5, top_p: 0.9, seed, max_tokens: 12 }))).choices[0]!.message.content;
    const answer = await sampled(3);
    assert.equal(await sampled(3), answer, 'the seed reproduces the sample');
    assert.equal(answer, cliAnswer('--max-new-tokens', '12', '--temperature', '1.5', '--top-p', '0.9', '--seed', '3').text, 'temperature, top_p and seed reach the sampler');
    assert.notEqual(answer, cliAnswer('--max-new-tokens', '12').text, 'not the greedy answer');
    assert.notEqual(await sampled(4), answer, 'another seed, another sample');
    const nucleus = await client.chat.completions.create(request('caption en', { temperature: 1.5, top_p: 0.05, seed: 3, max_tokens: 12 }));
    assert.equal(nucleus.choices[0]!.message.content, cliAnswer('--max-new-tokens', '12', '--temperature', '1.5', '--top-p', '0.05', '--seed', '3').text);
  });

  test('a client that goes away mid-stream: its decoding stops, and the next request is answered', { timeout: 60_000 }, async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ ...request('caption en', { max_tokens: 4000 }), stream: true }, { signal: controller.signal });
    let id = '';
    try {
      for await (const chunk of stream) {
        id = chunk.id;
        if (chunk.choices[0]?.delta.content) controller.abort();
      }
    } catch (error) {
      assert.ok(controller.signal.aborted, `only our abort ends the stream early: ${String(error)}`);
    }
    assert.ok(id);
    // 4,000 tokens take about 10 s on the tiny model: the server says how each request ended.
    const ended = () => serverLog.join('').split('\n').find((line) => line.startsWith(`pali: ${id}: `));
    for (const started = Date.now(); !ended() && Date.now() - started < 30_000; ) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(ended() ?? 'no line for the request', /: the client went away after \d+ streamed pieces; its decoding stopped$/);
    const next = await client.chat.completions.create(request('caption en'));
    assert.equal(next.choices[0]!.message.content, cliAnswer('--max-new-tokens', '6').text);
  });

  test('bad requests get 4xx in OpenAI\'s error shape; no key is 401', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'caption en' }] }), (error) => error instanceof OpenAI.BadRequestError && /content must be an array/.test(error.message));
    const notAnImage = `data:image/png;base64,${Buffer.from('not a png').toString('base64')}`;
    await assert.rejects(
      client.chat.completions.create({ ...request('ocr'), messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: notAnImage } }, { type: 'text', text: 'ocr' }] }] }),
      (error) => error instanceof OpenAI.BadRequestError && /cannot be decoded/.test(error.message),
    );
    await assert.rejects(
      client.chat.completions.create({ ...request('ocr'), messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1:9/x.png' } }, { type: 'text', text: 'ocr' }] }] }),
      (error) => error instanceof OpenAI.BadRequestError && /data: URL.*only with --allow-remote-images/.test(error.message),
    );
    const huge = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: 'x'.repeat(33 * 2 ** 20) });
    assert.equal(huge.status, 413);
    assert.match((await huge.json()).error.message, /larger than/);
    const keyless = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(keyless.models.list(), (error) => error instanceof OpenAI.AuthenticationError);
    assert.equal((await fetch(baseURL.replace(/\/v1$/, '/health'))).status, 200);
  });

  test('web pages are kept out: a rebinding Host and a foreign Origin get 403 and no work; loopback pages and clients without an Origin are served', async () => {
    const port = Number(new URL(baseURL).port);
    const body = JSON.stringify(request('caption en'));
    const requestsBefore = serverLog.join('').split('\n').filter((line) => line.includes('chatcmpl-')).length;
    // DNS rebinding: the page's own name resolves to 127.0.0.1, and its requests carry that name as Host.
    const rebound = await raw(port, 'GET', '/health', { host: `attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.match(JSON.parse(rebound.body).error.message, /^the Host header "attacker\.example:\d+" is not this machine's loopback/);
    // A page's text/plain POST needs no preflight: it is refused before the engine sees it.
    const posted = await raw(port, 'POST', '/v1/chat/completions', { host: `127.0.0.1:${port}`, origin: 'https://attacker.example', 'content-type': 'text/plain', authorization: `Bearer ${KEY}` }, body);
    assert.equal(posted.status, 403);
    assert.equal(JSON.parse(posted.body).error.type, 'permission_error');
    assert.match(JSON.parse(posted.body).error.message, /--allow-origin https:\/\/attacker\.example/);
    assert.equal(serverLog.join('').split('\n').filter((line) => line.includes('chatcmpl-')).length, requestsBefore, 'the engine ran no request');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) assert.equal((await raw(port, 'GET', '/health', { host })).status, 200, host);
    // A page served from loopback (a local tool) may read the answer.
    const local = await raw(port, 'GET', '/health', { host: `127.0.0.1:${port}`, origin: 'http://localhost:5173' });
    assert.equal(local.status, 200);
    assert.equal(local.headers['access-control-allow-origin'], 'http://localhost:5173');
    assert.equal((await raw(port, 'GET', '/health', { host: `127.0.0.1:${port}` })).headers['access-control-allow-origin'], undefined);
  });

  test('SIGTERM during a stream: the answer is finished in full, then the server exits 0', { timeout: 60_000 }, async () => {
    const expected = cliAnswer('--max-new-tokens', '300');
    assert.equal(expected.generated_ids.length, 300, 'the tiny model does not stop early, so the stream is long');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let streamed = '';
    let piecesAfterSignal = 0;
    let signalled = false;
    for await (const chunk of await client.chat.completions.create({ ...request('caption en', { max_tokens: 300 }), stream: true })) {
      const piece = chunk.choices[0]?.delta.content ?? '';
      if (!piece) continue;
      streamed += piece;
      if (signalled) piecesAfterSignal++;
      else {
        // Only once the first token has arrived: the request is in flight when the signal lands.
        child.kill('SIGTERM');
        signalled = true;
      }
    }
    assert.ok(piecesAfterSignal > 0, 'the signal landed mid-stream');
    assert.equal(streamed, expected.text);
    assert.equal(await exited, 0);
  });
});

describe('pali serve --model --allow-remote-images', () => {
  test('fetches an http image_url and answers as for the same image sent inline', async () => {
    const root = tempDir('openai-remote');
    const tiny = forgeTiny(root, 'tiny', 8);
    const image = await writeGradientPng(path.join(root, 'image.png'), 60, 40);
    const images = http.createServer((_request, response) => void response.writeHead(200, { 'content-type': 'image/png' }).end(fs.readFileSync(image)));
    await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
    const { child, baseURL } = await startPaliServe(tiny.checkpointDir, tiny.cacheRoot, ['--allow-remote-images']);
    try {
      const client = new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0 });
      const ask = (url: string) => client.chat.completions.create({ model: 'tiny', max_tokens: 6, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'caption en' }] }] });
      const inline = await ask(`data:image/png;base64,${fs.readFileSync(image).toString('base64')}`);
      const remote = await ask(`http://127.0.0.1:${(images.address() as AddressInfo).port}/image.png`);
      assert.equal(remote.choices[0]!.message.content, inline.choices[0]!.message.content);
      await assert.rejects(ask('http://127.0.0.1:1/missing.png'), (error) => error instanceof OpenAI.BadRequestError);
    } finally {
      child.kill('SIGKILL');
      images.close();
    }
  });
});

describe('pali serve --model --allow-origin, and a bind beyond loopback', () => {
  test('a listed origin is served with CORS, its preflight answered; --host 0.0.0.0 without a key says so', async () => {
    const root = tempDir('openai-origins');
    const tiny = forgeTiny(root, 'tiny', 8);
    const { child, baseURL, stderr } = await startPaliServe(tiny.checkpointDir, tiny.cacheRoot, ['--host', '0.0.0.0', '--allow-origin', 'https://app.example']);
    try {
      assert.match(stderr.join(''), /^pali: no API key: anyone who can reach port 0 on 0\.0\.0\.0 can use this server; set one with --api-key KEY or PALI_API_KEY$/m);
      const port = Number(new URL(baseURL).port);
      const preflight = await raw(port, 'OPTIONS', '/v1/chat/completions', { origin: 'https://app.example', 'access-control-request-method': 'POST' });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
      const listed = await raw(port, 'GET', '/v1/models', { origin: 'https://app.example' });
      assert.equal(listed.status, 200);
      assert.equal(listed.headers['access-control-allow-origin'], 'https://app.example');
      // Bound beyond loopback, any Host is served (a LAN name), but unlisted pages still are not.
      assert.equal((await raw(port, 'GET', '/health', { host: `workstation.lan:${port}` })).status, 200);
      assert.equal((await raw(port, 'GET', '/health', { origin: 'https://other.example' })).status, 403);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** One request with exactly these headers (fetch would not let a test set Host). */
function raw(port: number, method: string, pathName: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathName, headers: { ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: text }));
    });
    req.once('error', reject);
    req.end(body);
  });
}
