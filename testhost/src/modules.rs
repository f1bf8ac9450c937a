//! Kernel modules of Debian's kernel package: which `.ko` files a set of
//! modules needs, in load order.
//!
//! The package ships no `modules.dep` (`depmod` makes it on install), and
//! `kmod` may not be installed, so dependencies come from each module's own
//! `.modinfo` ELF section (`depends=a,b`), as `modinfo -F depends` reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// Index of the modules under a `lib/modules/<version>/kernel` tree, by
/// module name (`-` and `_` are the same to the kernel; names use `_`).
#[derive(Debug, Default)]
pub struct ModuleTree {
    files: BTreeMap<String, PathBuf>,
}

/// The canonical spelling of a module name.
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

impl ModuleTree {
    /// Indexes every `.ko` file below `root`.
    pub fn scan(root: &Path) -> Result<ModuleTree, Error> {
        let mut tree = ModuleTree::default();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir).map_err(Error::io(&dir))?;
            for entry in entries {
                let path = entry.map_err(Error::io(&dir))?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".ko"))
                {
                    tree.files.insert(canonical(stem), path);
                }
            }
        }
        Ok(tree)
    }

    /// The file of module `name`.
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files.get(&canonical(name)).map(PathBuf::as_path)
    }

    /// `wanted` and everything they depend on, each after its dependencies.
    pub fn load_order(&self, wanted: &[&str]) -> Result<Vec<String>, Error> {
        let mut order = Vec::new();
        for name in wanted {
            self.visit(&canonical(name), &mut order, &mut Vec::new())?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<(), Error> {
        if order.iter().any(|m| m == name) {
            return Ok(());
        }
        if path.iter().any(|m| m == name) {
            return Err(Error::Module {
                name: name.into(),
                reason: format!("dependency cycle through {}", path.join(" -> ")),
            });
        }
        let file = self.file(name).ok_or_else(|| Error::Module {
            name: name.into(),
            reason: "not in the kernel package".into(),
        })?;
        let data = std::fs::read(file).map_err(Error::io(file))?;
        let deps = depends(&data).map_err(|reason| Error::Module {
            name: name.into(),
            reason,
        })?;
        path.push(name.to_string());
        for dep in deps {
            self.visit(&canonical(&dep), order, path)?;
        }
        path.pop();
        order.push(name.to_string());
        Ok(())
    }
}

/// The `depends=` list of a module's `.modinfo` section.
pub fn depends(elf: &[u8]) -> Result<Vec<String>, String> {
    let info = section(elf, ".modinfo")?;
    Ok(info
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?)).ok()
}

/// The bytes of section `name` of a little-endian ELF64 file.
fn section<'a>(elf: &'a [u8], name: &str) -> Result<&'a [u8], String> {
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Err("not a little-endian ELF64 file".into());
    }
    let truncated = || "truncated ELF section table".to_string();
    let shoff = read_u64(elf, 0x28).ok_or_else(truncated)?;
    let entsize = usize::from(read_u16(elf, 0x3a).ok_or_else(truncated)?);
    let count = usize::from(read_u16(elf, 0x3c).ok_or_else(truncated)?);
    let strndx = usize::from(read_u16(elf, 0x3e).ok_or_else(truncated)?);
    let header = |i: usize| -> Option<(u32, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(entsize)?)?;
        Some((
            read_u32(elf, at)?,
            read_u64(elf, at + 0x18)?,
            read_u64(elf, at + 0x20)?,
        ))
    };
    let bytes = |off: usize, len: usize| elf.get(off..off.checked_add(len)?);
    let (_, str_off, str_len) = header(strndx).ok_or_else(truncated)?;
    let names = bytes(str_off, str_len).ok_or_else(truncated)?;
    for i in 0..count {
        let (name_at, off, len) = header(i).ok_or_else(truncated)?;
        let n = names.get(name_at as usize..).unwrap_or_default();
        if n.split(|b| *b == 0).next() == Some(name.as_bytes()) {
            return bytes(off, len).ok_or_else(truncated);
        }
    }
    Err(format!("no {name} section"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a `.shstrtab` and a `.modinfo` section.
    pub(crate) fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let strtab_off = elf.len();
        elf.extend_from_slice(shstrtab);
        let info_off = elf.len();
        elf.extend_from_slice(modinfo);
        let shoff = elf.len();
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for (name, off, len) in [
            (0u32, 0usize, 0usize),
            (1, strtab_off, shstrtab.len()),
            (11, info_off, modinfo.len()),
        ] {
            let mut sh = [0u8; 64];
            sh[..4].copy_from_slice(&name.to_le_bytes());
            sh[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            sh[0x20..0x28].copy_from_slice(&(len as u64).to_le_bytes());
            elf.extend_from_slice(&sh);
        }
        elf
    }

    #[test]
    fn depends_come_from_the_modinfo_section() {
        let m = fake_module(b"license=GPL\0depends=kvm,ccp\0name=kvm_amd\0");
        assert_eq!(depends(&m).unwrap(), ["kvm", "ccp"]);
        let none = fake_module(b"depends=\0name=ccp\0");
        assert!(depends(&none).unwrap().is_empty());
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(depends(b"not elf").is_err());
        let mut m = fake_module(b"depends=a\0");
        // Into the last section header's offset and size fields.
        let cut = m.len() - 30;
        m.truncate(cut);
        assert!(depends(&m).is_err());
        let mut far = fake_module(b"depends=a\0");
        far[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(depends(&far).is_err());
    }

    #[test]
    fn load_order_puts_dependencies_first_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("arch/x86/kvm");
        std::fs::create_dir_all(&sub).unwrap();
        for (name, deps) in [
            ("kvm-amd", "kvm,ccp"),
            ("kvm", "irqbypass"),
            ("ccp", ""),
            ("irqbypass", ""),
        ] {
            let info = format!("depends={deps}\0");
            std::fs::write(sub.join(format!("{name}.ko")), fake_module(info.as_bytes())).unwrap();
        }
        let tree = ModuleTree::scan(dir.path()).unwrap();
        assert_eq!(
            tree.load_order(&["kvm_amd", "kvm"]).unwrap(),
            ["irqbypass", "kvm", "ccp", "kvm_amd"]
        );
        assert!(matches!(
            tree.load_order(&["nosuch"]),
            Err(Error::Module { .. })
        ));
    }

    #[test]
    fn cycles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.ko"), fake_module(b"depends=b\0")).unwrap();
        std::fs::write(dir.path().join("b.ko"), fake_module(b"depends=a\0")).unwrap();
        let tree = ModuleTree::scan(dir.path()).unwrap();
        let e = tree.load_order(&["a"]).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }
}
