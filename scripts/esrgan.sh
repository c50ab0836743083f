#!/usr/bin/env bash
# Fetches UpscalerJS's @upscalerjs/esrgan-slim (MIT) with npm pack (no
# install scripts run), verifies the tarball's sha256, caches it under
# .cache/esrgan-slim/, and converts its four TensorFlow.js layers models
# (x2, x3, x4, x8) to ONNX with tools/esrgan/convert.py, into
# testdata/models/esrgan_slim_x{2,3,4,8}.onnx (the conversion is
# deterministic: the files equal the committed ones). With "goldens" it
# also rewrites testdata/esrgan/ with tools/esrgan/reference.py; with
# "eval" it prints the restoration table of tools/esrgan/evaluate.py.
set -euo pipefail

PKG_VERSION="1.0.0"
# sha256 of upscalerjs-esrgan-slim-1.0.0.tgz as the npm registry serves it
# (its sha1 there: 4cb9ea10441ce556f2f8c621c1771a101a27a702).
PKG_SHA256="b53070ff01363e74d33138106dcc72b58d341c9fb7e8fd648554a4e7744142b5"
PY="${PYTHON:-/usr/bin/python3}"

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/esrgan-slim/$PKG_VERSION"
tgz="$dir/upscalerjs-esrgan-slim-$PKG_VERSION.tgz"

verify() { [ -f "$tgz" ] && echo "$PKG_SHA256  $tgz" | sha256sum --check --status; }

if ! verify; then
	command -v npm >/dev/null || { echo "esrgan: npm is needed to fetch @upscalerjs/esrgan-slim (apt-get install npm)" >&2; exit 1; }
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	echo "esrgan: fetching @upscalerjs/esrgan-slim@$PKG_VERSION with npm pack" >&2
	(cd "$tmp" && npm pack --silent "@upscalerjs/esrgan-slim@$PKG_VERSION" >/dev/null)
	if ! echo "$PKG_SHA256  $tmp/upscalerjs-esrgan-slim-$PKG_VERSION.tgz" | sha256sum --check --status; then
		echo "esrgan: sha256 mismatch for the fetched tarball (want $PKG_SHA256); refusing to use it" >&2
		exit 1
	fi
	mkdir -p "$dir"
	mv "$tmp/upscalerjs-esrgan-slim-$PKG_VERSION.tgz" "$tgz"
fi
rm -rf "$dir/package"
tar -xzf "$tgz" -C "$dir"
for s in 2 3 4 8; do
	"$PY" "$root/tools/esrgan/convert.py" "$dir/package/models/x$s/model.json" "$root/testdata/models/esrgan_slim_x$s.onnx" \
		--scale "$s" --source "@upscalerjs/esrgan-slim@$PKG_VERSION models/x$s/model.json"
done
(cd "$root" && sha256sum testdata/models/esrgan_slim_x*.onnx)
case "${1:-}" in
goldens) "$PY" "$root/tools/esrgan/reference.py" goldens "$dir/package/models" "$root/testdata/esrgan" ;;
eval) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" "$root/tools/esrgan/evaluate.py" "$dir/package" ;;
esac
