#!/usr/bin/env bash
# The arm64 path, proven end to end on an x86 machine: a Debian bookworm arm64 root built with
# debootstrap, run under qemu-user (binfmt_misc), this checkout installed with the README's
# command, the demo run to a score on a first start (numba compiles), then the installation's
# build step (silentgate build-kernels), starts timed on the compiled kernels, and the demo again.
#
# Not part of CI: it takes tens of minutes (qemu-user runs arm64 code about 10-15x slower than
# the host). Run as root, niced, from anywhere:
#
#     sudo nice -n 19 bench/arm64_proof.sh            # root in /var/tmp/silentgate-arm64
#     ARM64_ROOT=/srv/arm64 bench/arm64_proof.sh       # elsewhere; an existing root is reused
#     bench/arm64_proof.sh root                         # only build the Debian root
#
# Needs: debootstrap, qemu-user-static and binfmt-support (apt-get install -y debootstrap
# qemu-user-static binfmt-support) and network access to deb.debian.org and PyPI. Every step's
# wall time and the demo's score go to stdout and to $ARM64_ROOT/proof.log; docs/installation.md
# quotes the last run.
set -euo pipefail

ROOT=${ARM64_ROOT:-/var/tmp/silentgate-arm64}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEST=/opt/silentgate-src
LOG=$ROOT/proof.log
HOST_CA=/etc/ssl/certs/host-ca-certificates.crt
# Raspberry Pi OS Lite comes with python3; the README adds python3-venv and the installation's
# build step g++ and python3-dev (docs/installation.md). Nothing else is installed by hand.
BASE_PACKAGES=python3,ca-certificates

say() { printf '%s\n' "$*" | tee -a "$LOG"; }

timed() { # timed LABEL COMMAND...: runs it, says how long it took
    local label=$1 start end
    shift
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    say "$(awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%-44s %8.1f s", l, e - s }')"
}

apt_in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "$@" >>"$LOG.apt" 2>&1
}

in_root() { # a login shell in the arm64 root, as the unprivileged user "pi"
    chroot --userspec=pi:pi "$ROOT" /usr/bin/env -i HOME=/home/pi \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 TERM=dumb PIP_CERT=$HOST_CA \
        SSL_CERT_FILE=$HOST_CA /bin/bash -c "cd $DEST && $*"
}

binfmt() {
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64
    fi
}

make_root() {
    if [ -e "$ROOT/.silentgate-root" ]; then
        return
    fi
    mkdir -p "$ROOT"
    timed "debootstrap bookworm arm64" debootstrap --arch=arm64 --variant=minbase \
        --include="$BASE_PACKAGES" bookworm "$ROOT" "$MIRROR"
    chroot "$ROOT" useradd --create-home --shell /bin/bash pi
    touch "$ROOT/.silentgate-root"
}

mounts() {
    for fs in proc sys dev dev/pts; do
        mountpoint -q "$ROOT/$fs" || mount --bind "/$fs" "$ROOT/$fs"
    done
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # The host's certificate authorities: a TLS-inspecting proxy that the host trusts is then
    # trusted inside too (pip reaches PyPI through it).
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT$HOST_CA"
}

unmount() {
    for fs in dev/pts dev sys proc; do
        mountpoint -q "$ROOT/$fs" && umount -l "$ROOT/$fs" || true
    done
}

copy_source() {
    rm -rf "${ROOT:?}$DEST"
    mkdir -p "$ROOT$DEST"
    # The checkout as committed plus what is not yet: what a clone would hold, no venv.
    tar -C "$SRC" --exclude=.venv --exclude=.git --exclude='__pycache__' --exclude='*.so' \
        --exclude='.mypy_cache' --exclude='.ruff_cache' --exclude='.hypothesis' -cf - . |
        tar -C "$ROOT$DEST" -xf -
    chroot "$ROOT" chown -R pi:pi "$DEST"
}

demo() { # demo LABEL: the demo for 30 s of scenario after READY, its summary lines kept
    local out=$ROOT/tmp/demo-$1.txt
    timed "demo --duration 30 ($1)" in_root ".venv/bin/silentgate demo --duration 30 > /tmp/demo-$1.txt 2>&1"
    grep -E '^# (scored|  |.*events received|kernels|daemon ready)' "$out" | tee -a "$LOG" || true
}

main() {
    mkdir -p "$ROOT"
    : >"$LOG"
    say "# silentgate arm64 proof, $(date -u +'%Y-%m-%d %H:%M UTC'), host $(uname -m), $(nproc) cores"
    binfmt
    make_root
    trap unmount EXIT
    mounts
    say "# root: $(chroot "$ROOT" dpkg --print-architecture), $(chroot "$ROOT" python3 --version)"
    copy_source
    timed "apt-get install python3-venv (README)" apt_in_root python3-venv
    timed "README: venv + pip install -e '.[demo]'" \
        in_root "python3 -m venv .venv && .venv/bin/pip install -q -e '.[demo]'"
    say "# venv: $(du -sm "$ROOT$DEST/.venv" | cut -f1) MB"
    demo first-start-jit
    timed "apt-get install g++ python3-dev (build step)" apt_in_root g++ python3-dev
    timed "silentgate build-kernels" in_root ".venv/bin/silentgate build-kernels"
    in_root ".venv/bin/python -m bench.startup --installed --starts 3" | tee -a "$LOG"
    demo compiled
}

case "${1:-all}" in
root) binfmt && make_root ;; # only the Debian root, e.g. ahead of a later run
all) main ;;
*) echo "usage: $0 [root|all]" >&2 && exit 2 ;;
esac
