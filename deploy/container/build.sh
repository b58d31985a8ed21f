#!/usr/bin/env bash
# Builds the container image: a static release binary (glibc, crt-static),
# then `podman build` of deploy/container/Containerfile with only that binary
# in the context.
#   deploy/container/build.sh [IMAGE]    (default bpf-inventory-exporter:dev)
# CARGO_TARGET_DIR defaults to target/static, apart from the ordinary builds,
# so that a `cargo test` holding target/ can run this.
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${1:-bpf-inventory-exporter:dev}"
arch="$(uname -m)"
triple="$arch-unknown-linux-gnu"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/static}"
# RUSTFLAGS apply to the target only when --target is given, so build scripts
# and proc macros stay dynamically linked host programs.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$triple" --bin bpf-inventory-exporter
binary="$CARGO_TARGET_DIR/$triple/release/bpf-inventory-exporter"
# No program interpreter and no shared libraries: the image has neither.
if readelf --program-headers --dynamic "$binary" | grep -E 'INTERP|\(NEEDED\)'; then
  echo "build.sh: $binary is not statically linked" >&2
  exit 1
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/"
podman build --quiet --file deploy/container/Containerfile --tag "$image" "$context"
