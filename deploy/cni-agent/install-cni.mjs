#!/usr/bin/env node
// Entry point of the cni-agent image (as upstream's install-cni): installs the chained CNI plugin
// on the node and runs the node agent. The plugin stays chained when the agent stops for a
// restart or an upgrade, or crashes: pods created meanwhile fail their CNI ADD and are retried
// by the kubelet until the next agent enrols them (fail closed, as upstream since
// istio/istio#54180). It is removed only when the agent says the DaemonSet is going away: the
// agent writes `<run dir>/cni-agent-shutdown.json` (`{"uninstall": true|false, "reason": ...}`,
// apps/cni-agent/src/shutdown.ts) when it is told to stop, before it closes its servers.
//
// Node paths arrive through hostPath mounts. Environment (defaults in brackets):
//   CNI_NET_DIR [/host/etc/cni/net.d]   conflists to chain into (every *.conflist)
//   CNI_BIN_DIR [/host/opt/cni/bin]     where the plugin launcher is written
//   CNI_AGENT_RUN_DIR [/var/run/istio-cni]  the node path of the agent's run dir (plugin socket)
//   CNI_EXCLUDE_NAMESPACES [kube-system]
//   POD_NAMESPACE [istio-system]        the mesh namespace; the plugin never captures its ztunnel pods
//   AMBIENT_CNI_PLUGIN_COMMAND  the plugin's command line (the image's ENV)
//   AMBIENT_CNI_AGENT_COMMAND   the agent's command line (the image's ENV); our args are appended
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PLUGIN_TYPE = 'ambient-istio-cni';
const env = process.env;
const netDir = env.CNI_NET_DIR || '/host/etc/cni/net.d';
const binDir = env.CNI_BIN_DIR || '/host/opt/cni/bin';
const runDir = env.CNI_AGENT_RUN_DIR || '/var/run/istio-cni';
const exclude = (env.CNI_EXCLUDE_NAMESPACES ?? 'kube-system').split(',').filter(s => s !== '');
const meshNamespace = env.POD_NAMESPACE || 'istio-system';
const log = msg => process.stderr.write(`install-cni: ${msg}\n`);
const verdictFile = join(runDir, 'cni-agent-shutdown.json');

function required(name) {
  const v = env[name]?.trim();
  if (!v) {
    log(`${name} is not set (the image sets it; check the image's ENV)`);
    process.exit(2);
  }
  return v;
}

function writeAtomic(path, text, mode) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function conflists() {
  if (!existsSync(netDir)) return [];
  return readdirSync(netDir)
    .filter(f => f.endsWith('.conflist'))
    .map(f => join(netDir, f));
}

/** Rewrites every conflist with our entry removed and, when `add`, appended last. */
function chain(add) {
  for (const file of conflists()) {
    let conf;
    try {
      conf = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      log(`${file}: not JSON, left alone`);
      continue;
    }
    if (!Array.isArray(conf.plugins)) continue;
    const plugins = conf.plugins.filter(p => p?.type !== PLUGIN_TYPE);
    if (add)
      plugins.push({
        type: PLUGIN_TYPE,
        cni_agent_run_dir: runDir,
        exclude_namespaces: exclude,
        pod_namespace: meshNamespace,
      });
    writeAtomic(file, JSON.stringify({ ...conf, plugins }, null, 2) + '\n', 0o644);
    log(`${add ? 'chained into' : 'removed from'} ${file}`);
  }
}

const pluginCommand = required('AMBIENT_CNI_PLUGIN_COMMAND');
const agentCommand = required('AMBIENT_CNI_AGENT_COMMAND').split(/\s+/);
const launcher = join(binDir, PLUGIN_TYPE);
writeAtomic(launcher, `#!/bin/sh\nexec ${pluginCommand} "$@"\n`, 0o755);
log(`plugin launcher ${launcher}`);
chain(true);

// A verdict from an earlier run must never decide this one.
rmSync(verdictFile, { force: true });

/** The agent's verdict, once it has written one. */
function peekVerdict() {
  try {
    const v = JSON.parse(readFileSync(verdictFile, 'utf8'));
    return { uninstall: v?.uninstall === true, reason: String(v?.reason ?? '') };
  } catch {
    return undefined;
  }
}

let removed = false;
/** Unchains the plugin and removes its launcher, once. */
function uninstall(reason) {
  if (removed) return;
  removed = true;
  chain(false);
  rmSync(launcher, { force: true });
  log(`uninstall (${reason}): plugin removed`);
}

const child = spawn(agentCommand[0], [...agentCommand.slice(1), ...process.argv.slice(2)], {
  stdio: 'inherit',
});
// The agent writes its verdict before it closes its servers. Once it has been told to stop, the
// verdict is acted on as soon as it appears, so an uninstall does not depend on the agent exiting
// before the kubelet's SIGKILL at the end of the grace period (which ends this process too).
let watch;
const POLL_MS = 100;
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    child.kill(signal);
    watch ??= setInterval(() => {
      const verdict = peekVerdict();
      if (verdict?.uninstall) uninstall(verdict.reason);
    }, POLL_MS);
  });
}
child.on('exit', (code, signal) => {
  clearInterval(watch);
  // A missing or unreadable verdict keeps the plugin (fail closed).
  const verdict = peekVerdict() ?? {
    uninstall: false,
    reason: 'the agent left no shutdown verdict (crashed or killed)',
  };
  rmSync(verdictFile, { force: true });
  const how = `agent exited (${signal ?? code})`;
  if (verdict.uninstall) {
    log(how);
    uninstall(verdict.reason);
  } else {
    log(
      `${how}; plugin left chained (${verdict.reason}): new pods on this node wait until the next agent is up`,
    );
  }
  process.exit(code ?? 1);
});
child.on('error', e => {
  log(`cannot start the agent: ${e.message}`);
});
