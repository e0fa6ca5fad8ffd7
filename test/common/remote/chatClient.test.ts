/**
 * The remote backend's client (common/remote/chatClient.ts) against a real `pali serve` on 127.0.0.1 with
 * the tiny model: the model list, answers equal to the engine's own, streamed pieces, usage, the API key,
 * cancellation, and errors a user can act on. And the image payload: data: URL, size, EXIF rotation.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { apiRoot, chatCompletion, listModels, RemoteError } from '../../../src/common/remote/chatClient.js';
import { imagePayload } from '../../../src/common/remote/imagePayload.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { startPaliServe, type RunningServer } from '../../helpers/paliServe.js';
import { pali } from '../../helpers/pali.js';

const KEY = 'remote-key';

describe('the remote backend\'s chat client against pali serve', () => {
  const root = tempDir('remote-client');
  let server: RunningServer;
  let image: string;
  let expected: { text: string; generated_ids: number[]; prompt_ids: number[] };
  let endpoint: { url: string; apiKey: string };

  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 8);
    image = await writeGradientPng(path.join(root, 'image.png'), 60, 40);
    server = await startPaliServe(tiny.checkpointDir, tiny.cacheRoot, ['--api-key', KEY]);
    // The server's URL without /v1, as a user types it in the setting.
    endpoint = { url: server.baseURL.replace(/\/v1$/, '/'), apiKey: KEY };
    const run = pali(['generate', '--model', tiny.checkpointDir, '--image', image, '--prompt', 'detect cat', '--max-new-tokens', '8', '--dtype', 'fp32', '--device', 'cpu', '--json'], { PALI_CACHE_DIR: tiny.cacheRoot });
    expected = JSON.parse(run.stdout);
  });
  after(() => server?.child.kill('SIGKILL'));

  const ask = (extra: Partial<Parameters<typeof chatCompletion>[1]> = {}) => chatCompletion(endpoint, {
    model: 'tiny',
    imageDataUrl: imagePayload(fs.readFileSync(image), 'image.png').dataUrl,
    prompt: 'detect cat',
    maxTokens: 8,
    ...extra,
  });

  test('the API root is the same with or without /v1 and a trailing slash', () => {
    assert.equal(apiRoot('http://gpu:8000'), 'http://gpu:8000/v1');
    assert.equal(apiRoot('http://gpu:8000/v1/'), 'http://gpu:8000/v1');
    assert.throws(() => apiRoot('gpu-box'), /is not a URL/);
    assert.throws(() => apiRoot('ftp://gpu'), /not an http\(s\) URL/);
  });

  test('lists the served model', async () => {
    assert.deepEqual(await listModels(endpoint), ['tiny']);
  });

  test('answers as the engine does, whole or streamed piece by piece, with the token counts', async () => {
    const whole = await ask();
    assert.equal(whole.text, expected.text);
    assert.equal(whole.completionTokens, expected.generated_ids.length);
    assert.equal(whole.promptTokens, expected.prompt_ids.length);
    const pieces: string[] = [];
    const streamed = await ask({ onPiece: (piece) => pieces.push(piece) });
    assert.equal(streamed.text, expected.text);
    assert.equal(pieces.join(''), expected.text);
    assert.ok(pieces.length > 1, 'more than one piece');
    assert.equal(streamed.completionTokens, expected.generated_ids.length, 'usage from stream_options.include_usage');
    assert.ok(streamed.firstTokenMs <= streamed.totalMs);
    assert.equal(streamed.finishReason, whole.finishReason);
  });

  test('a wrong key is refused with its status; an unreachable server says so', async () => {
    await assert.rejects(chatCompletion({ ...endpoint, apiKey: 'wrong' }, { model: 'tiny', imageDataUrl: 'data:image/png;base64,AA==', prompt: 'ocr', maxTokens: 2 }),
      (error) => error instanceof RemoteError && error.status === 401 && error.message === `${apiRoot(endpoint.url)} refused the API key (401)`);
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(listModels({ url: `http://127.0.0.1:${port}` }), new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/v1: ECONNREFUSED`));
  });

  test('a bad image is the server\'s 400 with its message', async () => {
    await assert.rejects(ask({ imageDataUrl: 'data:image/png;base64,bm90IGFuIGltYWdl' }), (error) => error instanceof RemoteError && error.status === 400);
  });

  test('cancelling aborts the request, and the server stops decoding it', { timeout: 60_000 }, async () => {
    const controller = new AbortController();
    const before = server.stderr.join('').split('\n').length;
    // 4,000 tokens would take about 10 s: cancelled at the first piece, the server's log says it stopped.
    const answer = ask({ maxTokens: 4000, signal: controller.signal, onPiece: () => controller.abort() });
    await assert.rejects(answer, (error: Error) => error.name === 'AbortError');
    const ended = () => server.stderr.join('').split('\n').slice(before - 1).find((line) => /^pali: chatcmpl-\S+: /.test(line));
    for (const started = Date.now(); !ended() && Date.now() - started < 30_000; ) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(ended() ?? 'no line for the request', /: the client went away after \d+ streamed pieces; its decoding stopped$/);
  });
});

describe('the image payload', () => {
  test('a data: URL of the bytes with the right type, and the size as the engine sees it', async () => {
    const png = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#08f' } }).png().toBuffer();
    const payload = imagePayload(png, 'a.png');
    assert.equal(payload.dataUrl, `data:image/png;base64,${png.toString('base64')}`);
    assert.deepEqual([payload.width, payload.height], [30, 20]);
    // EXIF orientation 6 (rotated 90 degrees): the engine sees it upright, 20 wide and 30 high.
    const rotated = await sharp({ create: { width: 30, height: 20, channels: 3, background: '#08f' } }).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const upright = imagePayload(rotated, 'b.jpg');
    assert.match(upright.dataUrl, /^data:image\/jpeg;base64,/);
    assert.deepEqual([upright.width, upright.height], [20, 30]);
    const svg = imagePayload(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="12" height="7"/>'), 'c.svg');
    assert.match(svg.dataUrl, /^data:image\/svg\+xml;base64,/);
    assert.throws(() => imagePayload(Buffer.from('hello'), 'notes.txt'), /notes\.txt is not an image/);
  });
});
