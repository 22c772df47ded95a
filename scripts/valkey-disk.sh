#!/usr/bin/env bash
# The Valkey VMs' disk: Debian bookworm with Valkey (bookworm-backports) and cloud-init, built here
# from Debian packages, as a qcow2 disk and as a KubeVirt containerDisk (an OCI image holding the
# qcow2 under /disk/, owned by uid 107, qemu in virt-launcher).
#
#   scripts/valkey-disk.sh build       build/vm/disk.qcow2 + build/vm/valkey-vm.oci.tar (cached)
#   scripts/valkey-disk.sh push REF    copy the containerDisk to a registry (REF: host/repo:tag;
#                                      plain HTTP allowed; credentials: REGISTRY_AUTH_FILE)
#   scripts/valkey-disk.sh key         the cache key (sha256 of this script and valkey-vm/, its
#                                      README aside)
#
# Layout (MBR, booted by the BIOS: KubeVirt's default firmware, and QEMU's here):
#   partition 1  FAT16 "BOOT" 128 MiB: SYSLINUX, the kernel and the initrd (valkey-vm/syslinux.cfg)
#   partition 2  ext4 "root": the root file system (kernel command line root=LABEL=root)
# Nothing here needs a loop device or a mount: mkfs.ext4 -d fills the file system from a folder,
# mtools and syslinux write the FAT partition as a file, sfdisk partitions the image file.
#
# The result is cached in ~/.cache/salespipeline/valkey-disk-<key>/ (a build costs about 2 minutes:
# mmdebstrap ~50 s, compression ~15 s); build/vm/ holds hard links to it. The key covers the
# package list, not the archive's state: a new Debian point release is picked up when the key
# changes (or after `rm -rf ~/.cache/salespipeline/valkey-disk-*`).
set -euo pipefail
work=
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
kit=$top/valkey-vm
out_dir=$top/build/vm
suite=bookworm
disk_size_mib=2048
boot_size_mib=128
keep_builds=3

log() { printf '[valkey-disk] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cache_key() {
  (cat "$0"; find "$kit" -type f ! -name README.md -print0 | sort -z | xargs -0 sha256sum |
    sed "s|$kit/||") |
    sha256sum | cut -c1-16
}

# One "deb URI SUITE main" line per suite the image needs, with the URIs this machine's apt
# already uses (apt-cache policy lists every configured index, whatever the sources format).
mirror_lines() {
  local s uri
  for s in "$suite" "$suite-updates" "$suite-security" "$suite-backports"; do
    uri=$(apt-cache policy | awk -v s="$s/main" '$3 == s && $4 == "amd64" {print $2; exit}')
    [ -n "$uri" ] || die "apt has no '$s main' source on this machine (scripts/deps.sh apt adds backports)"
    printf 'deb %s %s main\n' "$uri" "$s"
  done
}

packages() { grep -v '^#' "$kit/packages.txt" | xargs | tr ' ' ','; }

# The root file system into $1/root, the kernel and initrd into $1/boot.
make_rootfs() {
  local work=$1 lines
  mkdir -p "$work/boot"
  mapfile -t lines < <(mirror_lines)
  # Documentation and translations are not needed in a VM nobody logs into (copyrights stay).
  mmdebstrap --mode=root --variant=minbase --include="$(packages)" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook="sync-in $kit/rootfs /" \
    --customize-hook='chroot "$1" systemctl disable valkey-server.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service' \
    --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Package} \${Version}\n' > '$work/packages.lock'" \
    --customize-hook="mv \"\$1\"/boot/vmlinuz-* '$work/boot/vmlinuz' && mv \"\$1\"/boot/initrd.img-* '$work/boot/initrd.img'" \
    --customize-hook='rm -f "$1"/vmlinuz* "$1"/initrd.img* && : > "$1/etc/machine-id"' \
    "$suite" "$work/root" "${lines[@]}" >&2
  # Valkey must not start before cloud-init gave it the operator's configuration.
  [ ! -e "$work/root/etc/systemd/system/multi-user.target.wants/valkey-server.service" ] ||
    die "valkey-server.service is still enabled in the image"
}

# The FAT boot partition as a file: SYSLINUX with the kernel and initrd.
make_boot_partition() {
  local work=$1 img=$1/boot.part
  mkfs.vfat -F 16 -n BOOT -C "$img" $((boot_size_mib * 1024)) >/dev/null
  mcopy -i "$img" "$work/boot/vmlinuz" ::/vmlinuz
  mcopy -i "$img" "$work/boot/initrd.img" ::/initrd.img
  mcopy -i "$img" "$kit/syslinux.cfg" ::/syslinux.cfg
  syslinux --install "$img"
}

