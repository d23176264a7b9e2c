/**
 * The process's C heap. It lives in this package because this is the repository's one native
 * addon; nothing here concerns namespaces.
 */
import { native } from './native.ts';

/**
 * Gives the C heap's free pages back to the kernel (glibc's `malloc_trim(0)`, which also releases
 * free pages between live allocations, not only at the heap's top). After a burst of connections
 * the allocator otherwise keeps the freed memory resident. Returns whether anything was released;
 * always `false` on a C library without `malloc_trim` (musl). Costs a walk of the heap: call it
 * when the process is quiet, not per request.
 */
export function trimNativeHeap(): boolean {
  return native.trimNativeHeap();
}
