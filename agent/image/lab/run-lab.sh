#!/usr/bin/env bash
# A manual end-to-end check of `make agent-image` in QEMU (TCG, no KVM needed), not part of the
# test suite: three boots of the image with a virtio NIC (slirp DHCP) and a virtio disk against
# operator.py on the host (guest 10.0.2.2:PORT = host 127.0.0.1:PORT):
#   image   Image handoff of a 64 MiB MBR image with an ext4 COS_OEM partition; checks the disk
#           holds the image and COS_OEM holds 99_beskar7.yaml and beskar7/provider-id (debugfs)
#   kexec   Kexec handoff of a tar.gz of the same kernel and initrd whose cmdline asks for a
#           cleaning boot: checks the substituted cmdline, then the kexec'd agent cleans the
#           disk (first/last MiB of the disk and the partition), reports cleaned, powers off
# Needs qemu-system-x86, openssl, python3, e2fsprogs; ~2 minutes on 2 cores.
# Usage: agent/image/lab/run-lab.sh [IMAGE_DIR (default target/agent-image)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
images=$(cd "${1:-$here/../../../target/agent-image}" && pwd)
port=${PORT:-18443}
lab=$(mktemp -d /tmp/beskar7-agent-lab.XXXXXX)
cd "$lab"
fail() { echo "run-lab: FAIL: $*" >&2; exit 1; }
trap '[ -n "${op:-}" ] && kill "$op" 2>/dev/null; true' EXIT

# A throwaway CA and a leaf for 10.0.2.2 (what the guest calls the host).
openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -x509 -new -key ca-key.pem -subj /CN=beskar7-lab-ca -days 2 -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out leaf-key.pem
openssl req -new -key leaf-key.pem -subj /CN=lab -out leaf.csr
printf 'subjectAltName=IP:10.0.2.2\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile ext -out leaf.pem 2>/dev/null

# The Image target: MBR, partition 1 from 1 MiB, ext4 labelled COS_OEM.
python3 - <<'PY'
import struct, subprocess
part = 62 << 20
open("oem.img", "wb").truncate(part)
subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "COS_OEM", "oem.img"], check=True)
img = bytearray(64 << 20)
img[1 << 20:(1 << 20) + part] = open("oem.img", "rb").read()
img[446:462] = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 2048, part // 512)
img[510:512] = b"\x55\xaa"
open("target.img", "wb").write(img)
PY

ca=$(base64 -w0 ca.pem)
token=tOkEn_0123456789abcdefghijklmnopqrstuvwxyzAB
common="beskar7.api=https://10.0.2.2:$port beskar7.namespace=ns beskar7.host=h1 beskar7.token=$token beskar7.ca=$ca beskar7.timeout=300 BOOTIF=01-52-54-00-12-34-56"

operator() { # operator TARGET
  [ -n "${op:-}" ] && kill "$op" 2>/dev/null && wait "$op" 2>/dev/null || true
  python3 "$here/operator.py" "$port" "$1" leaf.pem leaf-key.pem > operator.log 2>&1 &
  op=$!
  sleep 1
}

boot() { # boot LOG CMDLINE…: stops when the agent parks or QEMU exits (reboot, power off)
  local log=$1; shift
  rm -f "$log"
  timeout 240 qemu-system-x86_64 -machine pc -accel tcg -smp 1 -m 512 -display none \
    -serial "file:$log" -monitor none -no-reboot \
    -kernel "$images/vmlinuz" -initrd "$images/initrd.img" -append "console=ttyS0 panic=-1 loglevel=4 $common $*" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
    -drive file=disk.raw,format=raw,if=virtio &
  local q=$!
  while kill -0 $q 2>/dev/null; do
    if grep -aq "parked;" "$log" 2>/dev/null; then kill $q; grep -a beskar7-agent "$log" >&2; fail "the agent parked"; fi
    sleep 1
  done
  wait $q || true
}

echo "run-lab: image handoff" >&2
truncate -s 128M disk.raw
operator target.img
boot image.log "beskar7.target=https://10.0.2.2:$port/target beskar7.target-digest=sha256:$(sha256sum target.img | cut -c1-64) beskar7.provider-id=b7://ns/h1/m1"
grep -q "POST /api/v1/provisioned/ns/h1" operator.log || fail "no provisioned (operator.log: $(cat operator.log))"
grep -aq "reboot: Restarting system" image.log || fail "no reboot"
# The partition table as written; the filesystem itself changed when COS_OEM was mounted.
cmp -n $((1 << 20)) disk.raw target.img || fail "the disk does not hold the image's partition table"
grep -aq "wrote $((64 << 20)) bytes, sha256:$(sha256sum target.img | cut -c1-64)" image.log || fail "the digest line"
dd if=disk.raw of=p1.img bs=1M skip=1 count=62 status=none
[ "$(debugfs -R 'cat /beskar7/provider-id' p1.img 2>/dev/null)" = "b7://ns/h1/m1" ] || fail "provider-id"
debugfs -R 'cat /99_beskar7.yaml' p1.img 2>/dev/null | grep -q "beskar7 lab bootstrap" || fail "99_beskar7.yaml"
debugfs -R 'stat /99_beskar7.yaml' p1.img 2>/dev/null | grep -q "Mode:  0600" || fail "99_beskar7.yaml mode"

echo "run-lab: kexec handoff, then a cleaning boot" >&2
mkdir -p kx && cp "$images/vmlinuz" "$images/initrd.img" kx/
# No loglevel=4 here: the kernel then prints its command line, which is what is checked (a lab
# token; never do this with real ones). The words checked come first: printk cuts long lines.
echo "kairos.config_url=BESKAR7_CONFIG_URL b7.pid=BESKAR7_PROVIDER_ID console=ttyS0 panic=-1 $common beskar7.mode=clean" > kx/cmdline
tar -C kx -czf kexec.tar.gz vmlinuz initrd.img cmdline
operator kexec.tar.gz
config_url="http://10.0.2.2:18444/api/v1/config/ns/h1/n0nce"
boot kexec.log "beskar7.handoff=kexec beskar7.target=https://10.0.2.2:$port/target beskar7.target-digest=sha256:$(sha256sum kexec.tar.gz | cut -c1-64) beskar7.provider-id=b7://ns/h1/m1 beskar7.config-url=$config_url"
grep -aq "Command line: kairos.config_url=$config_url b7.pid=b7://ns/h1/m1 " kexec.log || fail "the kexec'd cmdline"
grep -q "POST /api/v1/cleaned/ns/h1" operator.log || fail "no cleaned after the kexec"
grep -aq "reboot: Power down" kexec.log || fail "no power off"
python3 -c "
d = open('disk.raw', 'rb').read(); m = 1 << 20
assert d[:m] == bytes(m) and d[-m:] == bytes(m) and d[m:2 * m] == bytes(m), 'not wiped'
assert any(d[2 * m:-m]), 'the middle (the rest of the filesystem) should be left alone'"
echo "run-lab: all good ($lab)" >&2
