/**
 * Start a CLI from its CommonJS bundle with V8's code cache, the way Node 22's `module.enableCompileCache()` does (Node
 * 20 has none): the bundle's compiled code is kept in a file, so a start deserializes code instead of
 * parsing and compiling 700 KB of JavaScript. About a quarter of a client's start-up CPU before its first `wg` run
 * (see BENCHMARKS.md, issue 16).
 *
 * The cache is `<bundle name>.<role>.<CRC-32 of the bundle, 8 hex>.<node version>-<arch>.v8cache`, in the folder systemd
 * gives the service (`CacheDirectory=wgnat`: `$CACHE_DIRECTORY`, /var/cache/wgnat, root's only), else beside the
 * bundle: only whoever may change the code may change its cache (the daemons run as root; a cache V8 loads must be
 * as trusted as the code; a cache file owned by someone else, or writable by others, is not loaded). The name carries the bundle's checksum because V8 itself checks only the source's length: a
 * new build gets a new cache, and the old ones are removed when it is written. The build computes the checksum and
 * writes it into the entry beside the bundle (scripts/bundle.mjs), so a start loads no zlib: a bundle replaced without
 * its entry (by hand; the build and the package always write both) would keep the old name. V8 checks its own version and flags;
 * a cache it rejects is ignored and rewritten. Nothing is written where the folder is not writable (a start then
 * costs what it would without a cache). Never fatal: a cache that cannot be read or written only costs the time it
 * would have saved.
 *
 * V8 caches only functions compiled by the time the cache is made, and most are compiled lazily, on first call. A
 * daemon and a short command (`--help`, `status`, a subcommand) need different code, and a larger cache costs more
 * to load, so each role has its own cache (`roleOf`):
 * - a command that found no usable cache writes one as it exits;
 * - a daemon that found no full cache writes one `CACHE_WRITE_AFTER_MS` after its start, once its start-up code has
 *   run. A daemon that found one writes nothing: making a cache costs a client about 20 ms of CPU and a 1 MB write,
 *   three seconds into its start, while a mesh forms (issue 16). A daemon that stops before then, having found
 *   nothing usable, writes an early cache as it exits (`<role>` `daemon-early` in the name): later starts use it
 *   until a daemon runs long enough to write the full one, which replaces it.
 *
 * This file is bundled on its own (scripts/bundle.mjs) and imports only node built-ins.
 */
import { isAscii } from 'node:buffer'
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Script } from 'node:vm'

/** A daemon makes its cache this long after its start: its start-up code (options, first sync, first attempts) has run by then. */
export const CACHE_WRITE_AFTER_MS = 3000

