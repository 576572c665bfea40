#!/usr/bin/env bash
# Installs what ninjac needs from Debian's archive (as root, or through sudo).
# Skips apt entirely when everything is already there.
set -euo pipefail
packages=(cmake make gcc clang libclang-rt-14-dev valgrind pkg-config flex bison libopenblas-dev libjansson-dev gnuplot-nox
  gcc-aarch64-linux-gnu qemu-user)   # the ARM64 kernel tests: a cross compiler and qemu-aarch64
# PyTorch is the oracle of the tests: without recommends, or apt pulls in a desktop.
torch_packages=(python3 python3-torch python3-numpy)
missing=()
for p in "${packages[@]}" "${torch_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${packages[@]}" > /dev/null
$sudo apt-get install -y -qq --no-install-recommends "${torch_packages[@]}" > /dev/null
