/**
 * Pure: the outage a steady ping saw. `ping -i <interval> -c <count>` output in, the longest run of unanswered
 * echo requests out (in requests and in milliseconds at the ping's interval). Replies are matched by icmp_seq, so
 * late replies (after the timeout) still count as answered.
 */
export interface PingGaps {
  sent: number
  received: number
  /** Longest run of consecutive requests without a reply. */
  longestGap: number
  /** `longestGap` times the interval: how long the path was out, to within one interval. */
  longestGapMs: number
}

export function pingGaps (stdout: string, intervalS: number): PingGaps {
  const seqs = new Set<number>()
  for (const m of stdout.matchAll(/bytes from .*?icmp_seq=(\d+)/g)) seqs.add(Number(m[1]))
  const stats = /(\d+) packets transmitted/.exec(stdout)
  const sent = stats === null ? Math.max(0, ...seqs) : Number(stats[1])
  let longest = 0; let run = 0
  for (let seq = 1; seq <= sent; seq++) {
    run = seqs.has(seq) ? 0 : run + 1
    longest = Math.max(longest, run)
  }
  return { sent, received: seqs.size, longestGap: longest, longestGapMs: Math.round(longest * intervalS * 1000) }
}
