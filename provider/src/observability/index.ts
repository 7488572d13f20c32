export { Metrics } from './metrics.ts';
export { createLogger, type Logger } from './logger.ts';
export { withTrace, tracing, traceStep, type TraceStep, type TraceKind } from './trace.ts';
