#!/bin/bash
# provision-data-volume VOLUME_ID MOUNTPOINT: the Cinder volume VOLUME_ID,
# found by its ID (the hypervisor gives the disk the first 20 characters of
# it as serial; the device name Heat asked for is only a hint), formatted
# once and mounted. The attachment starts only after the server is ACTIVE,
# so the disk may appear after the boot: it is waited for, and a disk that
# never comes fails this unit with a reason the node's signal passes on.
set -eu
id=$1 dir=$2
disks=${PROVISION_DISKS:-/dev/disk/by-id}
wait=${PROVISION_VOLUME_WAIT:-600}
serial=${id:0:20}
find_disk() {
  local d
  for d in "$disks"/*"$serial"*; do
    case $d in *-part*) continue ;; esac
    [ -e "$d" ] && { echo "$d"; return 0; }
  done
  return 1
}
start=$(date +%s)
until dev=$(find_disk); do
  if [ $(( $(date +%s) - start )) -ge "$wait" ]; then
    echo "volume $id: no disk with serial $serial under $disks after $wait s" >&2
    exit 1
  fi
  sleep 2
done
mkdir -p "$dir"
if mountpoint -q "$dir"; then exit 0; fi
if ! blkid "$dev" >/dev/null 2>&1; then
  echo "volume $id: $dev is blank; making an ext4 file system"
  mkfs.ext4 -q -L provision-data "$dev"
fi
mount "$dev" "$dir"
echo "volume $id: $dev mounted on $dir"
