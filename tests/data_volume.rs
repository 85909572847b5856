//! The manager's data volume script (templates/nodes/data-volume.sh), run
//! for real: a disk file named as the hypervisor names a Cinder volume
//! (`virtio-` and the first 20 characters of its ID), found by that ID,
//! formatted once with mkfs.ext4 and mounted; mounted again without being
//! formatted; and a volume that never appears fails with a reason. Mounting
//! needs root and loop devices; without them the test says so and stops.
//! (The local cloud has no Cinder, so no booted node has a volume.)

use std::path::Path;
use std::process::{Command, Output};

const SCRIPT: &str = include_str!("../templates/nodes/data-volume.sh");
const VOLUME_ID: &str = "3f0c5d2a-9b1e-4c7d-8a6f-2e4b1c9d7a55";

fn can_mount() -> bool {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    root && Path::new("/dev/loop-control").exists()
}

fn run(dir: &Path, disks: &Path, mnt: &Path, wait: u32) -> Output {
    let script = dir.join("data-volume.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    Command::new("bash")
        .arg(&script)
        .arg(VOLUME_ID)
        .arg(mnt)
        .env("PROVISION_DISKS", disks)
        .env("PROVISION_VOLUME_WAIT", wait.to_string())
        .output()
        .unwrap()
}

fn umount(mnt: &Path) {
    let _ = Command::new("umount").arg(mnt).status();
}

#[test]
fn the_volume_is_found_by_its_id_formatted_once_and_mounted() {
    if !can_mount() {
        eprintln!("skipped: mounting a disk file needs root and /dev/loop-control");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disks = dir.path().join("by-id");
    let mnt = dir.path().join("data");
    std::fs::create_dir(&disks).unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk).unwrap().set_len(32 << 20).unwrap();
    // Another disk, and a partition of ours: neither may be taken.
    std::fs::File::create(disks.join("virtio-0123456789abcdef0123")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nothing"), disks.join(format!("virtio-{}-part1", &VOLUME_ID[..20])))
        .unwrap();
    std::os::unix::fs::symlink(&disk, disks.join(format!("virtio-{}", &VOLUME_ID[..20]))).unwrap();

    let first = run(dir.path(), &disks, &mnt, 5);
    let out = String::from_utf8_lossy(&first.stdout).to_string() + &String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("is blank; making an ext4 file system"), "{out}");
    let mounted = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(mounted.contains(&format!(" {} ext4 ", mnt.display())), "not mounted: {out}");
    std::fs::write(mnt.join("blob"), "kept").unwrap();
    umount(&mnt);

    // The next boot: the same file system, mounted, not made again.
    let again = run(dir.path(), &disks, &mnt, 5);
    let out = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success(), "{out}");
    assert!(!out.contains("blank"), "formatted twice: {out}");
    assert_eq!(std::fs::read_to_string(mnt.join("blob")).unwrap(), "kept");
    // Already mounted: nothing to do.
    assert!(run(dir.path(), &disks, &mnt, 5).status.success());
    umount(&mnt);
}

#[test]
fn a_volume_that_never_appears_fails_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let disks = dir.path().join("by-id");
    std::fs::create_dir(&disks).unwrap();
    std::fs::File::create(disks.join("virtio-0123456789abcdef0123")).unwrap();
    let o = run(dir.path(), &disks, &dir.path().join("data"), 1);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("volume {VOLUME_ID}: no disk with serial {}", &VOLUME_ID[..20])), "{err}");
}
