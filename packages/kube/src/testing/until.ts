/** Polls `check` until it answers something truthy (no fixed sleeps); rejects after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>(resolve => setTimeout(resolve, 2));
  }
}
