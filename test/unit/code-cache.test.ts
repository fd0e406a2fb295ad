import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cacheFileOf, runBundle } from '../../src/shared/startup/code-cache.js'

// A bundle in the shape scripts/bundle.mjs makes: CommonJS, strict, `import.meta.url` turned into `__wgnatBundleUrl`.
const BUNDLE = `"use strict";
const { join } = require('node:path');
function work (n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s }
globalThis.__codeCacheTest = { sum: work(10), url: __wgnatBundleUrl, file: __filename, strict: (function () { return this === undefined })(), exported: module.exports === exports, joined: join('a', 'b') };
`

const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 20)) }

describe('runBundle (code cache)', () => {
  let dir: string
  let bundle: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wgnat-code-cache-'))
    bundle = join(dir, 'cli.cjs')
    writeFileSync(bundle, BUNDLE)
  })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  it('runs the bundle as CommonJS, strict, with its own URL, and writes a cache V8 then accepts', async () => {
    const first = runBundle(bundle, 0)
    expect(first.cache).toBe('none')
    const seen = (globalThis as { __codeCacheTest?: Record<string, unknown> }).__codeCacheTest
    expect(seen).toEqual({ sum: 45, url: `file://${bundle}`, file: bundle, strict: true, exported: true, joined: 'a/b' })
    await settle()
    expect(existsSync(cacheFileOf(bundle))).toBe(true)
    expect(cacheFileOf(bundle)).toContain(`${process.version}-${process.arch}`)
    expect(runBundle(bundle, 0).cache).toBe('accepted')
    // No temporary file is left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('rejects and rewrites the cache of another source', async () => {
    runBundle(bundle, 0)
    await settle()
    const before = readFileSync(cacheFileOf(bundle))
    writeFileSync(bundle, BUNDLE + 'globalThis.__codeCacheTest.more = work(3);\n')
    expect(runBundle(bundle, 0).cache).toBe('rejected')
    expect((globalThis as { __codeCacheTest?: { more?: number } }).__codeCacheTest?.more).toBe(3)
    await settle()
    expect(readFileSync(cacheFileOf(bundle)).equals(before)).toBe(false)
    expect(runBundle(bundle, 0).cache).toBe('accepted')
  })

  it('treats a damaged cache as none: the bundle still runs, and a good cache replaces it', async () => {
    writeFileSync(cacheFileOf(bundle), Buffer.from('not a V8 code cache at all'))
    expect(runBundle(bundle, 0).cache).toBe('rejected')
    expect((globalThis as { __codeCacheTest?: { sum?: number } }).__codeCacheTest?.sum).toBe(45)
    await settle()
    expect(runBundle(bundle, 0).cache).toBe('accepted')
  })

  it('runs without a cache, and throws nothing, where the cache cannot be written', async () => {
    // A folder in the cache's place: reading and renaming onto it fail, even for root.
    mkdirSync(cacheFileOf(bundle))
    expect(runBundle(bundle, 0).cache).toBe('none')
    expect((globalThis as { __codeCacheTest?: { sum?: number } }).__codeCacheTest?.sum).toBe(45)
    await settle()
    expect(readdirSync(dir).sort()).toEqual(['cli.cjs', basename(cacheFileOf(bundle))])
  })
})
