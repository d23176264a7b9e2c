/** The metrics endpoint on 15020: `/metrics` and `/stats/prometheus`. */
import type { Handler } from './http-server.ts';
import { reply } from './http-server.ts';
import type { ZtunnelMetrics } from './metrics.ts';

export function statsHandler(metrics: ZtunnelMetrics): Handler {
  return async (req, res, url) => {
    if (url.pathname !== '/metrics' && url.pathname !== '/stats/prometheus') {
      reply(res, 404, 'not found\n');
      return;
    }
    if (req.method !== 'GET') {
      reply(res, 405, 'method not allowed\n');
      return;
    }
    reply(res, 200, await metrics.render(), metrics.contentType);
  };
}
