import { afterAll, beforeAll } from 'vitest'
import { createLab, type Lab, type LabSpec } from '../../scripts/lab/lab.js'
import { registerWithHub, startMesh, type MeshOptions, type MeshProcesses } from '../../scripts/lab/mesh.js'

/** A lab and the wgnat daemons running in it, for the tests of one describe block. */
export interface LabMesh {
  readonly lab: Lab
  readonly mesh: MeshProcesses
}

/** Two sites behind `easy` routers, one client each (`a` and `b`): the pair most scenarios start from. */
export const TWO_EASY_SITES: LabSpec = { sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] }

/**
 * Before the block's tests: a lab of `spec`, every client registered with the hub (so the hub knows its endpoint),
 * then the mesh started (`wgnat-server` on the hub, `wgnat-client` on every client). After them: the daemons stopped
 * and the lab destroyed, whatever happened. Read `lab` and `mesh` inside tests, not while the block is being declared.
 */
export function labMesh (spec: LabSpec, options?: MeshOptions): LabMesh {
  let lab: Lab | undefined
  let mesh: MeshProcesses | undefined
  beforeAll(async () => {
    lab = await createLab(spec)
    await registerWithHub(lab)
    mesh = startMesh(lab, options)
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('labMesh: the lab is read before beforeAll ran')
    return value
  }
  return { get lab () { return started(lab) }, get mesh () { return started(mesh) } }
}
