/**
 * ztunnel's side of xDS, the two WDS handlers (the client is `@ambient-mesh/xds`'s `XdsClient`):
 * decode each `Any`, convert it to a validated domain value, and hand the accepted batch to the
 * state's single writer. A resource that fails to decode or validate is rejected on its own;
 * the others still apply.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { TypeUrl } from '@ambient-mesh/mesh-api';
import { unpackAny } from '@ambient-mesh/xds-types';
import { convertAddress } from '../state/convert-address.ts';
import { convertAuthorization } from '../state/convert-policy.ts';
import type { StateMutator } from '../state/proxy-state.ts';
import type { Address, Authorization } from '../state/types.ts';
import type { Converted } from '../state/validation.ts';
import type { IncomingResource, Rejection, ResourceHandler } from '@ambient-mesh/xds';

function convertAll<T>(
  resources: readonly IncomingResource[],
  convert: (resource: IncomingResource) => Converted<T>,
): { accepted: T[]; rejected: Rejection[] } {
  const accepted: T[] = [];
  const rejected: Rejection[] = [];
  for (const resource of resources) {
    let result: Converted<T>;
    try {
      result = convert(resource);
    } catch (err) {
      result = { ok: false, problems: [errorMessage(err)] };
    }
    if (result.ok) accepted.push(result.value);
    else rejected.push({ name: resource.name, reason: result.problems.join(', ') });
  }
  return { accepted, rejected };
}

export function addressHandler(mutator: StateMutator): ResourceHandler {
  return {
    typeUrl: TypeUrl.address,
    handle(resources, removed) {
      const { accepted, rejected } = convertAll<Address>(resources, r =>
        convertAddress(r.name, unpackAny(r.resource, TypeUrl.address)),
      );
      mutator.applyAddresses(accepted, removed);
      return rejected;
    },
  };
}

export function authorizationHandler(mutator: StateMutator): ResourceHandler {
  return {
    typeUrl: TypeUrl.authorization,
    handle(resources, removed) {
      const { accepted, rejected } = convertAll<Authorization>(resources, r =>
        convertAuthorization(r.name, unpackAny(r.resource, TypeUrl.authorization)),
      );
      mutator.applyAuthorizations(accepted, removed);
      return rejected;
    },
  };
}
