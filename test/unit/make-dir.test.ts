import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeDirSync } from '../../src/shared/make-dir.js'

describe('makeDirSync (mkdir -p that ends)', () => {
  let base: string
  beforeEach(() => { base = mkdtempSync(join(tmpdir(), 'wgnat-mkdir-')) })
  afterEach(() => { rmSync(base, { recursive: true, force: true }) })

  it('makes missing parents with the mode, and does nothing the second time', () => {
    const dir = join(base, 'a', 'b', 'c')
    makeDirSync(dir, 0o700)
    expect(statSync(dir).isDirectory()).toBe(true)
    expect(statSync(join(base, 'a')).mode & 0o777).toBe(0o700)
    makeDirSync(dir, 0o700)
    expect(statSync(dir).isDirectory()).toBe(true)
  })

  it('fails, naming it, under a parent that is a dangling symlink', () => {
    symlinkSync(join(base, 'gone'), join(base, 'dangling'))
    expect(() => { makeDirSync(join(base, 'dangling', 'state'), 0o700) }).toThrow(`'${join(base, 'dangling')}' exists and is not a directory`)
  })

  it('fails, not loops, under /proc, where a new directory is never found', () => {
    expect(() => { makeDirSync('/proc/wgnat-no-such-dir/state', 0o700) }).toThrow(/ENOENT|EACCES|EPERM/)
    expect(() => { makeDirSync('/proc/wgnat-no-such-dir', 0o700) }).toThrow(/ENOENT|EACCES|EPERM/)
  })

  it('fails when a file is in the way', () => {
    writeFileSync(join(base, 'file'), '')
    expect(() => { makeDirSync(join(base, 'file'), 0o700) }).toThrow(/'.*file' exists and is not a directory/)
    expect(() => { makeDirSync(join(base, 'file', 'sub'), 0o700) }).toThrow(/ENOTDIR/)
  })
})
