import { describe, expect, it } from 'vitest'
import { exposeCounters, renderExposeStatus } from '../../src/server/expose/expose-counters.js'

const rule = (comment: string | undefined, counter?: { packets: number, bytes: number }) => ({
  rule: { family: 'inet', table: 't', chain: 'c', ...(comment === undefined ? {} : { comment }), expr: [{ match: {} }, ...(counter === undefined ? [] : [{ counter }]), { accept: null }] }
})

describe('exposeCounters', () => {
  it('gathers connections and bytes each way per expose, from nft -j output', () => {
    const json = {
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'inet', name: 't' } },
        rule('wgnat conn 8080/tcp=10.8.0.2:80', { packets: 3, bytes: 180 }),
        rule('wgnat conn 53/udp=10.8.0.5:53', { packets: 1, bytes: 60 }),
        rule('wgnat in 8080/tcp=10.8.0.2:80', { packets: 30, bytes: 4000 }),
        rule('wgnat out 8080/tcp=10.8.0.2:80', { packets: 25, bytes: 2_000_000 }),
        rule('wgnat snat 8080/tcp=10.8.0.2:80'),
        rule('wgnat guard ipv4', { packets: 7, bytes: 700 }),
        rule('wgnat guard ipv4'),
        rule('someone else', { packets: 99, bytes: 99 }),
        rule(undefined, { packets: 99, bytes: 99 })
      ]
    }
    const s = exposeCounters(json, 'wg0', 't')
    expect(s).toEqual({
      interface: 'wg0',
      table: 't',
      installed: true,
      masquerade: true,
      guardDrops: 7,
      exposes: [
        { expose: '8080/tcp=10.8.0.2:80', connections: 3, toPeer: { packets: 30, bytes: 4000 }, fromPeer: { packets: 25, bytes: 2_000_000 } },
        { expose: '53/udp=10.8.0.5:53', connections: 1, toPeer: { packets: 0, bytes: 0 }, fromPeer: { packets: 0, bytes: 0 } }
      ]
    })
    const text = renderExposeStatus(s)
    expect(text).toMatch(/^EXPOSE\s+CONNECTIONS\s+TO PEER\s+FROM PEER$/m)
    expect(text).toMatch(/^8080\/tcp=10\.8\.0\.2:80\s+3\s+3\.9 KiB \(30 pkts\)\s+1\.9 MiB \(25 pkts\)$/m)
    expect(text).toContain('masquerade')
    expect(text).toContain('guard dropped 7 packets')
  })

  it('no table: nothing installed', () => {
    const s = exposeCounters(undefined, 'wg0', 't')
    expect(s).toMatchObject({ installed: false, exposes: [] })
    expect(renderExposeStatus(s)).toMatch(/no exposes on wg0 .*not running with --expose/)
  })
})
