// The browser's only data access: typed GETs of the console API through TanStack Query.
import { useQuery } from '@tanstack/react-query';
import type {
  EdgePoliciesView,
  GraphView,
  IstioConfigView,
  LogsView,
  MetricsView,
  OverviewView,
  ServiceView,
  TrafficFilter,
  TracesView,
  WaypointView,
  WorkloadDetailView,
  WorkloadView,
  ZtunnelConfigView,
  ZtunnelFilter,
  ZtunnelPod,
} from '../model.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, undefined, `the console answered HTTP ${res.status} without JSON`);
  }
  if (!res.ok) {
    const b = body as { code?: string; message?: string };
    throw new ApiError(res.status, b.code, b.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}

const REFRESH_MS = 10_000;

export const useOverview = () =>
  useQuery({
    queryKey: ['overview'],
    queryFn: () => getJson<OverviewView>('/api/overview'),
    refetchInterval: REFRESH_MS,
  });

export const useWorkloads = (namespace: string) =>
  useQuery({
    queryKey: ['workloads', namespace],
    queryFn: () => getJson<WorkloadView[]>(`/api/workloads?namespace=${encodeURIComponent(namespace)}`),
    refetchInterval: REFRESH_MS,
  });

export const useGraph = (namespaces: readonly string[], showWaypoints: boolean, traffic: TrafficFilter) =>
  useQuery({
    queryKey: ['graph', namespaces, showWaypoints, traffic],
    queryFn: () =>
      getJson<GraphView>(
        `/api/graph?namespaces=${encodeURIComponent(namespaces.join(','))}&waypoints=${String(showWaypoints)}&traffic=${traffic}`,
      ),
    enabled: namespaces.length > 0,
    refetchInterval: REFRESH_MS,
  });

export const useIstioConfig = () =>
  useQuery({
    queryKey: ['istio-config'],
    queryFn: () => getJson<IstioConfigView>('/api/istio-config'),
    refetchInterval: REFRESH_MS,
  });

export const useWaypoints = () =>
  useQuery({
    queryKey: ['waypoints'],
    queryFn: () => getJson<WaypointView[]>('/api/waypoints'),
    refetchInterval: REFRESH_MS,
  });

export const useTraces = (namespace: string, workload: string) =>
  useQuery({
    queryKey: ['traces', namespace, workload],
    queryFn: () =>
      getJson<TracesView>(
        `/api/traces?namespace=${encodeURIComponent(namespace)}&workload=${encodeURIComponent(workload)}`,
      ),
    refetchInterval: REFRESH_MS,
  });

export const useLogs = (namespace: string, workload: string, enabled: boolean) =>
  useQuery({
    queryKey: ['logs', namespace, workload],
    queryFn: () =>
      getJson<LogsView>(
        `/api/logs?namespace=${encodeURIComponent(namespace)}&workload=${encodeURIComponent(workload)}`,
      ),
    enabled,
    refetchInterval: REFRESH_MS,
  });

export const useWorkloadDetail = (namespace: string, name: string) =>
  useQuery({
    queryKey: ['workload', namespace, name],
    queryFn: () =>
      getJson<WorkloadDetailView>(
        `/api/workload?namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}`,
      ),
    refetchInterval: REFRESH_MS,
  });

export const useServices = (namespace: string) =>
  useQuery({
    queryKey: ['services', namespace],
    queryFn: () => getJson<ServiceView[]>(`/api/services?namespace=${encodeURIComponent(namespace)}`),
    refetchInterval: REFRESH_MS,
  });

export const useMetrics = (
  kind: 'workload' | 'service' | 'ztunnel',
  namespace: string,
  name: string,
  direction: 'inbound' | 'outbound',
  duration: number,
) =>
  useQuery({
    queryKey: ['metrics', kind, namespace, name, direction, duration],
    queryFn: () =>
      getJson<MetricsView>(
        `/api/metrics?kind=${kind}&namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}&direction=${direction}&duration=${duration}`,
      ),
    refetchInterval: REFRESH_MS,
  });

export const useZtunnels = () =>
  useQuery({
    queryKey: ['ztunnels'],
    queryFn: () => getJson<ZtunnelPod[]>('/api/ztunnels'),
    refetchInterval: REFRESH_MS,
  });

export const useZtunnel = (namespace: string, name: string, filter: ZtunnelFilter) =>
  useQuery({
    queryKey: ['ztunnel', namespace, name, filter],
    queryFn: () =>
      getJson<ZtunnelConfigView>(
        `/api/ztunnel?namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}&filterNamespace=${encodeURIComponent(filter.namespace ?? '')}&thisNode=${String(filter.thisNode)}&search=${encodeURIComponent(filter.search ?? '')}`,
      ),
    refetchInterval: REFRESH_MS,
    placeholderData: previous => previous,
  });

/** The request shape an edge's L7 policies are decided for (empty fields: the server's defaults). */
export interface EdgeRequestInput {
  readonly method: string;
  readonly path: string;
  /** `name:value`, or empty. */
  readonly header: string;
}

export const useEdgePolicies = (source: string, target: string, request?: EdgeRequestInput) =>
  useQuery({
    queryKey: ['edge-policies', source, target, request?.method, request?.path, request?.header],
    queryFn: () => {
      const q = new URLSearchParams({ source, target });
      if (request !== undefined) {
        if (request.method !== '') q.set('method', request.method);
        if (request.path !== '') q.set('path', request.path);
        if (request.header !== '') q.set('header', request.header);
      }
      return getJson<EdgePoliciesView>(`/api/graph/edge/policies?${q.toString()}`);
    },
    refetchInterval: REFRESH_MS,
  });
