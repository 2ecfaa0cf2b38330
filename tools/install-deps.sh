#!/bin/sh
# Installs the Debian packages a step needs, only those that are missing, so a
# warm machine stays fast (apt-get update runs first, once, and only then).
#   tools/install-deps.sh test|bench|aarch64
set -eu
# test: the TSan build is clang's; its runtime (libclang_rt.tsan) is in
# libclang-rt-dev, and its reports name functions and globals with
# llvm-symbolizer (llvm): neither comes with clang without its recommends.
case "${1:-test}" in
  test)  pkgs="libcmocka-dev pkg-config clang libclang-rt-dev llvm" ;;
  bench) pkgs="pkg-config g++ libck-dev libglib2.0-dev libtbb-dev python3" ;;
  # aarch64: the cross compiler, its C library, and qemu-user to run what
  # it builds (tools/test-aarch64.sh).
  aarch64) pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
  *) echo "usage: $0 test|bench|aarch64" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: install these packages first:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
