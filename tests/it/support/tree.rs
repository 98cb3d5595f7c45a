//! Binary-host trees for tests: archives (opaque bytes) in the seed guide's
//! layout with the metadata `zoi package build` would write for them.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

/// Deterministic, incompressible-looking bytes for an archive.
pub fn archive_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut block = Sha512::digest(seed.as_bytes());
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha512::digest(block);
    }
    out.truncate(len);
    out
}

pub struct Placed {
    pub archive: PathBuf,
    pub file_name: String,
}

/// Writes `<root>/<repo>/<os>/<arch>/<version>/<name>-<version>-<platform>.zpa`
/// and its `.hash`, `.size`, `.files`. `folder_version` lets a test put an
/// archive in the wrong version folder.
pub fn place(
    root: &Path,
    repo: &str,
    name: &str,
    version: &str,
    folder_version: &str,
    platform: &str,
    len: usize,
) -> Placed {
    let (os, arch) = platform.split_once('-').unwrap();
    let dir = root.join(repo).join(os).join(arch).join(folder_version);
    std::fs::create_dir_all(&dir).unwrap();
    let file_name = format!("{name}-{version}-{platform}.zpa");
    let bytes = archive_bytes(&file_name, len);
    let archive = dir.join(&file_name);
    std::fs::write(&archive, &bytes).unwrap();
    let hash = hex::encode(Sha512::digest(&bytes));
    std::fs::write(
        dir.join(format!("{file_name}.hash")),
        format!("{hash}  {file_name}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{file_name}.size")),
        format!("down: {}\ninstall: {}\n", bytes.len(), bytes.len() * 3),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{file_name}.files")),
        format!("${{pkgstore}}/bin/\n${{pkgstore}}/bin/{name}"),
    )
    .unwrap();
    Placed { archive, file_name }
}
