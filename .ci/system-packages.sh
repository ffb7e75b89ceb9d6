#!/usr/bin/env bash
# Debian packages the tests use as independent checks: cpio(1) reads the agent's initrd
# archives back, mkfs.ext4 (e2fsprogs) makes a real COS_OEM filesystem, tar(1) writes a real
# target archive. Installed only when missing, so a machine that has them pays nothing.
set -euo pipefail
missing=()
command -v cpio >/dev/null || missing+=(cpio)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
command -v tar >/dev/null || missing+=(tar)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "cpio, mkfs.ext4 and tar are present"
fi
