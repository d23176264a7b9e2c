import { NftUnsupportedPlatformError } from './errors.ts';

/**
 * Throws unless `platform` is Linux. The package entry calls it at load time, so a non-Linux
 * process fails at import with a message rather than later with a missing binary.
 */
export function assertSupportedPlatform(platform: NodeJS.Platform = process.platform): void {
  if (platform !== 'linux') throw new NftUnsupportedPlatformError(platform);
}
