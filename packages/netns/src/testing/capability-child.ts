/**
 * Child process for the capability test: tries SO_MARK and IP_TRANSPARENT on a fresh socket and
 * prints one JSON line per attempt with the error class, code and capability.
 */
import { MissingCapabilityError } from '../errors.ts';
import { closeFd } from '../netns-handle.ts';
import { createTcpListener } from '../netns-sockets.ts';

const attempts = [
  { name: 'mark', options: { mark: 0x539 } },
  { name: 'transparent', options: { transparent: true } },
];
for (const { name, options } of attempts) {
  try {
    closeFd(createTcpListener(null, { host: '127.0.0.1', port: 0, ...options }));
    process.stdout.write(`${JSON.stringify({ name, ok: true })}\n`);
  } catch (err) {
    const e = err as MissingCapabilityError;
    process.stdout.write(
      `${JSON.stringify({ name, ok: false, type: e.name, code: e.code, capability: e instanceof MissingCapabilityError ? e.capability : null, message: e.message })}\n`,
    );
  }
}
