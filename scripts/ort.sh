#!/usr/bin/env bash
# Fetches the Linux x64 CPU build of ONNX Runtime from the npm package
# onnxruntime-node (npm pack: no install scripts run), verifies its sha256,
# and caches it under .cache/ort/. Idempotent: when the cached library is
# present and verified, it does nothing and needs no network.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.30.0}"
# sha256 of bin/napi-v6/linux/x64/libonnxruntime.so.1 in onnxruntime-node@1.30.0.
ORT_SHA256="${ORT_SHA256:-ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/ort/$ORT_VERSION"
lib="$dir/libonnxruntime.so.1"

verify() { [ -f "$lib" ] && echo "$ORT_SHA256  $lib" | sha256sum --check --status; }

if verify; then
	echo "ort: ONNX Runtime $ORT_VERSION present at $lib" >&2
else
	case "$(uname -s)/$(uname -m)" in
	Linux/x86_64) ;;
	*) echo "ort: this script fetches the Linux x64 CPU build only; on $(uname -s)/$(uname -m) install ONNX Runtime >= 1.29 yourself and set ONNXRUNTIME_SHARED_LIBRARY_PATH" >&2; exit 1 ;;
	esac
	command -v npm >/dev/null || { echo "ort: npm is needed to fetch onnxruntime-node (apt-get install npm)" >&2; exit 1; }
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	echo "ort: fetching onnxruntime-node@$ORT_VERSION with npm pack" >&2
	(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
	tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	mkdir -p "$dir"
	mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.part"
	if ! echo "$ORT_SHA256  $lib.part" | sha256sum --check --status; then
		echo "ort: sha256 mismatch for $lib.part (want $ORT_SHA256); refusing to install it" >&2
		rm -f "$lib.part"
		exit 1
	fi
	mv "$lib.part" "$lib"
	echo "ort: installed ONNX Runtime $ORT_VERSION at $lib" >&2
fi
ln -sfn "$ORT_VERSION/libonnxruntime.so.1" "$root/.cache/ort/libonnxruntime.so.1"
echo "ort: export ONNXRUNTIME_SHARED_LIBRARY_PATH=$root/.cache/ort/libonnxruntime.so.1" >&2
echo "$root/.cache/ort/libonnxruntime.so.1"
