/** A JSON-friendly rendering of WDS resources (IP bytes as text), for debug views and golden files. */
import { bytesToIp } from './ip.ts';

export function renderForDebug(value: unknown): unknown {
  if (value instanceof Uint8Array)
    return value.length === 4 || value.length === 16
      ? bytesToIp(value)
      : Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(renderForDebug);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = renderForDebug(v);
    }
    return out;
  }
  return value;
}
