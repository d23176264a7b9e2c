/**
 * The protobufjs reflection root of every message in this package, built once on first use from
 * the generated JSON descriptor (no `.proto` file is read at run time).
 */
import protobuf from 'protobufjs';
import { descriptor } from './generated/descriptor.ts';

let root: protobuf.Root | undefined;
/** Hits only, so arbitrary names from callers cannot grow it. */
const types = new Map<string, protobuf.Type>();

function messageRoot(): protobuf.Root {
  if (!root) {
    root = protobuf.Root.fromJSON(descriptor);
    root.resolveAll();
  }
  return root;
}

/** The reflected message type for a full name such as `istio.workload.Address`, or null. */
export function lookupMessageType(fullName: string): protobuf.Type | null {
  const cached = types.get(fullName);
  if (cached) return cached;
  if (!/^[A-Za-z_][\w.]*$/.test(fullName)) return null;
  const obj = messageRoot().lookup(fullName);
  // lookup() also searches parent namespaces; insist on an exact full-name match.
  if (!(obj instanceof protobuf.Type) || obj.fullName !== `.${fullName}`) return null;
  types.set(fullName, obj);
  return obj;
}
