#!/usr/bin/env bash
# The prepared GPU check: runs examples/gpucheck (the shipped Fashion-MNIST
# model at 28, 56 and 112 pixels, plain and guided, batch 1 and a large batch,
# WebGPU against the CPU: max abs differences and median times, one table)
# on a Linux x86-64 machine with an NVIDIA GPU and driver but no Vulkan
# loader, no Go and no network.
#
# Two steps:
#
#   scripts/gpu-check.sh bundle    (make gpu-check-bundle; here, with Go)
#       writes the bundle the GPU machine needs beside the repository into
#       $GPU_CHECK_BUNDLE (default .cache/gpu-check): the gpucheck binary and
#       ONNX Runtime's Linux x64 library (which contains the WebGPU provider),
#       both gzip-compressed, Debian's libvulkan1 .deb (the Vulkan loader,
#       from `make vulkan-debs`) and their sha256 sums; about 21 MiB, checked
#       to stay under 64 MiB.
#
#   scripts/gpu-check.sh [gpucheck flags]    (make gpu-check; there)
#       checks and unpacks the bundle into a temporary folder (the loader with
#       dpkg -x, or ar and tar where dpkg is missing), finds the NVIDIA
#       driver's Vulkan ICD file (nvidia_icd.json in the usual places, or
#       writes one for libGLX_nvidia.so.0 when only the library is there;
#       or takes the ICD file named by $GPU_CHECK_ICD, for other drivers),
#       points VK_DRIVER_FILES at it and LD_LIBRARY_PATH at the loader, and
#       runs gpucheck with -device webgpu (override with -device) under a
#       timeout; everything takes well under 8 minutes. The table goes to
#       standard output and, with the JSON results, to $GPU_CHECK_OUT
#       (default out/gpu-check). Exit status: gpucheck's (0 all compared
#       within tolerance, 2 WebGPU unavailable: the CPU table is still
#       printed, 3 a difference over tolerance), 1 when the bundle is
#       missing or broken.
#
# The bundle's binary needs glibc >= 2.34 (it is built on Debian 12). When
# the bundle travels as a copied path and .cache is a symbolic link, bundle
# into a real folder instead: GPU_CHECK_BUNDLE=out/gpu-check-bundle.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bundle="${GPU_CHECK_BUNDLE:-.cache/gpu-check}"
outdir="${GPU_CHECK_OUT:-out/gpu-check}"
limit=$((64 * 1024 * 1024))

log() { echo "gpu-check: $*" >&2; }

