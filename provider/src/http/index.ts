export { buildServer, type ServerOptions } from './app.ts';
export { servingTls, type ServingTls } from './tls.ts';
export { startServer, type RunningServer } from './serve.ts';
export * from './schemas.ts';
export { renderMutate, renderVerify, type Render } from './routes.ts';
