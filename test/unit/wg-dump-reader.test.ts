import { describe, expect, it } from 'vitest'
import { ParseError } from '../../src/shared/errors.js'
import { parseWgDump } from '../../src/shared/wg-dump.js'
import { WgDumpReader } from '../../src/shared/wg-dump-reader.js'
import { testKey } from '../helpers/keys.js'

const IFACE = ['yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=', testKey('hub'), '51820', 'off'].join('\t')

function line (i: number, o: { port?: number, hs?: number, rx?: number, allowed?: string } = {}): string {
  return [testKey(`p${i}`), '(none)', `198.18.0.${i % 250 + 1}:${o.port ?? 40000 + i}`, o.allowed ?? `100.64.${i >> 8}.${i & 255}/32`,
    String(o.hs ?? 1_700_000_000), String(o.rx ?? 0), '0', 'off'].join('\t')
}
const dump = (lines: string[]): string => [IFACE, ...lines].join('\n') + '\n'

describe('WgDumpReader', () => {
  it('parses like parseWgDump, read after read, whatever changed', async () => {
    const reader = new WgDumpReader(3, 4)
    let lines = Array.from({ length: 20 }, (_, i) => line(i))
    for (let round = 0; round < 30; round++) {
      const text = dump(lines)
      expect(await reader.parse(text)).toEqual(parseWgDump(text))
      // Next read: some counters and endpoints move, a peer goes, another comes, the order changes.
      lines = lines.map((l, i) => (i + round) % 5 === 0 ? line(i + round * 100, { rx: round, port: 50000 + round }) : l)
      if (round % 3 === 0) lines.splice(round % lines.length, 1)
      if (round % 4 === 0) lines.push(line(1000 + round))
      if (round % 7 === 0) lines.reverse()
    }
  })

  it('gives an unchanged peer back as the same frozen object, and a changed one anew', async () => {
    const reader = new WgDumpReader()
    const first = await reader.parse(dump([line(1), line(2)]))
    const second = await reader.parse(dump([line(1), line(2, { rx: 5 })]))
    expect(second.peers[0]).toBe(first.peers[0])
    expect(second.peers[1]).not.toBe(first.peers[1])
    expect(second.peers[1]?.transferRx).toBe(5)
    expect(Object.isFrozen(second.peers[0])).toBe(true)
    expect(Object.isFrozen(second.peers[0]?.allowedIps)).toBe(true)
    // The very same text again: the same peers, and a device object of its own.
    const third = await reader.parse(dump([line(1), line(2, { rx: 5 })]))
    expect(third).not.toBe(second)
    expect(third.peers[1]).toBe(second.peers[1])
  })

  it('tells a text of the same length that differs in one character from the last one, and a head that changed', async () => {
    const reader = new WgDumpReader()
    const first = await reader.parse(dump([line(1, { rx: 5 })]))
    const other = await reader.parse(dump([line(1, { rx: 6 })]))
    expect(other.peers[0]?.transferRx).toBe(6)
    expect(other.peers[0]).not.toBe(first.peers[0])
    const moved = dump([line(1, { rx: 6 })]).replace('\t51820\t', '\t51821\t')
    expect((await reader.parse(moved)).listenPort).toBe(51821)
  })

  it('two reads parsed at once each give their own result, and later reads of either text are still right', async () => {
    const reader = new WgDumpReader(1, 1)
    const a = dump([line(1), line(2), line(3)])
    const b = dump([line(1, { rx: 9 }), line(2), line(3)])
    const [ra, rb] = await Promise.all([reader.parse(a), reader.parse(b)])
    expect(ra).toEqual(parseWgDump(a))
    expect(rb).toEqual(parseWgDump(b))
    expect(await reader.parse(b)).toEqual(parseWgDump(b))
    expect(await reader.parse(a)).toEqual(parseWgDump(a))
  })

  it('throws the parser\'s errors and keeps its state for the next read', async () => {
    const reader = new WgDumpReader()
    const good = await reader.parse(dump([line(1), line(2)]))
    await expect(reader.parse(dump([line(1), line(2, { allowed: '100.64.0.300/32' })]))).rejects.toThrow(ParseError)
    await expect(reader.parse(dump([line(1), line(2).slice(0, 50)]))).rejects.toThrow(/line 3 has 2 fields/)
    const again = await reader.parse(dump([line(1), line(2)]))
    expect(again.peers[0]).toBe(good.peers[0])
    expect(again.peers[1]).toBe(good.peers[1])
  })

  it('never takes a line for another that only starts the same', async () => {
    const reader = new WgDumpReader()
    await reader.parse(dump([line(1)]))
    // The same key and fields, one more field: parsed (and refused), not reused.
    await expect(reader.parse(dump([line(1) + '\textra']))).rejects.toThrow(/line 2 has 9 fields/)
  })

  it('forgets a peer that left: one that comes back is parsed anew', async () => {
    const reader = new WgDumpReader()
    const first = await reader.parse(dump([line(1), line(2)]))
    await reader.parse(dump([line(2)]))
    const back = await reader.parse(dump([line(1), line(2)]))
    expect(back.peers[0]).toEqual(first.peers[0])
    expect(back.peers[0]).not.toBe(first.peers[0])
    expect(back.peers[1]).toBe(first.peers[1])
  })

  it('reads empty lines, an unended last line and a repeated key as parseWgDump does', async () => {
    const reader = new WgDumpReader(2, 2)
    const texts = [
      `\n${IFACE}\n\n${line(1)}\n\n\n${line(2)}`,
      `${IFACE}\n${line(2)}\n${line(1)}\n${line(1)}\n`,
      `${IFACE}\n${line(1)}\n${line(1, { rx: 7 })}\n\n`,
      `${IFACE}`
    ]
    for (const text of [...texts, ...texts.reverse()]) expect(await reader.parse(text)).toEqual(parseWgDump(text))
    await expect(reader.parse('\n\n')).rejects.toThrow(/empty output/)
  })

  it('after a read that failed half-way, parses the next one like parseWgDump', async () => {
    const reader = new WgDumpReader()
    await reader.parse(dump([line(1), line(2), line(3)]))
    await expect(reader.parse(dump([line(1, { rx: 1 }), line(2, { rx: 2 }), line(3, { allowed: 'x' })]))).rejects.toThrow(ParseError)
    for (const text of [dump([line(1, { rx: 1 }), line(3)]), dump([line(1), line(2), line(3)]), dump([line(2, { rx: 2 })])]) {
      expect(await reader.parse(text)).toEqual(parseWgDump(text))
    }
  })
})
