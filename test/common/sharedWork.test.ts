/** Shared work: one run per key, cancelled only when every waiter has cancelled. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedWork } from '../../src/common/sharedWork.js';

/** Work that finishes when told to, and records whether its own signal was aborted. */
function controllable() {
  const state = { starts: 0, aborted: false, finish: (_value: string) => {} };
  const start = (signal: AbortSignal) => {
    state.starts++;
    signal.addEventListener('abort', () => (state.aborted = true));
    return new Promise<string>((resolve, reject) => {
      state.finish = resolve;
      signal.addEventListener('abort', () => reject(new Error('work aborted')));
    });
  };
  return { state, start };
}

test('the first caller cancelling does not cancel the work for the others', async () => {
  const shared = new SharedWork<string>();
  const { state, start } = controllable();
  const prefetch = new AbortController();
  const first = shared.run('image', prefetch.signal, start);
  const second = shared.run('image', new AbortController().signal, start);
  await Promise.resolve();
  assert.equal(state.starts, 1, 'one run for both callers');
  prefetch.abort(new Error('scrolled away'));
  await assert.rejects(first, /scrolled away/);
  assert.equal(state.aborted, false);
  state.finish('a cat');
  assert.equal(await second, 'a cat');
  assert.equal(shared.isRunning('image'), false);
});

test('the work is aborted when every waiter has cancelled, and the next caller starts afresh', async () => {
  const shared = new SharedWork<string>();
  const { state, start } = controllable();
  const a = new AbortController();
  const b = new AbortController();
  const first = shared.run('image', a.signal, start);
  const second = shared.run('image', b.signal, start);
  await Promise.resolve();
  a.abort();
  assert.equal(state.aborted, false);
  b.abort();
  assert.equal(state.aborted, true);
  await assert.rejects(first);
  await assert.rejects(second);
  assert.equal(shared.isRunning('image'), false);
  const third = shared.run('image', undefined, start);
  await Promise.resolve();
  assert.equal(state.starts, 2);
  state.finish('a dog');
  assert.equal(await third, 'a dog');
});

test('a failure reaches every waiter; an already cancelled caller starts nothing', async () => {
  const shared = new SharedWork<string>();
  const failing = () => Promise.reject(new Error('bad image'));
  await Promise.all([assert.rejects(shared.run('x', undefined, failing), /bad image/), assert.rejects(shared.run('x', undefined, failing), /bad image/)]);
  let started = false;
  await assert.rejects(shared.run('y', AbortSignal.abort(), async () => ((started = true), 'never')));
  assert.equal(started, false);
});
