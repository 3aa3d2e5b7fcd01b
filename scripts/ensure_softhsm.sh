#!/usr/bin/env bash
# Installs SoftHSM2 (Debian package softhsm2) when its PKCS#11 module is missing,
# so the PKCS#11 signer tests run against a real token. Non-interactive; needs
# root (or sudo) and Debian's package archive. Prints the module path on success.
# Exit 0 when the module is present afterwards, 1 when it could not be installed
# (the PKCS#11 tests then skip with a message).
set -u

find_module() {
    for candidate in \
        "${SOFTHSM2_MODULE:-}" \
        /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so; do
        if [ -n "$candidate" ] && [ -f "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if find_module; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_softhsm: apt-get not available; cannot install softhsm2" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure_softhsm: not root and no passwordless sudo; cannot install softhsm2" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
{
    $SUDO apt-get update -q &&
    $SUDO apt-get install -y -q --no-install-recommends softhsm2
} >&2 || {
    echo "ensure_softhsm: apt-get install softhsm2 failed" >&2
    exit 1
}

find_module || { echo "ensure_softhsm: softhsm2 installed but module not found" >&2; exit 1; }