make_disk() {
  local work=$1 raw=$1/disk.raw root_start
  truncate -s "${disk_size_mib}M" "$raw"
  printf 'label: dos\nstart=1MiB, size=%dMiB, type=6, bootable\ntype=83\n' "$boot_size_mib" |
    sfdisk -q "$raw"
  root_start=$(sfdisk -J "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][1]["start"])')
  make_boot_partition "$work"
  dd if="$work/boot.part" of="$raw" bs=1M seek=1 conv=notrunc status=none
  # SYSLINUX's MBR code (440 bytes, the partition table stays): boots the active partition.
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
  mkfs.ext4 -q -F -L root -E offset=$((root_start * 512)) -d "$work/root" "$raw" \
    $(((disk_size_mib * 1048576 - root_start * 512) / 1024))k
  qemu-img convert -c -O qcow2 "$raw" "$work/out/disk.qcow2"
}

# FROM scratch + ADD --chown=107:107 disk.qcow2 /disk/, in a storage of its own (no shared state
# with other image builds), written as an OCI archive.
make_container_disk() {
  local work=$1 key=$2 ctr store=(--root "$1/storage" --runroot "$1/run" --storage-driver vfs)
  ctr=$(buildah "${store[@]}" from scratch)
  buildah "${store[@]}" add --chown 107:107 "$ctr" "$work/out/disk.qcow2" /disk/ >/dev/null
  buildah "${store[@]}" config --label org.opencontainers.image.title=valkey-vm \
    --label org.opencontainers.image.description="KubeVirt containerDisk: Debian $suite, Valkey, cloud-init" \
    --label "sales.blackfriday.dev/valkey-disk-key=$key" "$ctr"
  buildah "${store[@]}" commit -q --format oci "$ctr" "localhost/salespipeline/valkey-vm:$key" >/dev/null
  buildah "${store[@]}" push -q "localhost/salespipeline/valkey-vm:$key" \
    "oci-archive:$work/out/valkey-vm.oci.tar:localhost/salespipeline/valkey-vm:$key"
  buildah "${store[@]}" rm "$ctr" >/dev/null
  buildah "${store[@]}" rmi -a -f >/dev/null 2>&1 || true
}

link_outputs() {
  local src=$1 f
  mkdir -p "$out_dir"
  for f in disk.qcow2 valkey-vm.oci.tar packages.lock build.json; do
    ln -f "$src/$f" "$out_dir/$f" 2>/dev/null || cp -f "$src/$f" "$out_dir/$f"
  done
}

build() {
  [ "$(id -u)" = 0 ] || die "needs root (mmdebstrap builds the root file system in a chroot)"
  local key dest t0
  key=$(cache_key)
  dest=$cache/valkey-disk-$key
  mkdir -p "$cache"
  exec 9>"$cache/valkey-disk.lock"
  flock 9   # another checkout may be building the same disk
  if [ -f "$dest/build.json" ]; then
    link_outputs "$dest"
    log "cached: $dest"
    return
  fi
  t0=$(date +%s)
  work=$(mktemp -d "$cache/valkey-disk-tmp.XXXXXX")
  trap '[ -z "$work" ] || rm -rf "$work"' EXIT
  mkdir -p "$work/out"
  log "building $key: mmdebstrap $suite ($(packages))"
  make_rootfs "$work"
  local t_root=$(($(date +%s) - t0))
  make_disk "$work"
  make_container_disk "$work" "$key"
  cp "$work/packages.lock" "$work/out/"
  python3 - "$work/out" "$key" "$t_root" "$(($(date +%s) - t0))" "$(du -sm "$work/root" | cut -f1)" <<'EOF'
import json, os, sys
out, key, t_root, t_all, root_mib = sys.argv[1:]
sizes = {f: os.path.getsize(os.path.join(out, f)) for f in ("disk.qcow2", "valkey-vm.oci.tar")}
json.dump({"key": key, "rootfs_seconds": int(t_root), "build_seconds": int(t_all),
           "rootfs_mib": int(root_mib), "bytes": sizes}, open(os.path.join(out, "build.json"), "w"), indent=1)
EOF
  rm -rf "$dest" && mv "$work/out" "$dest"
  # Keep the newest few builds (several checkouts may differ), drop the rest.
  ls -dt "$cache"/valkey-disk-[0-9a-f]* 2>/dev/null | tail -n +$((keep_builds + 1)) | xargs -r rm -rf
  link_outputs "$dest"
  log "built $dest in $(($(date +%s) - t0)) s: $(cat "$dest/build.json" | tr -d '\n ')"
}

push() {
  local ref=${1:?usage: $0 push HOST/REPO:TAG}
  [ -f "$out_dir/valkey-vm.oci.tar" ] || build
  # Plain HTTP for a registry on this machine or the cluster's private network (Zot, distribution).
  skopeo copy --quiet --dest-tls-verify=false "oci-archive:$out_dir/valkey-vm.oci.tar" "docker://$ref"
  log "pushed $ref"
}

case "${1:-}" in
  build) build ;;
  push) shift; push "$@" ;;
  key) cache_key ;;
  *) echo "usage: $0 build | push HOST/REPO:TAG | key" >&2; exit 2 ;;
esac
