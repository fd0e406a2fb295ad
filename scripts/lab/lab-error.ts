import { WgnatError, UsageError } from '../../src/shared/errors.js'

/** Something in the lab failed (a command, a namespace, wireguard-go). */
export class LabError extends WgnatError {}

/** The lab spec or a CLI option is invalid (exit 64 from the CLI). */
export class LabSpecError extends UsageError {}

/** The kernel cannot do what `lab.netem` was asked (no sch_netem, so no delay emulation). */
export class NetemUnsupportedError extends LabError {}
