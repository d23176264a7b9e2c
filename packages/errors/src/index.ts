export { MeshError, isMeshError, errorMessage } from './mesh-error.ts';
export type { MeshErrorOptions } from './mesh-error.ts';
