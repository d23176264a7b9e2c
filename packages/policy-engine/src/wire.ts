/**
 * The ztunnel `istio.security` wire types this package produces and evaluates, and the enum
 * values it needs at run time, all from `@ambient-mesh/xds-types`. Every other module imports
 * them from here.
 */
import { security } from '@ambient-mesh/xds-types';

export { security };

/** `istio.security.Scope` values: xds-types' `security.Scope`, under this package's public name. */
export const WireScope = security.Scope;

/** `istio.security.Action` values: xds-types' `security.Action`, under this package's public name. */
export const WireAction = security.Action;

/** A `Match` with every repeated field present and empty. */
export function emptyMatch(): security.Match {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
    serviceAccounts: [],
    notServiceAccounts: [],
  };
}
