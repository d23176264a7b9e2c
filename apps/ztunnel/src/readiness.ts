/**
 * Readiness (§6.1): named tasks that must all be ready. `/healthz/ready` on 15021 answers 200
 * `ready` when they are, 500 listing the pending ones otherwise, and 405 for anything but GET.
 * A task may become unready again (ZDS disconnect).
 */
import type { Handler } from './http-server.ts';
import { reply } from './http-server.ts';

export class Readiness {
  readonly #tasks = new Map<string, boolean>();

  /** Adds a task, not ready until `set(name, true)`. */
  register(name: string): void {
    if (!this.#tasks.has(name)) this.#tasks.set(name, false);
  }

  set(name: string, ready: boolean): void {
    this.#tasks.set(name, ready);
  }

  get ready(): boolean {
    for (const ready of this.#tasks.values()) if (!ready) return false;
    return true;
  }

  pending(): string[] {
    return [...this.#tasks]
      .filter(([, ready]) => !ready)
      .map(([name]) => name)
      .sort();
  }

  handler(): Handler {
    return (req, res, url) => {
      if (url.pathname !== '/healthz/ready') {
        reply(res, 404, 'not found\n');
        return;
      }
      if (req.method !== 'GET') {
        reply(res, 405, 'method not allowed\n');
        return;
      }
      if (this.ready) reply(res, 200, 'ready\n');
      else reply(res, 500, `not ready, pending: ${this.pending().join(', ')}\n`);
    };
  }
}
