/**
 * The engine's JSON-RPC server, spawned as the extension spawns it (`pali serve`), driven with
 * vscode-jsonrpc: load, generate with streamed pieces, cached image features, cancellation, and errors
 * that leave the server alive.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CancellationTokenSource, ResponseError, StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import {
  GenerateRequest, LoadModelRequest, REQUEST_CANCELLED_CODE, StatusRequest, TextPieceNotification, USER_ERROR_CODE, type UserErrorData,
} from '../../../src/protocol.js';
import { forgeCheckpoint } from '../../../src/engine/forge/forge.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { hostileImages } from '../../helpers/hostileImages.js';
import { PALI_CLI as CLI } from '../../helpers/pali.js';

describe('pali serve', () => {
  const root = tempDir('server');
  let child: ChildProcess;
  let connection: MessageConnection;
  let image: string;
  let checkpointDir: string;
  const pieces = new Map<string, string[]>();

  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 5);
    checkpointDir = tiny.checkpointDir;
    image = await writeGradientPng(path.join(root, 'image.png'), 80, 64);
    child = spawn(process.execPath, [CLI, 'serve', '--stdio'], { env: { ...process.env, PALI_CACHE_DIR: tiny.cacheRoot }, stdio: ['pipe', 'pipe', 'inherit'] });
    connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    connection.onNotification(TextPieceNotification, ({ streamId, piece }) => {
      pieces.set(streamId, [...(pieces.get(streamId) ?? []), piece]);
    });
    connection.listen();
    const info = await connection.sendRequest(LoadModelRequest, { modelDir: tiny.checkpointDir, dtype: 'fp32', device: 'cpu' });
    assert.equal(info.device, 'cpu');
    assert.equal(info.generation, 1);
  });

  after(() => {
    connection?.dispose();
    child?.kill();
  });

  test('a caption streams its text in pieces that add up to the result', async () => {
    const result = await connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 10, streamId: 's1' });
    assert.ok(result.text.length > 0);
    assert.equal(pieces.get('s1')!.join(''), result.text);
    assert.equal(result.cachedImage, false);
    assert.equal(result.imageWidth, 80);
  });

  test('a second question about the same pasted image reuses its features', async () => {
    const base64 = fs.readFileSync(image).toString('base64');
    const first = await connection.sendRequest(GenerateRequest, { image: { base64, name: 'pasted.png' }, task: { task: 'answer', text: 'what is it?' }, maxNewTokens: 4 });
    const second = await connection.sendRequest(GenerateRequest, { image: { base64, name: 'pasted.png' }, task: { task: 'answer', text: 'what colour?' }, maxNewTokens: 4 });
    assert.equal(second.cachedImage, true);
    assert.equal(first.imageHeight, second.imageHeight);
  });

  test('detect returns boxes scaled to the image', async () => {
    // A model forged to answer two objects; their boxes in the 80x64 image's pixels, computed by hand from the
    // <loc> bins (y_min, x_min, y_max, x_max of 1024).
    const detector = path.join(root, 'detector');
    forgeCheckpoint({ preset: 'tiny', seed: 5, outDir: detector, answer: '<loc0100><loc0200><loc0300><loc0400> cat ; <loc0000><loc0512><loc1023><loc0999> dog' });
    await connection.sendRequest(LoadModelRequest, { modelDir: detector, dtype: 'fp32', device: 'cpu' });
    try {
      const result = await connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'detect', text: 'cat ; dog' }, maxNewTokens: 32 });
      assert.deepEqual(result.boxes, [
        { label: 'cat', yMin: 6.25, xMin: 15.625, yMax: 18.75, xMax: 31.25 },
        { label: 'dog', yMin: 0, xMin: 40, yMax: 63.9375, xMax: 78.046875 },
      ]);
    } finally {
      await connection.sendRequest(LoadModelRequest, { modelDir: checkpointDir, dtype: 'fp32', device: 'cpu' });
    }
  });

  test('a cancelled request stops between decode steps and the next one succeeds', async () => {
    const source = new CancellationTokenSource();
    const streamId = 'long';
    connection.onNotification(TextPieceNotification, ({ streamId: id }) => {
      if (id === streamId) source.cancel();
    });
    const long = connection.sendRequest(GenerateRequest, { image: { path: image }, task: { prompt: 'describe en' }, maxNewTokens: 5000, streamId }, source.token);
    await assert.rejects(long, (error) => error instanceof ResponseError && error.code === REQUEST_CANCELLED_CODE);
    const after = await connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'ocr' }, maxNewTokens: 3 });
    assert.ok(after.generatedIds.length > 0);
    const status = await connection.sendRequest(StatusRequest);
    assert.equal(status.state, 'idle');
  });

  test('a broken image is a user error and the server stays up', async () => {
    await assert.rejects(
      connection.sendRequest(GenerateRequest, { image: { base64: Buffer.from('nope').toString('base64'), name: 'clipboard.png' }, task: { task: 'ocr' } }),
      (error) => error instanceof ResponseError && error.code === USER_ERROR_CODE && /clipboard\.png/.test(error.message),
    );
    const status = await connection.sendRequest(StatusRequest);
    assert.equal(status.pid, child.pid);
  });

  test('maxImagePixels refuses a larger image, even one whose features are cached', async () => {
    const request = (maxImagePixels?: number) =>
      connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 2, maxImagePixels });
    assert.equal((await request()).imageWidth, 80); // cached now
    await assert.rejects(
      request(80 * 64 - 1),
      (error) => error instanceof ResponseError && error.code === USER_ERROR_CODE && /image\.png is too large \(over 5119 pixels\)/.test(error.message),
    );
    assert.equal((await request(80 * 64)).imageWidth, 80);
  });

  test('hostile images: each pasted one gets a result or one clear error line, and the server stays up', async () => {
    const { inputs } = await hostileImages(root);
    // Every kind of input in the corpus, a few of each.
    const sample = inputs.filter((input, i) => !/^(flipped|truncated)-/.test(input.name) || i % 9 === 0);
    let errors = 0;
    for (const input of sample) {
      const request = connection.sendRequest(GenerateRequest, { image: { base64: Buffer.from(input.bytes).toString('base64'), name: input.name }, task: { task: 'caption', language: 'en' }, maxNewTokens: 1 });
      let answered: Awaited<typeof request> | undefined;
      try {
        answered = await request;
      } catch (error) {
        assert.ok(error instanceof ResponseError && error.code === USER_ERROR_CODE, `${input.name}: ${String(error)}`);
        assert.ok(!error.message.includes('\n') && error.message.includes(input.name), `${input.name}: ${error.message}`);
        // A valid CMYK, 16-bit, alpha, animated or misnamed image must be answered, as hostileInputs.test.ts checks for the decoder.
        assert.notEqual(input.expect, 'image', `${input.name} is an image the engine must take, and it was refused: ${error.message}`);
        errors++;
        continue;
      }
      assert.ok(answered.imageWidth >= 1, input.name);
      assert.notEqual(input.expect, 'error', `${input.name} should be refused`);
    }
    assert.ok(errors > 10 && errors < sample.length, `${errors} errors of ${sample.length}`);
    assert.equal((await connection.sendRequest(StatusRequest)).pid, child.pid);
  });

  test('100 requests at once: all answered, user requests ahead of prefetch, arrival order within each', async () => {
    const images = await Promise.all([0, 1, 2, 3].map(async (phase) => fs.readFileSync(await writeGradientPng(path.join(root, `load-${phase}.png`), 40 + phase, 30, phase)).toString('base64')));
    const finished: { index: number; priority: 'user' | 'background' }[] = [];
    const requests = Array.from({ length: 100 }, (_, index) => {
      const priority = index % 3 === 2 ? 'background' as const : 'user' as const;
      const task = priority === 'background' ? { task: 'caption' as const, language: 'en' } : index % 3 === 0 ? { task: 'caption' as const, language: 'en' } : { task: 'ocr' as const };
      return connection.sendRequest(GenerateRequest, { image: { base64: images[index % 4]!, name: `load-${index}.png` }, task, maxNewTokens: 2, priority })
        .then((result) => {
          finished.push({ index, priority });
          return result;
        });
    });
    const results = await Promise.all(requests);
    assert.equal(results.length, 100);
    assert.ok(results.every((r) => r.generatedIds.length >= 1));
    // The first request may start before the others arrive; after it, no prefetch finishes before a user request.
    const rest = finished.filter((f) => f.index !== finished[0]!.index);
    const lastUser = rest.map((f) => f.priority).lastIndexOf('user');
    const firstBackground = rest.map((f) => f.priority).indexOf('background');
    assert.ok(lastUser < firstBackground, `a prefetch finished at ${firstBackground}, a user request at ${lastUser}`);
    for (const priority of ['user', 'background']) {
      const order = rest.filter((f) => f.priority === priority).map((f) => f.index);
      assert.deepEqual(order, [...order].sort((a, b) => a - b), `${priority} requests in arrival order`);
    }
  });

  test('over its memory limit the engine unloads the model and says so; without the limit it serves again', async () => {
    const request = (memoryLimitMB?: number) =>
      connection.sendRequest(GenerateRequest, { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 2, memoryLimitMB });
    // The tiny model's engine uses far more than 20 MB (Node alone does).
    await assert.rejects(
      request(20),
      (error) => error instanceof ResponseError && error.code === USER_ERROR_CODE && /the engine used \d+ MB on this request, over its limit of 20 MB \(paligemma\.engineMemoryLimitGB\): the model was unloaded/.test(error.message) &&
        // What tells the client to count the model as gone (its status bar says unloaded; its next request loads it).
        (error.data as UserErrorData | undefined)?.modelUnloaded === true,
    );
    assert.equal((await connection.sendRequest(StatusRequest)).model, null);
    await assert.rejects(
      connection.sendRequest(LoadModelRequest, { modelDir: checkpointDir, dtype: 'fp32', device: 'cpu', memoryLimitMB: 20 }),
      /over its limit of 20 MB/,
    );
    await connection.sendRequest(LoadModelRequest, { modelDir: checkpointDir, dtype: 'fp32', device: 'cpu', memoryLimitMB: 64 * 1024 });
    assert.ok((await request(64 * 1024)).text.length > 0);
  });
});
