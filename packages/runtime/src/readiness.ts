/**
 * Readiness: named tasks that must all be ready. A task may become unready again (a lost
 * connection). `readinessRoute` serves it on the ops server.
 */

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

  /** The tasks not ready yet, sorted. */
  pending(): string[] {
    return [...this.#tasks]
      .filter(([, ready]) => !ready)
      .map(([name]) => name)
      .sort();
  }
}
