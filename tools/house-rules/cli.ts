#!/usr/bin/env node
/**
 * `npm run check` step: the house rules (rules.ts) over this repository. Prints each violation
 * as `file:line: [rule] message` and exits 1 if there is any.
 */
import { join } from 'node:path';
import { checkHouseRules, formatViolation } from './rules.ts';

const root = join(import.meta.dirname, '..', '..');
const violations = await checkHouseRules(root);
for (const v of violations) console.error(formatViolation(v));
console.log(
  violations.length === 0
    ? 'house rules: apps never import apps, env only in config, platform from runtime, no import cycles: ok'
    : `house rules: ${violations.length} violation(s)`,
);
process.exit(violations.length === 0 ? 0 : 1);
