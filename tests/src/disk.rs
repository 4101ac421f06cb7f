//! Real full disks for tests: a small tmpfs mounted for one test, and a filler file that takes its last byte.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size, mounted on a fresh directory; unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `"24m"`). Needs root, as CI
    /// runs; returns `None` elsewhere (after saying so), and panics under CI so that the test
    /// cannot pass there without its full disk.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs { dir });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (it runs as root)"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        None
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a filler file in `dir` until the filesystem refuses with "no space"; returns its path.
/// Panics if the filesystem never fills (bounded: at most 1 GiB is written).
pub fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    for _ in 0..16 * 1024 {
        if let Err(e) = f.write_all(&block).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            // Also take the last partial block.
            for _ in 0..64 {
                if f.write_all(&[0u8; 1024]).is_err() {
                    break;
                }
            }
            let _ = f.sync_all();
            return path;
        }
    }
    panic!("{} never filled up", dir.display());
}
