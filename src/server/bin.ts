#!/usr/bin/env node
import { run } from './cli.js'
import { handleStdoutErrors } from '../shared/cli.js'

// No top-level await: the bundle is CommonJS, started through the code cache (src/shared/startup/code-cache.ts).
handleStdoutErrors('wgnat-server')
void run(process.argv).then((code) => { process.exitCode = code })
