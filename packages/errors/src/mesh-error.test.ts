import { describe, expect, it } from 'vitest';
import { MeshError, errorMessage, isMeshError } from './index.ts';

class ExampleError extends MeshError {
  constructor(detail: string, cause?: unknown) {
    super('EXAMPLE_FAILED', `example failed: ${detail}; check the example`, { cause });
  }
}
class NarrowerError extends ExampleError {}

describe('MeshError', () => {
  it('keeps the code, the message, the subclass name and the cause', () => {
    const cause = new Error('root cause');
    const err = new ExampleError('disk full', cause);
    expect(err.code).toBe('EXAMPLE_FAILED');
    expect(err.message).toBe('example failed: disk full; check the example');
    expect(err.name).toBe('ExampleError');
    expect(err.cause).toBe(cause);
    expect(err.toJSON()).toEqual({
      name: 'ExampleError',
      code: 'EXAMPLE_FAILED',
      message: 'example failed: disk full; check the example',
      cause: 'root cause',
    });
  });

  it('answers instanceof for the class chain and not for siblings', () => {
    const err = new NarrowerError('x');
    expect(err instanceof NarrowerError).toBe(true);
    expect(err instanceof ExampleError).toBe(true);
    expect(err instanceof MeshError).toBe(true);
    expect(new ExampleError('y') instanceof NarrowerError).toBe(false);
    expect(new Error('plain') instanceof MeshError).toBe(false);
    expect((null as unknown) instanceof MeshError).toBe(false);
  });

  it('answers instanceof for an instance made by a duplicate copy of the class', () => {
    // A second install of the package defines a distinct class object with the same name.
    const Copy = class ExampleError extends MeshError {};
    const fromCopy = new Copy('EXAMPLE_FAILED', 'from another copy');
    expect(fromCopy instanceof ExampleError).toBe(true);
    expect(fromCopy instanceof MeshError).toBe(true);
  });

  it('matches codes with isMeshError and formats any thrown value', () => {
    const err = new ExampleError('z');
    expect(isMeshError(err)).toBe(true);
    expect(isMeshError(err, 'EXAMPLE_FAILED')).toBe(true);
    expect(isMeshError(err, 'OTHER')).toBe(false);
    expect(isMeshError(new Error('no'))).toBe(false);
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('text')).toBe('text');
    expect(errorMessage({ a: 1 })).toBe('{"a":1}');
  });
});
