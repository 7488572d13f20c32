export { compileGlob, GlobSyntaxError, type Glob, type GlobToken } from './glob.ts';
