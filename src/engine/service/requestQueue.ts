/**
 * Runs requests one at a time (one model, one set of sessions, bounded memory). A user's explicit request
 * goes ahead of every waiting background one (hover prefetch); within a priority, arrival order. A request
 * cancelled while it waits leaves the queue at once and never starts.
 */
import { abortError } from '../../common/errors.js';

export type Priority = 'user' | 'background';

interface Waiting {
  priority: Priority;
  start: () => void;
}

export class RequestQueue {
  private readonly waiting: Waiting[] = [];
  private running = false;

  get queued(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.running;
  }

  run<T>(work: () => Promise<T>, signal?: AbortSignal, priority: Priority = 'user'): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(abortError());
      };
      const entry: Waiting = {
        priority,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.running = true;
          work().then(resolve, reject).finally(() => {
            this.running = false;
            this.startNext();
          });
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // A user request goes before the first waiting background one; anything else to the back.
      const firstBackground = this.waiting.findIndex((w) => w.priority === 'background');
      if (priority === 'user' && firstBackground >= 0) this.waiting.splice(firstBackground, 0, entry);
      else this.waiting.push(entry);
      this.startNext();
    });
  }

  private startNext(): void {
    if (this.running) return;
    this.waiting.shift()?.start();
  }
}
