#!/usr/bin/env node
// Entry point of the `provenant` command: runs the TypeScript sources through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../provider/src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
