import { MeshError } from '@ambient-mesh/errors';

/** One problem found in a policy, with the path of the field that holds it. */
export interface FieldError {
  /** Dotted path from the object root, e.g. `spec.rules[0].from[1].source.principals[2]`. */
  readonly path: string;
  readonly message: string;
}

/**
 * Thrown only by the `...OrThrow` helpers; the validators themselves return every error at once
 * and never throw. Code: `POLICY_INVALID`.
 */
export class PolicyValidationError extends MeshError {
  readonly errors: readonly FieldError[];

  constructor(kind: string, errors: readonly FieldError[]) {
    const first = errors.slice(0, 3).map(e => `${e.path}: ${e.message}`);
    const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
    super(
      'POLICY_INVALID',
      `${kind} is invalid: ${first.join('; ')}${more}; fix the fields named and apply the policy again`,
    );
    this.errors = errors;
  }
}
