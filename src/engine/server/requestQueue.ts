/**
 * Runs requests one at a time (one model, one set of sessions, bounded memory), in arrival order. A request
 * cancelled while it waits never starts.
 */
import { abortError } from '../generate/generate.js';

export class RequestQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private running = false;

  get queued(): number {
    return this.waiting;
  }

  get busy(): boolean {
    return this.running;
  }

  run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.waiting++;
    const result = this.tail.then(async () => {
      this.waiting--;
      if (signal?.aborted) throw abortError();
      this.running = true;
      try {
        return await work();
      } finally {
        this.running = false;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
