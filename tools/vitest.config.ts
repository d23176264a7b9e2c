import { defineConfig, mergeConfig } from 'vitest/config';
import { sharedConfig } from '../vitest.shared.ts';

export default mergeConfig(
  sharedConfig,
  defineConfig({
    test: {
      include: ['consumer/**/*.test.ts', 'house-rules/**/*.test.ts'],
      exclude: ['**/fixtures/**', '**/node_modules/**'],
    },
  }),
);
