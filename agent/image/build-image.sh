#!/usr/bin/env bash
# `make agent-image`: the inspection image users serve at their `inspectionImageURL`:
#   $OUT/vmlinuz     Debian's signed amd64 kernel (linux-image-amd64's current version)
#   $OUT/initrd.img  an initramfs whose /init is the static beskar7-agent, with the kernel
#                    modules for network and storage hardware and ext4 (plus what they need)
#
# Needs (Debian 12): apt-get (lists present), dpkg-deb, depmod (kmod), cpio, xz-utils, file.
# No root needed except for /dev/console and /dev/null in the archive (mknod): without root
# they are left out and the agent reopens the console once it has mounted devtmpfs.
# Environment: OUT (default target/agent-image), KERNEL_PACKAGE (default: what
# linux-image-amd64 depends on), AGENT (a prebuilt static binary; default: build one).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=${OUT:-$repo/target/agent-image}
work=$out/work
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)
work=$out/work

step() { echo "agent-image: $*" >&2; }

# 1. The agent.
agent=${AGENT:-$("$repo/agent/image/build-static.sh")}
file "$agent" | grep -Eq 'statically linked|static-pie linked' || {
  echo "agent-image: $agent is not statically linked" >&2
  exit 1
}

# 2. The kernel package, unpacked without installing it.
pkg=${KERNEL_PACKAGE:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')}
[ -n "$pkg" ] || { echo "agent-image: cannot tell which kernel linux-image-amd64 depends on (apt-get update?)" >&2; exit 1; }
step "kernel package $pkg"
deb=$(ls "$work"/"$pkg"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  (cd "$work" && apt-get download "$pkg" >&2)
  deb=$(ls "$work"/"$pkg"_*.deb | head -1)
fi
rm -rf "$work/kernel" && mkdir -p "$work/kernel"
dpkg-deb -x "$deb" "$work/kernel"
version=$(ls "$work/kernel/lib/modules" | head -1)
kmods=$work/kernel/lib/modules/$version
depmod -b "$work/kernel" "$version"

# 3. The modules: every driver for network and storage hardware, ext4, and their dependencies.
#    crc32c is ext4's soft dependency (modules.softdep, `pre: crypto-crc32c`), which
#    modules.dep does not list: without it mounting COS_OEM fails with ENOENT.
#    (NIC firmware blobs are not included: drivers that need firmware files — bnx2, some
#    Broadcom/QLogic parts — do not come up.)
seeds=$(cd "$kmods" && find kernel/drivers/net/ethernet kernel/drivers/virtio kernel/drivers/nvme \
          kernel/drivers/ata kernel/drivers/scsi kernel/drivers/message/fusion kernel/fs/ext4 \
          kernel/drivers/block/virtio_blk.ko kernel/drivers/net/virtio_net.ko \
          kernel/crypto/crc32c_generic.ko kernel/arch/x86/crypto/crc32c-intel.ko \
          -name '*.ko*' 2>/dev/null | sort)
closure=$(printf '%s\n' $seeds | awk -v dep="$kmods/modules.dep" '
  BEGIN { while ((getline line < dep) > 0) { split(line, kv, ":"); deps[kv[1]] = kv[2] } }
  { want[$1] = 1 }
  END {
    changed = 1
    while (changed) {
      changed = 0
      for (m in want) { n = split(deps[m], d, " "); for (i = 1; i <= n; i++) if (!(d[i] in want)) { want[d[i]] = 1; changed = 1 } }
    }
    for (m in want) print m
  }' | sort)
stage=$work/root
rm -rf "$stage" && mkdir -p "$stage"/{dev,proc,sys,run,tmp,lib/modules/"$version"}
for m in $closure; do
  mkdir -p "$stage/lib/modules/$version/$(dirname "$m")"
  cp "$kmods/$m" "$stage/lib/modules/$version/$m"
done
cp "$kmods"/modules.builtin "$kmods"/modules.builtin.modinfo "$kmods"/modules.order "$stage/lib/modules/$version/"
depmod -b "$stage" "$version"
step "$(echo "$closure" | wc -l) modules"

# 4. /init, device nodes, the archive.
install -m 0755 "$agent" "$stage/init"
if [ "$(id -u)" = 0 ]; then
  mknod -m 600 "$stage/dev/console" c 5 1
  mknod -m 666 "$stage/dev/null" c 1 3
fi
# xz with CRC32 (the kernel's xz decoder supports no other check).
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
  | xz -T1 -6 --check=crc32 > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
cp "$work/kernel/boot/vmlinuz-$version" "$out/vmlinuz"
step "wrote $out/vmlinuz ($(stat -c %s "$out/vmlinuz") bytes) and $out/initrd.img ($(stat -c %s "$out/initrd.img") bytes), kernel $version"
