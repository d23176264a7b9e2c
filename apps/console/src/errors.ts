/** The console's stable error codes, in API answers (`{ code, message }`) and logs. */
export const ConsoleErrorCode = {
  badRequest: 'CONSOLE_BAD_REQUEST',
  notFound: 'CONSOLE_NOT_FOUND',
  notSynced: 'CONSOLE_NOT_SYNCED',
  configInvalid: 'CONSOLE_CONFIG_INVALID',
} as const;
export type ConsoleErrorCode = (typeof ConsoleErrorCode)[keyof typeof ConsoleErrorCode];
