/**
 * Ambient validations, modelled on Kiali's KIA13xx checks, as a pure function of a snapshot:
 *
 * - KIA1311: a workload asks for a sidecar (`sidecar.istio.io/inject=true`) and for ambient;
 * - KIA1312: a workload has waypoint labels but is not in ambient (its waypoint never sees it);
 * - KIA1313: a workload, service or namespace names a waypoint that does not exist;
 * - KIA1317: an AuthorizationPolicy has L7 rules but no waypoint enforces it (ztunnel cannot).
 */
import { Label } from '@ambient-mesh/mesh-api';
import { MeshIndex, isAmbientNamespace, isAmbientPod, workloadOf } from './mesh-view.ts';
import type { Validation, WaypointRef } from './model.ts';
import type { AuthorizationPolicyObject, MeshSnapshot } from './snapshot.ts';

export const ValidationCode = {
  sidecarAndAmbient: 'KIA1311',
  waypointNotAmbient: 'KIA1312',
  missingWaypoint: 'KIA1313',
  l7PolicyWithoutWaypoint: 'KIA1317',
} as const;

/** Operation and source fields, and `when` keys, only a waypoint (L7) can evaluate. */
const L7_OPERATION_FIELDS = ['methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'];
const L7_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals'];

export function l7Attributes(ap: AuthorizationPolicyObject): string[] {
  const found = new Set<string>();
  for (const rule of ap.spec?.rules ?? []) {
    for (const to of rule.to ?? []) {
      for (const f of L7_OPERATION_FIELDS)
        if (to.operation?.[f] !== undefined) found.add(`to.operation.${f}`);
    }
    for (const from of rule.from ?? []) {
      for (const f of L7_SOURCE_FIELDS) if (from.source?.[f] !== undefined) found.add(`from.source.${f}`);
    }
    for (const w of rule.when ?? []) {
      if (w.key?.startsWith('request.') === true) found.add(`when ${w.key}`);
    }
  }
  return [...found].sort();
}

function missing(kind: string, namespace: string, name: string, ref: WaypointRef): Validation {
  return {
    code: ValidationCode.missingWaypoint,
    severity: 'error',
    kind,
    namespace,
    name,
    message: `${Label.useWaypoint}=${ref.name} names a waypoint that does not exist: there is no Gateway ${ref.namespace}/${ref.name} of class istio-waypoint (check the name, or apply the waypoint with "istioctl waypoint apply -n ${ref.namespace} --name ${ref.name}")`,
  };
}

export function validate(snapshot: MeshSnapshot): Validation[] {
  const index = new MeshIndex(snapshot);
  const out: Validation[] = [];
  const seenWorkloads = new Set<string>();

  for (const ns of snapshot.namespaces) {
    const ref = index.waypointLabel(ns.metadata, 'namespace', ns.metadata.name);
    if (ref && !ref.exists) out.push(missing('Namespace', ns.metadata.name, ns.metadata.name, ref));
  }

  for (const pod of snapshot.pods) {
    const nsName = pod.metadata.namespace ?? '';
    const workload = workloadOf(pod);
    const key = `${nsName}/${workload.kind}/${workload.name}`;
    if (seenWorkloads.has(key)) continue;
    seenWorkloads.add(key);
    const labels = pod.metadata.labels ?? {};
    const ambient = isAmbientPod(pod, index.namespace(nsName));
    const askedAmbient =
      labels[Label.dataplaneMode] === 'ambient' || isAmbientNamespace(index.namespace(nsName));
    if (labels[Label.sidecarInject] === 'true' && askedAmbient) {
      out.push({
        code: ValidationCode.sidecarAndAmbient,
        severity: 'error',
        kind: workload.kind,
        namespace: nsName,
        name: workload.name,
        message: `the workload asks for a sidecar (${Label.sidecarInject}=true) and is in ambient: remove one of the two`,
      });
    }
    const ref = index.waypointLabel(pod.metadata, 'workload', nsName);
    if (ref && !ambient) {
      out.push({
        code: ValidationCode.waypointNotAmbient,
        severity: 'warning',
        kind: workload.kind,
        namespace: nsName,
        name: workload.name,
        message: `the workload has ${Label.useWaypoint}=${ref.name} but is not in ambient, so its traffic never reaches the waypoint: label the namespace or the pod ${Label.dataplaneMode}=ambient`,
      });
    }
    if (ref && !ref.exists) out.push(missing(workload.kind, nsName, workload.name, ref));
  }

  for (const svc of snapshot.services) {
    const nsName = svc.metadata.namespace ?? '';
    const ref = index.waypointLabel(svc.metadata, 'service', nsName);
    if (ref && !ref.exists) out.push(missing('Service', nsName, svc.metadata.name, ref));
  }

  for (const ap of snapshot.authorizationPolicies) {
    const l7 = l7Attributes(ap);
    if (l7.length === 0) continue;
    const nsName = ap.metadata.namespace ?? '';
    const refs = [
      ...(ap.spec?.targetRefs ?? []),
      ...(ap.spec?.targetRef === undefined ? [] : [ap.spec.targetRef]),
    ];
    const problem = (detail: string): Validation => ({
      code: ValidationCode.l7PolicyWithoutWaypoint,
      severity: 'warning',
      kind: 'AuthorizationPolicy',
      namespace: nsName,
      name: ap.metadata.name,
      message: `the policy has L7 rules (${l7.join(', ')}) but ${detail}; ztunnel enforces only L4 attributes`,
    });
    if (refs.length === 0) {
      out.push(
        problem(
          'selects workloads instead of targeting a waypoint or a service bound to one (use targetRefs)',
        ),
      );
      continue;
    }
    for (const ref of refs) {
      if (ref.kind === 'Gateway') {
        if (!index.waypointExists(nsName, ref.name))
          out.push(problem(`its target Gateway ${nsName}/${ref.name} is not a waypoint that exists`));
      } else if (ref.kind === 'Service') {
        const svc = snapshot.services.find(
          s => s.metadata.namespace === nsName && s.metadata.name === ref.name,
        );
        const ns = index.namespace(nsName);
        const bound =
          (svc === undefined ? undefined : index.waypointLabel(svc.metadata, 'service', nsName)) ??
          (ns === undefined ? undefined : index.waypointLabel(ns.metadata, 'namespace', nsName));
        if (!bound) out.push(problem(`its target Service ${nsName}/${ref.name} has no waypoint`));
      }
    }
  }
  return out.sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name) || a.code.localeCompare(b.code),
  );
}
