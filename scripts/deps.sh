#!/usr/bin/env bash
# Installs the Debian 12 packages onecard needs, only those missing. `--fuzz` adds clang for the fuzzers.
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config clang-format
  libgtest-dev libgmock-dev libbenchmark-dev libfmt-dev libcli11-dev nlohmann-json3-dev libpcre2-dev libcpp-httplib-dev
  libnuma-dev)
if [[ "${1:-}" == "--fuzz" ]]; then packages+=(clang libclang-rt-14-dev); fi
# The client tests of `onecard serve` (tests/serve/client): curl, and node with npm for the openai client
# (npm needs ca-certificates to reach its registry). Debian's nodejs and npm only where the commands are
# missing, so that a newer node installed otherwise is kept.
packages+=(curl ca-certificates)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "onecard: installing ${missing[*]}"
sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "onecard: run as root, or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