/**
 * CommonJS's module wrapper: the bundle runs as `require()` would run it, with one more parameter, the bundle's URL,
 * which scripts/bundle.mjs makes `import.meta.url` stand for.
 */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname, __wgnatBundleUrl) { '
const WRAP_TAIL = '\n})'

export interface BundleStart {
  cacheFile: string
  /** `none`: no cache file; `accepted`: V8 used it; `rejected`: V8 refused it (another node, other flags, changed code). */
  cache: 'none' | 'accepted' | 'rejected'
}

export type CacheRole = 'daemon' | 'command'

/** What a CLI's arguments start: a short command (help, version, a subcommand), else the daemon. Pure. */
export function roleOf (args: readonly string[]): CacheRole {
  if (args.some((a) => a === '-h' || a === '--help' || a === '-V' || a === '--version')) return 'command'
  return args[0] !== undefined && !args[0].startsWith('-') ? 'command' : 'daemon'
}

/**
 * A bundle's CRC-32, 8 hex digits. A checksum, not a cryptographic hash: it tells builds apart (whoever can write the
 * bundle runs code anyway), and loads no node:crypto (a tenth of `--help`'s time with SHA-256).
 */
export function checksumOf (source: string | Uint8Array): string {
  // Loaded here, not imported: a start given the build's checksum loads no zlib at all.
  const { crc32 } = process.getBuiltinModule('node:zlib')
  return crc32(source).toString(16).padStart(8, '0')
}

/** Where the cache of `bundle` (of checksum `checksum`, see checksumOf) for `role` lives: see the file's comment. */
export function cacheFileOf (bundle: string, checksum: string, role: CacheRole, env: NodeJS.ProcessEnv = process.env): string {
  const systemd = env.CACHE_DIRECTORY?.split(':')[0]
  const dir = systemd !== undefined && isAbsolute(systemd) ? systemd : dirname(bundle)
  return join(dir, `${basename(bundle)}.${role}.${checksum}.${process.version}-${process.arch}.v8cache`)
}

/** Remove the caches of other builds and other nodes of the same bundle and role, once a new one is written. */
function removeOthers (cacheFile: string, bundle: string, role: CacheRole | 'daemon-early'): void {
  const dir = dirname(cacheFile)
  for (const f of readdirSync(dir)) {
    if (f.startsWith(`${basename(bundle)}.${role}.`) && f.endsWith('.v8cache') && join(dir, f) !== cacheFile) rmSync(join(dir, f), { force: true })
  }
}

export interface RunBundleOptions {
  /** @default roleOf(process.argv) */
  role?: CacheRole
  /** @default CACHE_WRITE_AFTER_MS */
  writeAfterMs?: number
  /** How to run something as the process exits (tests pass their own). */
  onExit?: (fn: () => void) => { cancel: () => void }
  /**
   * The bundle's CRC-32 (8 hex digits) as scripts/bundle.mjs computed it when it wrote the bundle and its entry:
   * a start then loads no `node:zlib` to compute it (3 ms of CPU, issue 16). Computed here when not given.
   */
  checksum?: string
}

/** Run the CommonJS bundle `bundle` (an absolute path) with its code cache; see the file's comment. */
export function runBundle (bundle: string, opts: RunBundleOptions = {}): BundleStart {
  const role = opts.role ?? roleOf(process.argv.slice(2))
  const writeAfterMs = opts.writeAfterMs ?? CACHE_WRITE_AFTER_MS
  const onExit = opts.onExit ?? ((fn) => { process.once('exit', fn); return { cancel: () => { process.off('exit', fn) } } })
  // scripts/bundle.mjs makes the bundle ASCII: read as latin1 it is a one-byte string, quicker to read and to compile.
  const bytes = readFileSync(bundle)
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8')
  const cacheFile = cacheFileOf(bundle, opts.checksum ?? checksumOf(bytes), role)
  // A daemon's early cache (see the file's comment), used while there is no full one.
  const early = join(dirname(cacheFile), basename(cacheFile).replace(`.${role}.`, '.daemon-early.'))
  let cachedData = readTrusted(cacheFile)
  const full = cachedData !== undefined
  if (!full && role === 'daemon') cachedData = readTrusted(early)
  const script = new Script(WRAP_HEAD + source + WRAP_TAIL, { filename: bundle, cachedData })
  const cache = cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'accepted'
  const save = (file: string, kind: CacheRole | 'daemon-early'): void => {
    try {
      writeAtomicSync(file, script.createCachedData())
      removeOthers(file, bundle, kind)
      if (file === cacheFile && role === 'daemon') rmSync(early, { force: true })
    } catch { /* a cache is an optimisation: a read-only folder, a full disk only cost the time it would save */ }
  }
  if (role === 'command') {
    if (cache !== 'accepted') onExit(() => { save(cacheFile, role) })
  } else if (!full || cache !== 'accepted') {
    const atExit = cache === 'accepted' ? undefined : onExit(() => { save(early, 'daemon-early') })
    setTimeout(() => { atExit?.cancel(); save(cacheFile, role) }, writeAfterMs).unref()
  }
  const module = { exports: {} }
  const run = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string, url: string) => void
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle), pathToFileURL(bundle).href)
  return { cacheFile, cache }
}

/**
 * The cache file's bytes, or undefined when there is none or it is not as trusted as the code: owned by someone else
 * than us, or writable by others (V8 does not check a cache's code, it runs it).
 */
function readTrusted (path: string): Buffer | undefined {
  let fd: number | undefined
  try {
    fd = openSync(path, 'r')
    const st = fstatSync(fd)
    if (!st.isFile() || st.uid !== process.geteuid?.() || (st.mode & 0o022) !== 0) return undefined
    return readFileSync(fd)
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Write `data` to `path` through a temporary file, fsync and rename: a reader sees the old cache or the new one. */
function writeAtomicSync (path: string, data: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`
  try {
    const fd = openSync(tmp, 'w', 0o644)
    try {
      for (let done = 0; done < data.length;) done += writeSync(fd, data, done)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}
