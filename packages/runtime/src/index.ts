// @ambient-mesh/runtime: the process plumbing every Ambient Mesh app shares.

// Errors
export { BindError, ConfigError, DrainTimeoutError, RuntimeErrorCode, StartError } from './errors.ts';
export type { ConfigErrorOptions, ConfigProblem } from './errors.ts';

// Logging
export {
  COMPONENT_FIELD,
  LOG_LEVELS,
  LogFormat,
  Logs,
  createLogger,
  formatText,
  isLogLevel,
  silentLogger,
  textDestination,
} from './logger.ts';
export type { LogLevel, LogScope, Logger, LogsOptions } from './logger.ts';

// Configuration
export { ConfigReader } from './config-reader.ts';
export type { ConfigReaderOptions, Environment, FinishOptions, Source } from './config-reader.ts';
export { parseFlags } from './flags.ts';
export type { FlagSpec, FlagSpecs, ParsedFlags } from './flags.ts';
export {
  isLoopbackAddress,
  parseBool,
  parseDuration,
  parseGoDurationMs,
  parseHttpUrl,
  parseInteger,
  parseIp,
  parseListenAddress,
  parsePort,
  splitList,
} from './parsers.ts';
export type { DurationOptions, IntegerOptions, ListenAddress, Parsed } from './parsers.ts';

// Time
export { delay, systemClock, systemTimers, unrefTimers } from './timers.ts';
export type { Clock, TimerHandle, Timers } from './timers.ts';
export { Backoff } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';

// Ops HTTP, readiness, metrics
export { currentLevel, loggingRoute, parseLevelRequest, resolveLevel } from './logging-route.ts';
export type { LevelRequest } from './logging-route.ts';
export { Readiness } from './readiness.ts';
export {
  TEXT_PLAIN,
  bindServer,
  dispatch,
  livenessRoute,
  metricsRoutes,
  readinessRoute,
  reply,
  replyJson,
  requestUrl,
  startOpsServer,
} from './ops-server.ts';
export type {
  BindErrorFactory,
  BindOptions,
  OpsServer,
  OpsServerOptions,
  ReadinessRouteOptions,
  Route,
  RouteHandler,
} from './ops-server.ts';
export { createRegistry, packageVersion } from './metrics-registry.ts';
export { createPlatform } from './platform.ts';
export type { Platform, PlatformOptions } from './platform.ts';
export type { RegistryOptions } from './metrics-registry.ts';

// Process
export { ExitCode, describeConfigError, main, nodeProcess } from './main.ts';
export type { MainOptions, ProcessPort, Runnable, Signal } from './main.ts';
