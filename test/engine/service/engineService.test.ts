/**
 * The engine service's life cycle as a shared engine uses it: an idle unload waits for the requests in
 * the queue, a stop refuses new requests while those in flight are answered in full, and a cancelled
 * request's decoding stops, not only its answer.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { EngineService, type GenerateCall } from '../../../src/engine/service/engineService.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';

const root = tempDir('engine-service');
let modelDir: string;
let cacheRoot: string;
let call: GenerateCall;

before(async () => {
  ({ checkpointDir: modelDir, cacheRoot } = forgeTiny(root, 'tiny', 3));
  const image = await writeGradientPng(path.join(root, 'image.png'), 64, 48, 1);
  call = { image: { path: image }, task: { task: 'caption', language: 'en' }, maxNewTokens: 300 };
});

const load = (service: EngineService) => service.loadModel({ modelDir, dtype: 'fp32', device: 'cpu' });

test('an idle unload asked for mid-answer waits for it: the answer is whole, then the model is gone', { timeout: 60_000 }, async () => {
  const service = new EngineService({ cacheRoot });
  await load(service);
  const reference = await service.generate(call);
  let unloading: Promise<void> | undefined;
  const answer = await service.generate(call, undefined, { onText: () => (unloading ??= service.unloadWhenIdle()) });
  assert.ok(unloading, 'the unload was asked for while the answer streamed');
  assert.deepEqual(answer.generatedIds, reference.generatedIds);
  await unloading;
  assert.equal(service.loaded, false);
});

test('a stop answers what is in flight in full and refuses what comes after', { timeout: 60_000 }, async () => {
  const service = new EngineService({ cacheRoot });
  await load(service);
  const reference = await service.generate(call);
  let stopped: Promise<void> | undefined;
  const answer = await service.generate(call, undefined, { onText: () => (stopped ??= service.stopIntake()) });
  assert.deepEqual(answer.generatedIds, reference.generatedIds);
  await stopped;
  await assert.rejects(service.generate(call), /the engine is stopping/);
  await assert.rejects(load(service), /the engine is stopping/);
  await service.unload();
});

test('a cancelled request stops decoding: no piece after the step under way, and the queue serves the next request', { timeout: 60_000 }, async () => {
  const service = new EngineService({ cacheRoot });
  await load(service);
  const long = { ...call, maxNewTokens: 300 };
  const reference = await service.generate(long);
  assert.ok(reference.generatedIds.length > 50, `the answer is long enough to cancel mid-way (${reference.generatedIds.length} tokens)`);
  const controller = new AbortController();
  let pieces = 0;
  let piecesAtAbort = 0;
  const cancelled = service.generate(long, controller.signal, {
    onText: () => {
      pieces++;
      if (pieces === 3) {
        piecesAtAbort = pieces;
        controller.abort();
      }
    },
  });
  await assert.rejects(cancelled, { name: 'AbortError' });
  // The next request waits in the queue for the cancelled one's work to end: answered, the pieces are counted.
  const next = await service.generate({ ...call, maxNewTokens: 4 });
  assert.equal(next.generatedIds.length > 0, true);
  assert.ok(pieces - piecesAtAbort <= 1, `${pieces - piecesAtAbort} pieces came after the cancel (at most the step under way may finish)`);
  await service.unload();
});
