/**
 * The tokenizer, loaded on a thread of its own while the model's sessions are created. ONNX Runtime
 * creates a session synchronously on the calling thread (3 s for the int8 3B from its prepared copy), and
 * the real Gemma vocabulary takes 1.6 s more to load (parsing 17.5 MB of JSON, then transformers.js's BPE
 * tables): one after the other on one thread, both on two cores at once.
 *
 * The engine calls the tokenizer synchronously (a prompt's ids, each streamed piece of text), so calls
 * stay synchronous: the caller posts the call, waits on a shared flag that the tokenizer's thread raises
 * when it has posted the answer, and takes the answer off the port (`receiveMessageOnPort`). A call is a
 * few tens of microseconds on top of the tokenizer's own work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { UserError } from '../../common/errors.js';
import type { PaliTokenizer } from './tokenizer.js';
import type { TokenizerAnswer, TokenizerCall, TokenizerReady } from './tokenizerWorker.js';

/** Longer than any call takes (decoding a 1,000-token answer is milliseconds): past it the thread is gone. */
const CALL_TIMEOUT_MS = 30_000;

export interface TokenizerThread {
  /** Resolves once the tokenizer has loaded (rejects with the load's error). */
  ready: Promise<PaliTokenizer>;
  stop(): Promise<void>;
}

/**
 * The worker: dist/tokenizerWorker.js beside the bundle, or, under tsx (tests, the bench), the TypeScript
 * source through tsx's require hook (a worker does not inherit the hooks that `--import tsx` installed).
 */
function workerScript(): { code: string; eval: boolean } {
  const built = path.join(__dirname, 'tokenizerWorker.js');
  if (!__filename.endsWith('.ts') && fs.existsSync(built)) return { code: built, eval: false };
  const source = path.join(__dirname, 'tokenizerWorker.ts');
  return { code: `require('tsx/cjs'); require(${JSON.stringify(source)});`, eval: true };
}

export function startTokenizerThread(dir: string): TokenizerThread {
  const { port1: calls, port2: theirCalls } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const flag = new Int32Array(signal);
  const script = workerScript();
  const worker = new Worker(script.code, { eval: script.eval, workerData: { dir, calls: theirCalls, signal }, transferList: [theirCalls] });
  // An idle tokenizer thread must not keep a finished process alive.
  worker.unref();
  calls.unref();
  let stopped = false;
  // Seen between calls (a crash during a call shows as no answer): later calls fail at once.
  let exited = false;
  worker.on('exit', () => (exited = true));

  const call = (message: TokenizerCall): unknown => {
    if (stopped) throw new Error('the tokenizer was released with its model');
    if (exited) throw new Error("the tokenizer's thread has stopped: restart the engine");
    Atomics.store(flag, 0, 0);
    calls.postMessage(message);
    const waited = Atomics.wait(flag, 0, 0, CALL_TIMEOUT_MS);
    const reply = receiveMessageOnPort(calls)?.message as TokenizerAnswer | undefined;
    if (!reply) throw new Error(`the tokenizer's thread did not answer (${waited})`);
    if ('error' in reply) throw new Error(reply.error);
    return reply.value;
  };

  const ready = new Promise<PaliTokenizer>((resolve, reject) => {
    worker.once('message', (loaded: TokenizerReady) => {
      if ('error' in loaded) {
        reject(new UserError(loaded.error));
        return;
      }
      resolve({
        encode: (text) => call({ op: 'encode', text }) as number[],
        decode: (ids) => call({ op: 'decode', ids }) as string,
        tokenToId: (token) => call({ op: 'tokenToId', token }) as number | undefined,
        bosToken: loaded.bosToken,
      });
    });
    worker.once('error', (error) => reject(new Error(`the tokenizer's thread failed: ${error.message}`)));
    worker.once('exit', (code) => reject(new Error(`the tokenizer's thread exited (${code}) before it loaded`)));
  });
  // The caller may never wait for it (the sessions failed first): no unhandled rejection then.
  ready.catch(() => undefined);
  return {
    ready,
    stop: async () => {
      stopped = true;
      calls.close();
      await worker.terminate();
    },
  };
}
