/**
 * Work that several callers wait for, started once per key. It runs under its own AbortSignal, which is
 * aborted only when every caller waiting for it has given up: a prefetch cancelled by a scroll must not
 * cancel the caption that the user asked for a moment later. A caller that gives up stops waiting at once.
 */
export class SharedWork<T> {
  private readonly running = new Map<string, { promise: Promise<T>; controller: AbortController; waiters: number }>();

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /** Joins the work under `key`, or starts it with `start`; `signal` is this caller's own. */
  run(key: string, signal: AbortSignal | undefined, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal?.aborted) return Promise.reject(abandoned(signal));
    let work = this.running.get(key);
    if (!work) {
      const controller = new AbortController();
      const entry = { promise: Promise.resolve().then(() => start(controller.signal)), controller, waiters: 0 };
      const forget = () => {
        if (this.running.get(key) === entry) this.running.delete(key);
      };
      entry.promise.then(forget, forget);
      this.running.set(key, entry);
      work = entry;
    }
    const joined = work;
    joined.waiters++;
    return new Promise<T>((resolve, reject) => {
      let waiting = true;
      const leave = () => {
        waiting = false;
        signal?.removeEventListener('abort', onAbort);
        joined.waiters--;
      };
      const onAbort = () => {
        if (!waiting) return;
        leave();
        if (joined.waiters === 0) {
          // Nobody waits any more: stop the work, and let the next caller start afresh.
          if (this.running.get(key) === joined) this.running.delete(key);
          joined.controller.abort();
        }
        reject(abandoned(signal!));
      };
      signal?.addEventListener('abort', onAbort);
      joined.promise.then(
        (value) => {
          if (!waiting) return;
          leave();
          resolve(value);
        },
        (error: unknown) => {
          if (!waiting) return;
          leave();
          reject(error);
        },
      );
    });
  }
}

function abandoned(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('cancelled');
}
