import { describe, expect, it } from 'vitest'
import { onlyReadyShrank } from '../../src/client/nat/ready-shrink.js'
import type { Announce } from '../../src/shared/protocol.js'

const A = 'A'.repeat(43) + '='
const B = 'B'.repeat(43) + '='
const C = 'C'.repeat(43) + '='
const base: Announce = { natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'], ready: [A, B], portMapping: null }

describe('onlyReadyShrank: which on-demand announcements may wait', () => {
  const cases: Array<{ name: string, last: Announce | undefined, next: Announce, held: boolean }> = [
    { name: 'a peer left the ready list, nothing else changed', last: base, next: { ...base, ready: [A] }, held: true },
    { name: 'the ready list emptied', last: base, next: { ...base, ready: [] }, held: true },
    { name: 'nothing sent yet', last: undefined, next: { ...base, ready: [] }, held: false },
    { name: 'a peer joined the ready list (an attempt the peer waits for)', last: base, next: { ...base, ready: [A, B, C] }, held: false },
    { name: 'one left and another joined', last: base, next: { ...base, ready: [A, C] }, held: false },
    { name: 'the same list', last: base, next: { ...base }, held: false },
    { name: 'fewer ready but a new mapping', last: base, next: { ...base, ready: [A], mappedEndpoint: '203.0.113.7:40001' }, held: false },
    { name: 'fewer ready but a new NAT class', last: base, next: { ...base, ready: [], natClass: 'hard' }, held: false },
    { name: 'fewer ready but a new port mapping', last: base, next: { ...base, ready: [B], portMapping: '203.0.113.7:5000' }, held: false },
    { name: 'fewer ready but new LAN endpoints', last: base, next: { ...base, ready: [B], lanEndpoints: [] }, held: false }
  ]
  it.each(cases)('$name', ({ last, next, held }) => {
    expect(onlyReadyShrank(last, next)).toBe(held)
  })
})
