/**
 * Where each pod's network namespace lives, as the CNI plugin reported it (`CNI_NETNS` at ADD).
 * Kept in memory and persisted to `<run dir>/pod-netns.json` (written atomically), so a restarted
 * agent still finds the namespaces of pods it enrolled before.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { errorMessage } from '@ambient-mesh/errors';
import type { Logger } from '@ambient-mesh/runtime';

export interface NetnsLocator {
  /** The netns path of the pod `namespace/name`, or `null` when unknown. */
  find(namespace: string, name: string): string | null;
  remember(namespace: string, name: string, netnsPath: string): void;
  forget(namespace: string, name: string): void;
}

/** An in-memory locator (tests, or when no run dir is writable). */
export class MemoryNetnsLocator implements NetnsLocator {
  protected readonly entries = new Map<string, string>();

  find(namespace: string, name: string): string | null {
    return this.entries.get(`${namespace}/${name}`) ?? null;
  }

  remember(namespace: string, name: string, netnsPath: string): void {
    this.entries.set(`${namespace}/${name}`, netnsPath);
  }

  forget(namespace: string, name: string): void {
    this.entries.delete(`${namespace}/${name}`);
  }
}

/** A locator persisted as JSON `{ "<namespace>/<name>": "<netns path>" }`. */
export class FileNetnsLocator extends MemoryNetnsLocator {
  readonly #file: string;
  readonly #logger: Logger;

  constructor(file: string, logger: Logger) {
    super();
    this.#file = file;
    this.#logger = logger;
    if (!existsSync(file)) return;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not a JSON object');
      for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
        if (typeof value === 'string' && key.includes('/')) this.entries.set(key, value);
      }
    } catch (err) {
      this.#logger.warn({ file, err: errorMessage(err) }, 'ignoring an unreadable netns cache');
    }
  }

  override remember(namespace: string, name: string, netnsPath: string): void {
    super.remember(namespace, name, netnsPath);
    this.#save();
  }

  override forget(namespace: string, name: string): void {
    if (this.find(namespace, name) === null) return;
    super.forget(namespace, name);
    this.#save();
  }

  #save(): void {
    const tmp = `${this.#file}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.entries)));
      renameSync(tmp, this.#file);
    } catch (err) {
      this.#logger.warn({ file: this.#file, err: errorMessage(err) }, 'could not persist the netns cache');
    }
  }
}
