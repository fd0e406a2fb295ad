#!/usr/bin/env node
import { messageOf, WgnatError } from '../../src/shared/errors.js'
import { run } from './cli-program.js'

/** Entry point of the lab CLI: the only place that sets the exit code. */
try {
  await run(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`wgnat-lab: ${messageOf(err)}\n`)
  process.exitCode = err instanceof WgnatError ? err.exitCode : 1
}
