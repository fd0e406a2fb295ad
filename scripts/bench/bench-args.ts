/**
 * Options of a bench script: node's `parseArgs`, plus `--help` (the options and their defaults) and a one-line error
 * for a bad option (exit 2), never a stack trace.
 */
import { basename } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'

const script = (): string => `scripts/bench/${basename(process.argv[1] ?? 'bench', '.js')}.ts`

/** A bad option or value: say so in one line and exit 2. */
export function benchFail (message: string): never {
  console.error(`${basename(process.argv[1] ?? 'bench')}: ${message} (--help lists the options)`)
  process.exit(2)
}

/** `parseArgs(config)`, with `--help` and one-line errors. */
export function benchArgs<T extends ParseArgsConfig> (config: T): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    const lines = Object.entries(config.options ?? {}).map(([name, o]) => {
      const value = o.type === 'string' ? ' <value>' : ''
      const dflt = o.default === undefined || o.default === false || o.default === '' ? '' : ` (default: ${String(o.default)})`
      return `  --${name}${value}${o.multiple === true ? ' (repeatable)' : ''}${dflt}`
    })
    console.log(`usage: node ${process.argv[1] ?? 'bench.js'} [options]\n\noptions:\n${lines.join('\n')}\n\nWhat it measures, and each option: the comment at the top of ${script()}.`)
    process.exit(0)
  }
  try {
    return parseArgs(config)
  } catch (err) {
    benchFail(err instanceof Error ? err.message : String(err))
  }
}
