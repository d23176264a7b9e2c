/**
 * The base of every typed error in Ambient Mesh.
 *
 * Each package declares its own subclasses with a stable `code` (prefixed by the package, for
 * example `SPIFFE_INVALID_ID` or `HBONE_CONNECT_REFUSED`) and a message that tells the user what
 * to check. Codes are API: they never change meaning once released.
 *
 * `instanceof` works across duplicate installs of a package: every instance carries a
 * `Symbol.for` brand per class in its chain, and `Symbol.hasInstance` checks the brand rather
 * than the prototype.
 */
const BRANDS = Symbol.for('@ambient-mesh/errors.brands');

export interface MeshErrorOptions {
  readonly cause?: unknown;
}

export class MeshError extends Error {
  /** A stable, documented identifier, e.g. `SPIFFE_INVALID_ID`. */
  readonly code: string;

  constructor(code: string, message: string, options: MeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    const brands = new Set<symbol>();
    for (
      let proto: unknown = new.target.prototype;
      proto && proto !== Error.prototype;
      proto = Object.getPrototypeOf(proto)
    ) {
      const ctor = (proto as { constructor: { name: string } }).constructor;
      brands.add(Symbol.for(`@ambient-mesh/errors:${ctor.name}`));
    }
    Object.defineProperty(this, BRANDS, { value: brands, enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const brands = (value as { [BRANDS]?: Set<symbol> })[BRANDS];
    if (!(brands instanceof Set)) return false;
    return brands.has(Symbol.for(`@ambient-mesh/errors:${this.name}`));
  }

  /** A JSON-friendly view for structured logs. */
  toJSON(): { name: string; code: string; message: string; cause?: string } {
    const cause = this.cause === undefined ? undefined : errorMessage(this.cause);
    return cause === undefined
      ? { name: this.name, code: this.code, message: this.message }
      : { name: this.name, code: this.code, message: this.message, cause };
  }
}

/** True when `err` is a MeshError, optionally with the given code. */
export function isMeshError(err: unknown, code?: string): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}

/** A message for any thrown value, for logs and error wrapping. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}
