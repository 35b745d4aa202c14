#!/usr/bin/env bash
# Install everything the build, the VM harness and the tests need, on a fresh
# Debian bookworm machine of this project's kind. Idempotent: each step checks
# first and does nothing when its tool is already there at the pinned version.
set -euo pipefail

RUST_KERNEL_VERSION=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.70.1

APT_PKGS=(
	linux-source-6.12
	clang lld llvm libclang-dev
	flex bison bc cpio kmod libelf-dev libssl-dev
	busybox-static btrfs-progs e2fsprogs dmsetup
	qemu-system-x86 qemu-utils
	nbdkit nbdkit-plugin-dev
	python3
)
RUST_KERNEL_PKGS=(rustc-web rust-web-src libstd-rust-web-dev rust-web-clippy rustfmt-web)

log() { printf '[deps] %s\n' "$*"; }
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
for p in "${RUST_KERNEL_PKGS[@]}"; do
	v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
	[ "$v" = "$RUST_KERNEL_VERSION" ] || missing+=("$p=$RUST_KERNEL_VERSION")
done

if [ ${#missing[@]} -gt 0 ]; then
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# bindgen for the kernel's Rust bindings, at the version 6.12 is tested with.
if ! command -v bindgen >/dev/null 2>&1 || ! bindgen --version | grep -q " $BINDGEN_VERSION\$"; then
	log "cargo install bindgen-cli $BINDGEN_VERSION"
	cargo install --locked bindgen-cli --version "$BINDGEN_VERSION"
fi
log "ok"
