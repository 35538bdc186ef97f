//! Drills: the SQLite database file becomes unwritable, and the disk fills up.
//!
//! The database lives on a small ext4 file system of its own (a loop mount, so these
//! drills run as root). "Unwritable" is the immutable attribute (`chattr +i`) on the
//! database, its WAL and its folder: unlike a remount read-only, which the kernel refuses
//! while SQLite holds the file open, it makes the running server's writes fail. "Full" is
//! a filler file taking every free block. Either way the server must answer 503 with
//! Retry-After, keep answering, keep every ballot stored before, and store the retried
//! batch once the fault is gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{self, Db, Server};
use crate::{by_id, check_export, count, export, one_drill_at_a_time};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_database_file_answers_503_and_keeps_every_ballot() {
    let _turn = one_drill_at_a_time().await;
    let disk = SmallDisk::mount(32);
    let db = Db::sqlite(&disk.dir, "campaign");
    let db_file = db.file.clone().unwrap();
    let protect = move || {
        let wal = PathBuf::from(format!("{}-wal", db_file.display()));
        let mut files = vec![db_file.clone()];
        files.extend(wal.exists().then_some(wal));
        files.push(db_file.parent().unwrap().to_path_buf());
        files
    };
    drill(&disk, &db, |on| {
        for f in protect() {
            chattr(if on { "+i" } else { "-i" }, &f);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_503_and_stores_the_retry_once_space_returns() {
    let _turn = one_drill_at_a_time().await;
    let disk = SmallDisk::mount(32);
    let db = Db::sqlite(&disk.dir, "campaign");
    let filler = disk.dir.join("filler");
    drill(&disk, &db, |on| {
        if on {
            fill(&filler);
        } else {
            std::fs::remove_file(&filler).expect("remove the filler");
        }
    })
    .await;
}

/// 50 ballots stored; the fault; a batch of 600 (far more than the WAL has room for)
/// refused with 503 while earlier ballots stay readable; the fault gone, the same batch
/// retried is stored, and the database holds each of the 650 ballots once.
async fn drill(disk: &SmallDisk, db: &Db, mut fault: impl FnMut(bool)) {
    let logs = tempfile::tempdir().unwrap();
    let mut server = Server::start(&db.url, logs.path(), &[]);
    let http = harness::http_client(Duration::from_secs(120));
    let before = harness::ballots(31, 50);
    let during = harness::ballots(32, 600);

    let r = harness::submit(&http, &server.url, &before).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.statuses().iter().all(|s| s == "stored"), "{r:?}");

    fault(true);
    let r = harness::submit(&http, &server.url, &during).await.unwrap();
    let refused = unavailable(r, "POST of 600 ballots");
    let r = harness::put(&http, &server.url, &during[0]).await.unwrap();
    unavailable(r, "PUT of one ballot");
    assert!(server.alive(), "the server stays up");
    let status = harness::status(&http, &server.url).await;
    assert_eq!(
        count(&status, "ballots"),
        50,
        "nothing earlier is lost: {status}"
    );
    let health = harness::get(&http, &server.url, "/api/v1/health")
        .await
        .unwrap();
    assert!(
        [200, 503].contains(&health.status),
        "/api/v1/health answers: {health:?}"
    );
    fault(false);

    // What a device does with a 503: wait as told, send the same batch again.
    let wait = Duration::from_secs(refused.min(5));
    let start = Instant::now();
    let stored = loop {
        tokio::time::sleep(wait).await;
        let r = harness::submit(&http, &server.url, &during).await.unwrap();
        if r.status == 200 {
            break r;
        }
        assert!(
            r.status == 503 && start.elapsed() < Duration::from_secs(120),
            "the retry after the fault was answered {r:?}"
        );
    };
    assert!(
        stored.statuses().iter().all(|s| s == "stored"),
        "a batch answered 503 was not acknowledged, so none of it is stored before the retry: {:?}",
        stored.body["stored"]
    );
    let status = harness::status(&http, &server.url).await;
    assert_eq!(count(&status, "ballots"), 650, "{status}");

    server.kill();
    let all = [before, during].concat();
    let ids = check_export(&export(&db.url, &disk.scratch, "all"), &by_id(&all));
    assert_eq!(ids.len(), 650);
}

/// Checks a 503 answer (with Retry-After and a message) and returns its Retry-After in
/// seconds.
fn unavailable(r: harness::Reply, what: &str) -> u64 {
    assert_eq!(r.status, 503, "{what} during the fault: {r:?}");
    assert!(!r.error().is_empty(), "{what}: an empty message");
    let after = r
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no Retry-After: {r:?}"));
    after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {after:?} is not a number of seconds"))
}

/// A small ext4 file system on a loop device, mounted in a temporary folder and unmounted
/// on drop (also when the drill fails).
struct SmallDisk {
    /// The mounted file system.
    dir: PathBuf,
    /// A folder outside it, for exports.
    scratch: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> SmallDisk {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("disk.ext4");
        let dir = tmp.path().join("mnt");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(mib << 20))
            .unwrap();
        // -m 0: no blocks reserved for root, who runs these drills and the server.
        run(Command::new("mkfs.ext4")
            .args(["-q", "-m", "0"])
            .arg(&image));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir));
        SmallDisk {
            dir,
            scratch,
            _tmp: tmp,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .args(["-R", "-i"])
            .arg(&self.dir)
            .status();
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (these drills need root, mount and e2fsprogs)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (these drills need root and loop devices): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chattr(flag: &str, path: &Path) {
    run(Command::new("chattr").arg(flag).arg(path));
}

/// Writes `path` until the file system has no free block left.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0u8; chunk];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
}
