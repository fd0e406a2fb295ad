#!/usr/bin/env bash
# Idempotent setup for `npm test` and `npm run demo`: Debian packages for the lab, npm packages from the lockfile,
# and the TypeScript build. Quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the lab needs: userspace WireGuard, wg, namespaces, NAT, ping, traffic shaping, iperf3;
# miniupnpd (UPnP IGD / NAT-PMP / PCP on the port-mapping routers) with miniupnpc's upnpc to look at it;
# systemd-analyze, which checks the shipped units; chromium, which renders the hub's mesh page in a test;
# tcpdump, which scripts/bench/heal-trace.ts uses to follow pings through the tunnels.
need_cmds=(wg wireguard-go ip iptables nft ping tc iperf3 turnserver conntrack miniupnpd upnpc systemd-analyze chromium tcpdump)
pkgs=(wireguard-tools wireguard-go iproute2 iptables nftables iputils-ping iperf3 coturn conntrack miniupnpd-nftables miniupnpc systemd chromium tcpdump)
missing=()
for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages (missing: ${missing[*]})" >&2
    export DEBIAN_FRONTEND=noninteractive
    # miniupnpd asks whether to start its service at boot: no, the lab runs its own per router namespace.
    echo "miniupnpd miniupnpd/start_daemon boolean false" | debconf-set-selections
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; lab tests and the demo need root to install them (apt-get install ${pkgs[*]})" >&2
  fi
fi

# npm packages exactly as the lockfile lists them; reinstalled only when the lockfile changed.
# package.json pins rollup (a vitest dependency) through `overrides` to a version whose optional platform packages
# all exist, so the lockfile is complete and `npm ci` accepts it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (from package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

# Build (incremental, a few seconds).
npm run --silent build
