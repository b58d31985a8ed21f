#!/usr/bin/env bash
# Boots a Debian kernel package under qemu with a throw-away initramfs that
# holds the exporter and bpftool, creates a hash map with bpftool, runs
# `bpf-inventory-exporter dump --format json` and prints its output between
# markers. Used by tests/tests/older_kernels.rs to check the CO-RE fallbacks on
# a kernel older than the build machine's.
#   boot-dump.sh SERIES EXPORTER_BINARY WORK_DIR
# SERIES 6.1 picks the newest linux-image-6.1.0-N-cloud-amd64-unsigned,
# 6.12 the newest linux-image-6.12.N+debM-cloud-amd64-unsigned.
set -euo pipefail
series=$1 exporter=$(realpath "$2") work=$3

mkdir -p "$work"
cd "$work"
if ! ls linux-image-*.deb >/dev/null 2>&1; then
  pattern="^linux-image-${series//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+)-cloud-amd64-unsigned\$"
  pkg=$(apt-cache search --names-only "$pattern" | cut -d' ' -f1 | sort -V | tail -n 1)
  [ -n "$pkg" ] || { echo "boot-dump: no Debian kernel package matches $pattern" >&2; exit 1; }
  apt-get download -q "$pkg" >/dev/null 2>&1
fi
if [ ! -d kernel ]; then
  dpkg-deb -x linux-image-*.deb kernel
fi
vmlinuz=$(ls kernel/boot/vmlinuz-*)

root=$(mktemp -d "$work/initramfs.XXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/busybox"
for tool in sh mount mkdir cat echo poweroff sleep; do ln -s busybox "$root/bin/$tool"; done
# The binaries and every shared library they load, at the same paths.
for bin in "$exporter" "$(command -v bpftool)"; do
  cp "$bin" "$root/bin/"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t bpf bpf /sys/fs/bpf
bpftool map create /sys/fs/bpf/vm_hash type hash key 4 value 4 entries 64 name vm_hash
bpftool map update pinned /sys/fs/bpf/vm_hash key 1 0 0 0 value 1 0 0 0
echo "===STDOUT==="
bpf-inventory-exporter dump --format json 2>/tmp/stderr
echo "===EXIT $?==="
cat /tmp/stderr
echo "===END==="
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.gz

# Software emulation: nested KVM on these VMs fails to set MSRs.
timeout 300 qemu-system-x86_64 -machine accel=tcg -cpu max -smp 2 -m 1024 \
  -kernel "$vmlinuz" -initrd initramfs.gz -nographic -no-reboot \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null
