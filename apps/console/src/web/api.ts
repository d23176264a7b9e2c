// The browser's only data access: typed GETs of the console API through TanStack Query.
import { useQuery } from '@tanstack/react-query';
import type {
  GraphView,
  IstioConfigView,
  LogsView,
  OverviewView,
  WaypointView,
  WorkloadView,
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

export const useGraph = (namespaces: readonly string[], showWaypoints: boolean) =>
  useQuery({
    queryKey: ['graph', namespaces, showWaypoints],
    queryFn: () =>
      getJson<GraphView>(
        `/api/graph?namespaces=${encodeURIComponent(namespaces.join(','))}&waypoints=${String(showWaypoints)}`,
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
