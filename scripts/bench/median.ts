/**
 * The median of a benchmark's samples: the middle one, or the mean of the two middle ones. Undefined when there is
 * none, or when any sample is missing (a run that timed out has no figure, and a median of the others would hide it).
 */
export function median (xs: ReadonlyArray<number | undefined>): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  if (v.length < xs.length || v.length === 0) return undefined
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : ((v[v.length / 2 - 1] ?? 0) + (v[v.length / 2] ?? 0)) / 2
}
