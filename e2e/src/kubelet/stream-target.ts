// Resolves a streaming request (exec, attach, run, portForward) to what the streaming server
// needs: the container's main process and log file, or the pod's network namespace.
import type { PodWorker } from './pod-worker.ts';
import type { ParsedStreamPath, StreamTarget } from './stream-proxy.ts';

/** The target, or the message a kubelet gives when there is none. */
export function streamTargetOf(
  worker: PodWorker | undefined,
  request: ParsedStreamPath,
): StreamTarget | string {
  const { namespace, pod, container, verb } = request;
  if (worker === undefined) return `pod ${namespace}/${pod} is not running on this node`;
  if (verb === 'portForward') {
    const netnsPath = worker.sandboxNetnsPath;
    return netnsPath === undefined ? `pod ${namespace}/${pod} has no network namespace yet` : { netnsPath };
  }
  const c = worker.findContainer(container);
  if (c === undefined) return `container ${container ?? ''} is not valid for pod ${namespace}/${pod}`;
  const pid = c.pid;
  if (pid === undefined) return `container ${c.name} in pod ${namespace}/${pod} is not running`;
  return { pid, logFile: c.logFile() };
}
