export { Metrics } from './metrics.ts';
export { createLogger, type Logger } from './logger.ts';
