// The load client (image ambient-mesh/load-client): sends HTTP GETs to URL and prints one JSON
// summary line per run. Args: <url> [--count N] [--concurrency C] [--interval-ms MS] [--forever]
// Exit code 0 when every request got a 2xx answer.
import http from 'node:http';

interface Summary {
  url: string;
  ok: number;
  failed: number;
  lastBody?: string;
  lastError?: string;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const url = process.argv[2];
if (url === undefined || url.startsWith('--')) {
  console.error('usage: load-client <url> [--count N] [--concurrency C] [--interval-ms MS] [--forever]');
  process.exit(2);
}
const count = arg('--count', 1);
const concurrency = Math.max(1, arg('--concurrency', 1));
const intervalMs = arg('--interval-ms', 0);
const forever = process.argv.includes('--forever');

function once(): Promise<{ ok: boolean; body?: string; error?: string }> {
  return new Promise(resolve => {
    const req = http.get(url!, { timeout: 5_000 }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        resolve({ ok: code >= 200 && code < 300, body: body.trim() });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', e => {
      resolve({ ok: false, error: e.message });
    });
  });
}

async function run(): Promise<Summary> {
  const s: Summary = { url: url!, ok: 0, failed: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const r = await once();
      if (r.ok) s.ok++;
      else s.failed++;
      if (r.body !== undefined) s.lastBody = r.body;
      if (r.error !== undefined) s.lastError = r.error;
      if (intervalMs > 0) await new Promise(res => setTimeout(res, intervalMs));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return s;
}

let stop = false;
const stopRequested = (): boolean => stop;
process.on('SIGTERM', () => (stop = true));
for (;;) {
  const s = await run();
  console.log(JSON.stringify(s));
  if (!forever || stopRequested()) {
    process.exitCode = s.failed === 0 ? 0 : 1;
    break;
  }
}
