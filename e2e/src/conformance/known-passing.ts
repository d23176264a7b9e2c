/**
 * The conformance tests our mesh is known to pass, per profile: the list the cluster-tier test
 * `conformance.test.ts` holds us to. A test joins this list only after it passed in the suite's own
 * report (`npm run conformance`, docs/conformance/); docs/compatibility.md says why the others fail.
 */
export const MESH_HTTP_KNOWN_PASSING: readonly string[] = [
  'MeshBasic',
  'MeshFrontend',
  'MeshFrontendHostname',
  'MeshHTTPRouteBackendRequestHeaderModifier',
  'MeshHTTPRouteMatching',
  'MeshHTTPRouteNamedRule',
  'MeshHTTPRouteQueryParamMatching',
  'MeshHTTPRouteRedirectHostAndStatus',
  'MeshHTTPRouteRedirectPath',
  'MeshHTTPRouteRedirectPort',
  'MeshHTTPRouteRequestHeaderModifier',
  'MeshHTTPRouteRewritePath',
  'MeshHTTPRouteSchemeRedirect',
  'MeshHTTPRouteSimpleSameNamespace',
  'MeshHTTPRouteWeight',
  'MeshPorts',
  'MeshTrafficSplit',
];

/** MESH-GRPC: every test of the profile in v1.4.1 (core: Mesh and GRPCRoute; no extended test). */
export const MESH_GRPC_KNOWN_PASSING: readonly string[] = ['MeshBasic', 'MeshGRPCRouteWeight'];