make_bundle() {
	command -v go >/dev/null || { log "bundle needs Go"; exit 1; }
	lib="$(./scripts/ort.sh 2>/dev/null)"
	./scripts/vulkan-debs.sh >/dev/null
	deb="$(ls .cache/vulkan/libvulkan1_*_amd64.deb | tail -1)"
	mkdir -p "$bundle"
	rm -f "$bundle"/*
	log "building examples/gpucheck"
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" -o "$bundle/gpucheck" ./examples/gpucheck
	gzip -9 "$bundle/gpucheck"
	log "compressing $(readlink -f "$lib")"
	gzip -6 -c "$lib" >"$bundle/libonnxruntime.so.1.gz"
	cp "$deb" "$bundle/"
	{
		echo "onnxruntime $(basename "$(dirname "$(readlink -f "$lib")")") (npm onnxruntime-node, linux x64)"
		echo "vulkan-loader $(basename "$deb")"
		echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD 2>/dev/null || echo unknown) with $(go version)"
	} >"$bundle/MANIFEST"
	(cd "$bundle" && sha256sum gpucheck.gz libonnxruntime.so.1.gz "$(basename "$deb")" MANIFEST >SHA256SUMS)
	size=$(du -bc "$bundle"/* | tail -1 | cut -f1)
	if [ "$size" -gt "$limit" ]; then
		log "bundle is $size bytes, over the 64 MiB budget"
		exit 1
	fi
	log "bundle $bundle: $size bytes ($((size / 1024 / 1024)) MiB); carry it with the repository"
	case "$(readlink -f "$bundle")" in
	"$root"/*) ;;
	*) log "note: $bundle resolves outside the repository (a symbolic link); if it must travel as a copied path, use GPU_CHECK_BUNDLE=out/gpu-check-bundle" ;;
	esac
}

# find_icd prints the NVIDIA Vulkan ICD file to use, writing one into $1 when
# only the driver library is present; nothing when there is no NVIDIA
# Vulkan driver.
find_icd() {
	local dir=$1 f lib
	for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
		/usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /etc/vulkan/icd.d/nvidia_icd.x86_64.json \
		/usr/local/share/vulkan/icd.d/nvidia_icd.json /usr/local/etc/vulkan/icd.d/nvidia_icd.json; do
		if [ -f "$f" ]; then echo "$f"; return; fi
	done
	f="$(find /usr/share/vulkan /etc/vulkan /usr/local/share/vulkan /usr/local/nvidia /opt -maxdepth 4 -name 'nvidia_icd*.json' 2>/dev/null | head -1 || true)"
	if [ -n "$f" ]; then echo "$f"; return; fi
	lib="$( (ldconfig -p 2>/dev/null || true) | awk '/libGLX_nvidia\.so\.0 / {print $NF; exit}')"
	if [ -z "$lib" ]; then
		lib="$(find /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia /usr/local/lib -maxdepth 3 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1 || true)"
	fi
	if [ -n "$lib" ]; then
		printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$lib" >"$dir/nvidia_icd.json"
		log "no nvidia_icd.json; wrote $dir/nvidia_icd.json for $lib"
		echo "$dir/nvidia_icd.json"
	fi
}

unpack_deb() {
	local deb=$1 dest=$2
	if command -v dpkg >/dev/null; then
		dpkg -x "$deb" "$dest"
	elif command -v ar >/dev/null; then
		local member
		member="$(ar t "$deb" | grep '^data\.tar')"
		case "$member" in
		*.xz) ar p "$deb" "$member" | tar -xJ -C "$dest" ;;
		*.zst) ar p "$deb" "$member" | zstd -dc | tar -x -C "$dest" ;;
		*) ar p "$deb" "$member" | tar -xz -C "$dest" ;;
		esac
	else
		log "neither dpkg nor ar: cannot unpack $deb"
		return 1
	fi
}

run_check() {
	if [ ! -f "$bundle/SHA256SUMS" ]; then
		log "no bundle in $bundle: run \`make gpu-check-bundle\` on a machine with Go first (see this script's header)"
		exit 1
	fi
	(cd "$bundle" && sha256sum --quiet -c SHA256SUMS) || { log "bundle $bundle fails its sha256 check"; exit 1; }
	sed 's/^/gpu-check: bundle: /' "$bundle/MANIFEST" >&2
	work="$(mktemp -d "${TMPDIR:-/tmp}/ugo-gpu-check.XXXXXX")"
	trap 'rm -rf "$work"' EXIT
	gzip -dc "$bundle/libonnxruntime.so.1.gz" >"$work/libonnxruntime.so.1"
	gzip -dc "$bundle/gpucheck.gz" >"$work/gpucheck"
	chmod +x "$work/gpucheck"
	mkdir -p "$work/vulkan"
	unpack_deb "$(ls "$bundle"/libvulkan1_*_amd64.deb | tail -1)" "$work/vulkan"
	loader_dir="$work/vulkan/usr/lib/x86_64-linux-gnu"

	log "machine: $(uname -srm), $(ldd --version 2>/dev/null | head -1), $(nproc) CPUs"
	if command -v nvidia-smi >/dev/null; then
		nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu-check: GPU: /' >&2 || true
	else
		log "no nvidia-smi on PATH"
	fi
	if (ldconfig -p 2>/dev/null || true) | grep -q 'libvulkan\.so\.1 '; then
		log "a system Vulkan loader is installed; the bundled one comes first on LD_LIBRARY_PATH"
	fi
	icd="${GPU_CHECK_ICD:-$(find_icd "$work")}"
	if [ -n "$icd" ]; then
		log "Vulkan driver: $icd ($(grep -o '"library_path"[^,}]*' "$icd" | head -1))"
		export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
	else
		log "no NVIDIA Vulkan driver found (no nvidia_icd.json, no libGLX_nvidia.so.0); in a container the NVIDIA" \
			"toolkit mounts them only when NVIDIA_DRIVER_CAPABILITIES includes graphics. WebGPU will be refused."
	fi
	export LD_LIBRARY_PATH="$loader_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export ONNXRUNTIME_SHARED_LIBRARY_PATH="$work/libonnxruntime.so.1"

	mkdir -p "$outdir"
	args=(-device webgpu -json "$outdir/results.json")
	status=0
	timeout -k 10 450 "$work/gpucheck" "${args[@]}" "$@" | tee "$outdir/table.md" || status=${PIPESTATUS[0]}
	case $status in
	0) log "done: WebGPU matches the CPU in every setting; $outdir/table.md" ;;
	2) log "done: WebGPU was refused (see DEVICE ... UNAVAILABLE above); the table has the CPU columns only" ;;
	3) log "done: some settings differ beyond tolerance (ok column **NO**)" ;;
	124 | 137) log "gpucheck ran past its time limit" ;;
	*) log "gpucheck failed with status $status" ;;
	esac
	return "$status"
}

case "${1:-}" in
bundle) make_bundle ;;
*) run_check "$@" ;;
esac
