#!/usr/bin/env node
// The chained CNI plugin executable: the container runtime runs it with CNI_* variables (read by
// `loadPluginEnvironment` in config.ts) and the network configuration on stdin; it prints a result
// or a CNI error object on stdout.
import { request } from 'node:http';
import { loadPluginEnvironment } from '../config.ts';
import { runPlugin } from './cni-plugin.ts';
import type { AgentReply } from './cni-plugin.ts';

const AGENT_TIMEOUT_MS = 60_000;

function post(socketPath: string, path: string, body: string): Promise<AgentReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: AGENT_TIMEOUT_MS,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => {
      req.destroy(new Error(`no answer within ${AGENT_TIMEOUT_MS} ms`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const output = await runPlugin({ env: loadPluginEnvironment(), stdin: await readStdin(), post });
if (output.stderr !== '') process.stderr.write(output.stderr);
process.stdout.write(output.stdout, () => {
  process.exitCode = output.exitCode;
});
