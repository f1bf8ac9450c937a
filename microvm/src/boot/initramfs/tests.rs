//! The archive format, read back with an independent parser of the newc
//! layout (110-byte ASCII header, name, padding to 4, data, padding to 4).

use super::*;

#[derive(Debug, PartialEq)]
struct Parsed {
    name: String,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

fn hex(b: &[u8]) -> u32 {
    u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap()
}

fn parse(archive: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        assert_eq!(off % 4, 0, "entry at {off} not 4-byte aligned");
        let h = &archive[off..off + 110];
        assert_eq!(&h[..6], b"070701", "magic at {off}");
        let field = |i: usize| hex(&h[6 + 8 * i..14 + 8 * i]);
        let (size, namesize) = (field(6) as usize, field(11) as usize);
        let name_start = off + 110;
        let name = &archive[name_start..name_start + namesize];
        assert_eq!(name.last(), Some(&0), "name NUL-terminated");
        let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
        let data_start = (name_start + namesize).next_multiple_of(4);
        assert!(
            archive[name_start + namesize..data_start]
                .iter()
                .all(|b| *b == 0)
        );
        let data = archive[data_start..data_start + size].to_vec();
        let next = (data_start + size).next_multiple_of(4);
        assert!(archive[data_start + size..next].iter().all(|b| *b == 0));
        let p = Parsed {
            name,
            ino: field(0),
            mode: field(1),
            nlink: field(4),
            mtime: field(5),
            rdev: (field(9), field(10)),
            data,
        };
        off = next;
        if p.name == "TRAILER!!!" {
            assert_eq!(off, archive.len(), "nothing after the trailer");
            return out;
        }
        out.push(p);
    }
}

#[test]
fn init_layout_has_init_console_and_mount_points() {
    let fs = Initramfs::with_init(b"\x7fELF-static".to_vec()).unwrap();
    let entries = parse(&fs.to_bytes().unwrap());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dev",
            "dev/console",
            "dev/null",
            "init",
            "mnt",
            "proc",
            "sys",
            "tmp"
        ]
    );
    let init = entries.iter().find(|e| e.name == "init").unwrap();
    assert_eq!(init.mode, 0o100755);
    assert_eq!(init.data, b"\x7fELF-static");
    let console = entries.iter().find(|e| e.name == "dev/console").unwrap();
    assert_eq!(console.mode, 0o020600);
    assert_eq!(console.rdev, (5, 1));
    let dev = entries.iter().find(|e| e.name == "dev").unwrap();
    assert_eq!(dev.mode, 0o040755);
    assert_eq!(dev.nlink, 2);
    // Deterministic: mtime 0 and distinct sequential inodes.
    assert!(entries.iter().all(|e| e.mtime == 0));
    let inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
    assert_eq!(inos, (1..=entries.len() as u32).collect::<Vec<_>>());
}

#[test]
fn padding_holds_for_every_name_and_data_length() {
    // Names and contents of every length mod 4 exercise both paddings.
    let mut fs = Initramfs::new();
    for n in 1..=8usize {
        fs.file(&format!("/{}", "f".repeat(n)), vec![b'x'; n], 0o644)
            .unwrap();
    }
    let entries = parse(&fs.to_bytes().unwrap());
    assert_eq!(entries.len(), 8);
    for e in entries {
        assert_eq!(e.data.len(), e.name.len());
    }
}

#[test]
fn busybox_applets_are_symlinks_under_bin() {
    let mut fs = Initramfs::with_init(vec![1]).unwrap();
    fs.busybox(b"BB".to_vec(), &["sh", "ls", "busybox"])
        .unwrap();
    fs.block_device("/dev/vda", 0o660, (254, 0)).unwrap();
    let entries = parse(&fs.to_bytes().unwrap());
    let vda = entries.iter().find(|e| e.name == "dev/vda").unwrap();
    assert_eq!((vda.mode, vda.rdev), (0o060660, (254, 0)));
    let sh = entries.iter().find(|e| e.name == "bin/sh").unwrap();
    assert_eq!(sh.mode & 0o170000, 0o120000);
    assert_eq!(sh.data, b"busybox");
    let bb = entries.iter().find(|e| e.name == "bin/busybox").unwrap();
    assert_eq!(bb.data, b"BB");
    // `bin` was created implicitly, before its children.
    let pos = |n: &str| entries.iter().position(|e| e.name == n).unwrap();
    assert!(pos("bin") < pos("bin/sh"));
}

#[test]
fn same_content_gives_the_same_bytes() {
    let a = Initramfs::with_init(vec![7; 100])
        .unwrap()
        .to_bytes()
        .unwrap();
    let b = Initramfs::with_init(vec![7; 100])
        .unwrap()
        .to_bytes()
        .unwrap();
    let c = Initramfs::with_init(vec![8; 100])
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn bad_paths_are_refused() {
    let mut fs = Initramfs::new();
    for p in ["", "/", "/a/../b", "/./x", "a//b", "nul\0"] {
        assert!(
            matches!(
                fs.file(p, vec![], 0o644),
                Err(InitramfsError::BadPath { .. })
            ),
            "{p:?} accepted"
        );
    }
    fs.file("/x", vec![], 0o644).unwrap();
    assert!(matches!(
        fs.file("/x", vec![], 0o644),
        Err(InitramfsError::Duplicate { .. })
    ));
    assert!(matches!(
        fs.file("/x/y", vec![], 0o644),
        Err(InitramfsError::ParentNotDir { .. })
    ));
}
