#!/usr/bin/env bash
# Boots a Debian kernel package under qemu with a throw-away initramfs that
# holds the exporter, bpftool and the test fixture object. Inside the guest:
# loads the fixture with bpftool (programs and maps pinned, one iterator link
# where the kernel has links), fills its hash map, runs the iterator twice
# with run statistics on, then prints, each between markers,
# `bpf-inventory-exporter dump --format json`, `bpftool -j prog|map|link show`
# `bpf-inventory-exporter check`, `pin` and `cat` of the pinned files, and the
# node's posture as the guest reads it (sysctls, mountinfo, securityfs, the
# package's kernel config copied to /boot; a bpffs mounted with
# delegate_cmds=any, which kernels before 6.9 accept and ignore).
# With POSTURE_SWITCH=1 in the environment, the guest also runs `serve`,
# switches kernel.unprivileged_bpf_disabled between 2 and 0 (never to 1: that
# holds until reboot) and prints /metrics before and after.
# With EVENT_KID=<path of bpf-event-kid>, the guest also follows events with
# `bpf-inventory-exporter events --format json`, then runs the kid (it loads
# three programs, unloads one at once, holds two until its stdin closes) and
# prints its pid and programs, `bpftool -j prog show` while it holds them, and
# the events once the kid is gone. With ONLINE_CPU=N as well, the guest then
# onlines CPU N (offline at boot: give e.g. QEMU_SMP 4 and KERNEL_ARGS
# maxcpus=2) while `events` runs, and waits for its warning about it.
# KERNEL_ARGS are appended to the kernel's command line.
# tests/tests/older_kernels.rs compares them.
#   [POSTURE_SWITCH=1] [EVENT_KID=PATH [ONLINE_CPU=N]] [KERNEL_ARGS=...] boot-guest.sh SERIES EXPORTER FIXTURE_OBJECT WORK_DIR [QEMU_SMP]
# SERIES 5.10 picks the newest linux-image-5.10.0-N-cloud-amd64-unsigned of
# Debian bullseye (a private apt state under WORK_DIR: the host's sources stay
# as they are), 6.1 the newest linux-image-6.1.0-N-cloud-amd64-unsigned and
# 6.12 the newest linux-image-6.12.N+debM-cloud-amd64-unsigned of the host's.
# QEMU_SMP defaults to "2"; e.g. "2,maxcpus=4" gives more possible (4) than
# online CPUs (2) on 5.10 and 6.1 (6.12's x86 topology code counts 2 possible).
set -euo pipefail
series=$1 exporter=$(realpath "$2") fixture=$(realpath "$3") work=$4 smp=${5:-2}

mkdir -p "$work"
work=$(realpath "$work")
cd "$work"
apt_opts=()
if [ "$series" = 5.10 ]; then
  state=$work/apt
  mkdir -p "$state"/{lists/partial,archives/partial,cache,sources.list.d}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" \
    > "$state/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=$state/sources.list.d"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o "Dir::Cache::Archives=$state/archives")
fi
# Concurrent boots of one series share the download.
exec 9>"$work/.lock"
flock 9
if ! ls linux-image-*.deb >/dev/null 2>&1; then
  if [ "$series" = 5.10 ]; then apt-get "${apt_opts[@]}" update -qq >/dev/null; fi
  pattern="^linux-image-${series//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+)-cloud-amd64-unsigned\$"
  pkg=$(apt-cache "${apt_opts[@]}" search --names-only "$pattern" | cut -d' ' -f1 | sort -V | tail -n 1)
  [ -n "$pkg" ] || { echo "boot-guest: no Debian kernel package matches $pattern" >&2; exit 1; }
  apt-get "${apt_opts[@]}" download -q "$pkg" >/dev/null 2>&1
fi
if [ ! -d kernel ]; then
  dpkg-deb -x linux-image-*.deb kernel
fi
flock -u 9
vmlinuz=$(ls kernel/boot/vmlinuz-*)

