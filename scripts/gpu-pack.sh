#!/usr/bin/env bash
# Builds, here, what scripts/gpu-check.sh runs on the lent GPU machine, and packs it into gpu-carry/ (ignored by
# git; name it in the device tool's `carry`): the onecard binary and the GPU test binaries built for sm_90 (the
# H200), the one shared library they need that the machine's image lacks (fmt), and the golden models that fit
# the 64 MiB the device tool carries. That machine has CUDA, CMake and ninja but none of the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# libstdc++ linked in: the machine's image may carry an older one (glibc 2.34 is still needed there).
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DONECARD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DONECARD_BENCH=OFF -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" >/dev/null
cmake --build build/gpu -j"$(nproc)" --target onecard backend_ops_test model_gpu_test cuda_device_test
rm -rf gpu-carry
mkdir -p gpu-carry/golden/models
stage="$(mktemp -d)"
mkdir -p "$stage/bin" "$stage/lib"
binaries=(build/gpu/onecard build/gpu/tests/backend/backend_ops_test build/gpu/tests/model/model_gpu_test
  build/gpu/tests/cuda/cuda_device_test)
cp "${binaries[@]}" "$stage/bin/"
strip "$stage"/bin/*
# Every shared library they load but the C library itself (fmt, pcre2, cpp-httplib and what it pulls in).
ldd "${binaries[@]}" | awk '$3 ~ /^\// {print $3}' | sort -u | grep -vE '/(libc|libm|ld-linux[^/]*)\.so' |
  xargs -I{} cp -L {} "$stage/lib/"
# Compressed, binaries and libraries take a quarter of their size, which leaves room for the golden models.
tar -C "$stage" -cJf gpu-carry/onecard-gpu.tar.xz bin lib
rm -rf "$stage"
# tiny-v3-bf16 (17 MiB) is left out to stay under the limit (with it and the repository the carried tree would
# be 77 MiB); model_gpu_test skips the models it cannot find.
for m in tiny-v3-f32 tiny-v3-f16-kbvb tiny-v2lite-f16; do
  cp ../shared/golden/models/$m.* gpu-carry/golden/models/
done
du -sh gpu-carry
