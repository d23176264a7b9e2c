/**
 * An informer factory for tests: each kind lists a fixed set of objects (by collection path)
 * and its watch stays open, silent, until stopped. Built on `@ambient-mesh/kube`'s `Informer`, so
 * the watcher under test sees the real add/sync behaviour.
 */
import { Informer } from '@ambient-mesh/kube';
import type { InformerFactory } from './informers.ts';
import type { KubeObject } from './objects.ts';

export function staticInformerFactory(objects: Readonly<Record<string, readonly object[]>>): InformerFactory {
  return (k, onError) =>
    new Informer<KubeObject>({
      name: k.kind,
      source: {
        list: () =>
          Promise.resolve({
            items: [...(objects[k.path] ?? [])] as KubeObject[],
            metadata: { resourceVersion: '1' },
          }),
        watch: (_rv, signal) =>
          new Promise<void>(resolve => {
            signal.addEventListener('abort', () => {
              resolve();
            });
          }),
      },
      onError,
    });
}