root=$(mktemp -d "$work/initramfs.XXXX")
trap 'rm -rf "$root" "$root.gz"' EXIT
mkdir -p "$root"/{bin,boot,dev,proc,sys,tmp}
cp /bin/busybox "$root/bin/busybox"
for tool in sh mount mkdir cat echo poweroff sleep ls grep uname ip wget kill mkfifo seq; do ln -s busybox "$root/bin/$tool"; done
# The kernel config where the exporter looks when there is no /proc/config.gz
# (Debian's kernels have none).
cp kernel/boot/config-* "$root/boot/"
if [ -n "${POSTURE_SWITCH:-}" ]; then touch "$root/posture-switch"; fi
if [ -n "${ONLINE_CPU:-}" ]; then echo "$ONLINE_CPU" > "$root/online-cpu"; fi
if [ -n "${EVENT_KID:-}" ]; then
  # Stripped: the debug build is mostly debug info, and the initramfs lives in guest memory.
  strip -o "$root/bin/bpf-event-kid" "$EVENT_KID"
fi
cp "$fixture" "$root/fixture.bpf.o"
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
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security
mkdir -p /tmp/tokenfs
echo 1 > /proc/sys/kernel/bpf_stats_enabled
section() {
  name=$1; shift
  echo "===BEGIN $name==="
  "$@" 2>/tmp/stderr
  echo "===END $name $?==="
  cat /tmp/stderr
}
load_fixture() (
  set -e
  # Both programs and every map pinned; the hash map gets three entries.
  bpftool prog loadall /fixture.bpf.o /sys/fs/bpf/fx pinmaps /sys/fs/bpf/fxmaps
  for k in 1 2 3; do
    bpftool map update pinned /sys/fs/bpf/fxmaps/fixture_hash key $k 0 0 0 value $k 0 0 0 0 0 0 0
  done
  # A second copy whose first program is linked as an iterator, run twice.
  bpftool iter pin /fixture.bpf.o /sys/fs/bpf/fxiter
  cat /sys/fs/bpf/fxiter /sys/fs/bpf/fxiter
)
section fixture load_fixture
section tokenfs mount -t bpf -o delegate_cmds=any bpf /tmp/tokenfs
section cpus cat /sys/devices/system/cpu/possible /sys/devices/system/cpu/online
section dump bpf-inventory-exporter dump --format json
# The posture as the guest reads it, in the state the dump saw.
section sysctls cat /proc/sys/kernel/unprivileged_bpf_disabled /proc/sys/kernel/bpf_stats_enabled \
  /proc/sys/net/core/bpf_jit_enable /proc/sys/net/core/bpf_jit_harden /proc/sys/net/core/bpf_jit_kallsyms \
  /proc/sys/net/core/bpf_jit_limit
