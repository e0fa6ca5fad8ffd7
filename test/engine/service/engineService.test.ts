/**
 * The engine service's life cycle as a shared engine uses it: an idle unload waits for the requests in
 * the queue, and a stop refuses new requests while those in flight are answered in full.
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
