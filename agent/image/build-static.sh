#!/usr/bin/env bash
# Builds beskar7-agent as one fully static x86_64 executable: glibc linked statically
# (`crt-static`; no musl target is installable here), optimised for size, stripped.
# The agent never calls getaddrinfo (it connects to IP literals), so static glibc's NSS caveat
# does not apply. Prints the path of the binary on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-unknown-linux-gnu
# --target keeps these flags away from the host build's artefacts (target/$target/...).
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  ${CARGO:-cargo} build --locked --release -p beskar7-agent --bin beskar7-agent --target "$target" \
    --config 'profile.release.opt-level="s"' \
    --config 'profile.release.lto=true' \
    --config 'profile.release.codegen-units=1' \
    --config 'profile.release.panic="unwind"' \
    --config 'profile.release.strip=true' >&2
bin="target/$target/release/beskar7-agent"
# A dynamic executable would not start as /init of an initramfs without its loader.
if file "$bin" | grep -q 'dynamically linked'; then
  echo "build-static.sh: $bin is dynamically linked" >&2
  exit 1
fi
echo "$PWD/$bin"