section mountinfo cat /proc/self/mountinfo
section lsm cat /sys/kernel/security/lsm
section lockdown cat /sys/kernel/security/lockdown
section kconfig grep -E '^(# )?CONFIG_(BPF_JIT_ALWAYS_ON|BPF_UNPRIV_DEFAULT_OFF|BPF_LSM|DEBUG_INFO_BTF|BPF_PRELOAD|BPF_SYSCALL|BPF_JIT)[= ]' "/boot/config-$(uname -r)"
section prog bpftool -j prog show
section map bpftool -j map show
section link bpftool -j link show
section check bpf-inventory-exporter check
# pin, then read what it pinned (links.debug only where the kernel has iter/bpf_link).
section pin bpf-inventory-exporter pin --dir /sys/fs/bpf/inventory
section pinned_files ls -1 /sys/fs/bpf/inventory
section pinned_maps cat /sys/fs/bpf/inventory/maps.debug
section pinned_progs cat /sys/fs/bpf/inventory/progs.debug
if [ -e /bin/bpf-event-kid ]; then
  # Each step waits for the one before it (a TCG guest is slow), at most 2 minutes.
  until_true() {
    for i in $(seq 1 240); do
      "$@" && return 0
      sleep 0.5
    done
    return 1
  }
  lines_at_least() { [ "$(grep -c . "$2")" -ge "$1" ]; }
  events_start() {
    bpf-inventory-exporter events --format json >/tmp/events.json 2>/tmp/events.log &
    events=$!
    until_true grep -q 'following BPF program loads and unloads' /tmp/events.log || { cat /tmp/events.log >&2; return 1; }
  }
  # The kid's pid, then its `<id> <tag>` lines; returns once the exporter
  # wrote the four events of the kid's start (so it read them while the kid lived).
  kid_start() {
    mkfifo /tmp/kid.in
    # Before 5.11 a program's memory counts against RLIMIT_MEMLOCK (64 KiB
    # here); bpftool and the exporter raise it themselves, the kid does not.
    (ulimit -l unlimited && exec bpf-event-kid </tmp/kid.in >/tmp/kid.out 2>/tmp/kid.err) &
    kid=$!
    exec 8>/tmp/kid.in
    echo go >&8
    until_true lines_at_least 3 /tmp/kid.out || { cat /tmp/kid.err >&2; return 1; }
    until_true lines_at_least 4 /tmp/events.json || { cat /tmp/events.log >&2; return 1; }
    echo "$kid"
    cat /tmp/kid.out
  }
  # Its stdin closed, the kid unloads the other two and exits.
  kid_stop() {
    exec 8>&-
    wait "$kid"
  }
  events_stop() {
    until_true lines_at_least 6 /tmp/events.json
    kill "$events"
    wait "$events"
  }
  section events_start events_start
  section events_kid kid_start
  section events_bpftool bpftool -j prog show
  section events_kid_exit kid_stop
  # A CPU onlined now has no ring: `events` says so (it checks every 10 s).
  cpu_online() {
    until_true lines_at_least 6 /tmp/events.json
    echo 1 > "/sys/devices/system/cpu/cpu$(cat /online-cpu)/online"
    cat /sys/devices/system/cpu/online
    until_true grep -q 'came online after' /tmp/events.log || { cat /tmp/events.log >&2; return 1; }
  }
  if [ -e /online-cpu ]; then section events_cpu_online cpu_online; fi
  section events_stop events_stop
  section events_log cat /tmp/events.log
  section events cat /tmp/events.json
fi
if [ -e /posture-switch ]; then
  ip link set lo up
  bpf-inventory-exporter serve --listen 127.0.0.1:10435 2>/tmp/serve.log &
  serve=$!
  ready() (
    for i in $(seq 1 120); do
      wget -q -O /dev/null http://127.0.0.1:10435/readyz && exit 0
      sleep 1
    done
    cat /tmp/serve.log >&2
    exit 1
  )
  # 2 -> 0 or 0 -> 2; anything else (1: off until reboot) is left alone.
  switch() (
    case $(cat /proc/sys/kernel/unprivileged_bpf_disabled) in
      2) echo 0 > /proc/sys/kernel/unprivileged_bpf_disabled ;;
      0) echo 2 > /proc/sys/kernel/unprivileged_bpf_disabled ;;
      *) echo "unprivileged_bpf_disabled is neither 0 nor 2: not switched" >&2; exit 1 ;;
    esac
  )
  # The node series of one scrape (the whole page is long for a serial console).
  node_series() {
    wget -q -O - http://127.0.0.1:10435/metrics | grep -E '^(bpf_node_|bpf_fs_info|process_start_time_seconds)'
  }
  section serve_ready ready
  section unpriv_before cat /proc/sys/kernel/unprivileged_bpf_disabled
  section metrics_before node_series
  section unpriv_switch switch
  section unpriv_after cat /proc/sys/kernel/unprivileged_bpf_disabled
  section metrics_after node_series
  kill "$serve"
fi
echo "===DONE==="
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$root.gz"

# Software emulation: nested KVM on these VMs fails to set MSRs.
timeout 300 qemu-system-x86_64 -machine accel=tcg -cpu max -smp "$smp" -m 1024 \
  -kernel "$vmlinuz" -initrd "$root.gz" -nographic -no-reboot \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init ${KERNEL_ARGS:-}" </dev/null
