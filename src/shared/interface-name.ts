/** Interface names wg-quick accepts (it takes the name from `<name>.conf`): 1-15 of these characters. */
export const IFACE_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/
