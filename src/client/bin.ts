#!/usr/bin/env node
import { run } from './cli.js'

// No top-level await: the bundle is CommonJS, started through the code cache (src/shared/startup/code-cache.ts).
void run(process.argv).then((code) => { process.exitCode = code })
