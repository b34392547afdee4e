# shellcheck shell=bash
# A minimal Debian 12 (debootstrap --variant=minbase from the Debian archive), cached: sourced by
# scripts/fresh-check (the fresh machine) and scripts/deploy-check (the base of the check's images).
#
#   . scripts/_debian_base.sh; debian_base LOGFILE     # sets BASE (the directory) and BASE_HOW
#
# The cache is $TESSERA_FRESH_CACHE (default /var/cache/tessera-fresh), keyed by suite, mirror,
# variant, package list and debootstrap's version, so a change to any of them builds a new base.
CACHE=${TESSERA_FRESH_CACHE:-/var/cache/tessera-fresh}
MIRROR=${TESSERA_FRESH_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
VARIANT=minbase
INCLUDE=""          # nothing beyond minbase: whoever uses the base installs the rest

debian_base() {
    local log=$1 key
    if ! command -v debootstrap >/dev/null; then
        echo "installing debootstrap (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null \
            || { echo "debootstrap is missing and apt-get could not install it" >&2; return 1; }
    fi
    key=$(printf '%s\n' "$SUITE" "$MIRROR" "$VARIANT" "$INCLUDE" "$(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
    BASE=$CACHE/base-$SUITE-$key
    BASE_HOW=cached
    [ -f "$BASE/.complete" ] && return 0
    echo "debootstrap $VARIANT $SUITE from $MIRROR into $BASE (cached for later runs)" >&2
    rm -rf "$BASE" "$BASE.tmp"; mkdir -p "$CACHE"
    if ! debootstrap --variant="$VARIANT" ${INCLUDE:+--include="$INCLUDE"} "$SUITE" "$BASE.tmp" "$MIRROR" > "$log" 2>&1; then
        tail -20 "$log" >&2; rm -rf "$BASE.tmp"; echo "debootstrap failed" >&2; return 1
    fi
    rm -rf "$BASE.tmp/var/cache/apt/archives/"*.deb
    # The archive's sources, as a fresh Debian 12 machine has them.
    cat > "$BASE.tmp/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $(sed -E 's#/debian/?$#/debian-security#' <<<"$MIRROR") $SUITE-security main
SOURCES
    touch "$BASE.tmp/.complete"; mv "$BASE.tmp" "$BASE"
    BASE_HOW=built
}
