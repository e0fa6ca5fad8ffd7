/**
 * The tokenizer's own thread (tokenizerThread.ts starts it): it loads the checkpoint's tokenizer.json while
 * the main thread creates the ONNX Runtime sessions, which block that thread, then answers calls.
 * Each answer is posted on the call port, and then `signal` is raised for the caller waiting on it.
 */
import { workerData, parentPort, type MessagePort } from 'node:worker_threads';
import { loadTokenizer, type PaliTokenizer } from './tokenizer.js';
import { describeError } from '../../common/errors.js';

export type TokenizerCall = { op: 'encode'; text: string } | { op: 'decode'; ids: number[] } | { op: 'tokenToId'; token: string };
export type TokenizerAnswer = { value: unknown } | { error: string };
export type TokenizerReady = { bosToken: string } | { error: string };

const { dir, calls, signal } = workerData as { dir: string; calls: MessagePort; signal: SharedArrayBuffer };
const flag = new Int32Array(signal);

function answer(tokenizer: PaliTokenizer, call: TokenizerCall): unknown {
  switch (call.op) {
    case 'encode': return tokenizer.encode(call.text);
    case 'decode': return tokenizer.decode(call.ids);
    case 'tokenToId': return tokenizer.tokenToId(call.token);
  }
}

loadTokenizer(dir).then(
  (tokenizer) => {
    calls.on('message', (call: TokenizerCall) => {
      let reply: TokenizerAnswer;
      try {
        reply = { value: answer(tokenizer, call) };
      } catch (error) {
        reply = { error: describeError(error) };
      }
      calls.postMessage(reply);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
    parentPort!.postMessage({ bosToken: tokenizer.bosToken } satisfies TokenizerReady);
  },
  (error: unknown) => parentPort!.postMessage({ error: describeError(error) } satisfies TokenizerReady),
);
