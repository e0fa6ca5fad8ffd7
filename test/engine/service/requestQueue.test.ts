/** The engine's request queue: one at a time, user requests before background ones, FIFO within each. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestQueue, type Priority } from '../../../src/engine/service/requestQueue.js';

/** Work that records when it starts and finishes when released. */
function gate() {
  let release = () => {};
  const done = new Promise<void>((resolve) => (release = resolve));
  return { done, release: () => release() };
}

test('user requests go ahead of waiting background ones; arrival order within each', async () => {
  const queue = new RequestQueue();
  const order: string[] = [];
  const first = gate();
  const running = queue.run(async () => {
    order.push('first');
    await first.done;
  });
  const submit = (name: string, priority: Priority) => queue.run(async () => void order.push(name), undefined, priority);
  const all = [submit('prefetch-1', 'background'), submit('prefetch-2', 'background'), submit('caption', 'user'), submit('prefetch-3', 'background'), submit('ocr', 'user')];
  assert.equal(queue.queued, 5);
  assert.equal(queue.busy, true);
  first.release();
  await Promise.all([running, ...all]);
  assert.deepEqual(order, ['first', 'caption', 'ocr', 'prefetch-1', 'prefetch-2', 'prefetch-3']);
  assert.equal(queue.busy, false);
});

test('a request cancelled while waiting leaves at once and never starts; the rest run', async () => {
  const queue = new RequestQueue();
  const first = gate();
  const started: string[] = [];
  const running = queue.run(() => first.done);
  const controller = new AbortController();
  const cancelled = queue.run(async () => void started.push('cancelled'), controller.signal);
  const later = queue.run(async () => void started.push('later'));
  controller.abort();
  await assert.rejects(cancelled, { name: 'AbortError' });
  assert.equal(queue.queued, 1);
  first.release();
  await Promise.all([running, later]);
  assert.deepEqual(started, ['later']);
  await assert.rejects(queue.run(async () => 1, AbortSignal.abort()), { name: 'AbortError' });
});

test('a failing request does not stop the queue', async () => {
  const queue = new RequestQueue();
  const failing = queue.run(async () => {
    throw new Error('bad image');
  });
  const next = queue.run(async () => 'ok');
  await assert.rejects(failing, /bad image/);
  assert.equal(await next, 'ok');
});
