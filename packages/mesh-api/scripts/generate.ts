/**
 * Generates `src/generated/` from the CRDs in `deploy/crds/` (see `crd-types.ts`).
 *
 *   npm run generate           # rewrite src/generated/
 *   npm run check-generated    # rewrite, then fail if git sees a change under src/generated/
 */
import { writeOrCheckGenerated } from '../../../tools/generated-files.ts';
import { OUT_DIR, PACKAGE_DIR, generate } from './crd-types.ts';

writeOrCheckGenerated({ packageDir: PACKAGE_DIR, outDir: OUT_DIR, files: await generate() });
