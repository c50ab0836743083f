#!/usr/bin/env bash
# Downloads Debian's Vulkan loader (libvulkan1) and Mesa's Vulkan drivers
# (mesa-vulkan-drivers, which include the lavapipe software driver), amd64,
# as .deb files into .cache/vulkan/ with `apt-get download` (no install, no
# root). The onnx tests unpack them to check the WebGPU provider with a
# loader but no driver, and with lavapipe; scripts/gpu-check.sh carries the
# loader to a GPU machine that has none. Idempotent: with the files present
# it does nothing and needs no network.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/vulkan"
mkdir -p "$dir"
for pkg in libvulkan1 mesa-vulkan-drivers; do
	if compgen -G "$dir/${pkg}_*_amd64.deb" >/dev/null; then
		continue
	fi
	command -v apt-get >/dev/null || { echo "vulkan-debs: apt-get is needed to download $pkg" >&2; exit 1; }
	echo "vulkan-debs: downloading $pkg:amd64" >&2
	if ! (cd "$dir" && apt-get download -q "$pkg:amd64" >/dev/null 2>&1); then
		echo "vulkan-debs: apt-get download $pkg:amd64 failed (run apt-get update first?)" >&2
		exit 1
	fi
done
ls "$dir"/*.deb
