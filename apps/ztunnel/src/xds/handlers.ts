/**
 * The two WDS handlers: decode each `Any`, convert it to a validated domain value, and hand the
 * accepted batch to the state's single writer. A resource that fails to decode or validate is
 * rejected on its own; the others still apply.
 */
import { errorMessage } from '@ambient-mesh/errors';
import { TypeUrl, unpackAny } from '@ambient-mesh/xds-types';
import { convertAddress } from '../state/convert-address.ts';
import { convertAuthorization } from '../state/convert-policy.ts';
import type { StateMutator } from '../state/proxy-state.ts';
import type { Address, Authorization } from '../state/types.ts';
import type { Converted } from '../state/validation.ts';
import type { IncomingResource, RejectedResource, XdsResourceHandler } from './delta-client.ts';

function convertAll<T>(
  resources: readonly IncomingResource[],
  convert: (resource: IncomingResource) => Converted<T>,
): { accepted: T[]; rejected: RejectedResource[] } {
  const accepted: T[] = [];
  const rejected: RejectedResource[] = [];
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

export function addressHandler(mutator: StateMutator): XdsResourceHandler {
  return {
    typeUrl: TypeUrl.ADDRESS,
    handle(resources, removed) {
      const { accepted, rejected } = convertAll<Address>(resources, r =>
        convertAddress(r.name, unpackAny(r.resource, TypeUrl.ADDRESS)),
      );
      mutator.applyAddresses(accepted, removed);
      return rejected;
    },
  };
}

export function authorizationHandler(mutator: StateMutator): XdsResourceHandler {
  return {
    typeUrl: TypeUrl.AUTHORIZATION,
    handle(resources, removed) {
      const { accepted, rejected } = convertAll<Authorization>(resources, r =>
        convertAuthorization(r.name, unpackAny(r.resource, TypeUrl.AUTHORIZATION)),
      );
      mutator.applyAuthorizations(accepted, removed);
      return rejected;
    },
  };
}
