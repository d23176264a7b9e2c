/**
 * The watch protocol: newline-delimited JSON `{type, object}` events. `ERROR` events carry a
 * `Status` (410 Gone when the resourceVersion was compacted) and become `KubeApiError`s.
 */
import { KubeApiError, type KubeStatus } from './errors.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface WatchEvent<T> {
  readonly type: WatchEventType;
  readonly object: T;
}

/**
 * A stateful splitter: feed it chunks, get the complete events in them. Throws a `KubeApiError`
 * for an `ERROR` event.
 */
export function parseWatchLines<T>(operation: string): (chunk: string) => WatchEvent<T>[] {
  let buffered = '';
  return chunk => {
    buffered += chunk;
    const out: WatchEvent<T>[] = [];
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (line === '') continue;
      const ev = JSON.parse(line) as { type: string; object: unknown };
      if (ev.type === 'ERROR') {
        const status = (ev.object ?? {}) as KubeStatus;
        throw new KubeApiError(
          status.code ?? 500,
          status.reason ?? 'Unknown',
          operation,
          status.message ?? 'watch error',
        );
      }
      out.push(ev as WatchEvent<T>);
    }
    return out;
  };
}
