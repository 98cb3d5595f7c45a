//! Platforms as Zoi names them: `{os}-{arch}` with `os` in
//! `linux|macos|windows` and `arch` in `amd64|arm64|386`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
    I386,
}

impl Os {
    pub const ALL: [Os; 3] = [Os::Linux, Os::Macos, Os::Windows];
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Macos => "macos",
            Os::Windows => "windows",
        }
    }
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Amd64, Arch::Arm64, Arch::I386];
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::I386 => "386",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: Os,
    pub arch: Arch,
}

impl Platform {
    /// The platform this binary runs on, named as Zoi names it.
    pub fn host() -> Option<Platform> {
        let os = match std::env::consts::OS {
            "linux" => Os::Linux,
            "macos" => Os::Macos,
            "windows" => Os::Windows,
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::Amd64,
            "aarch64" => Arch::Arm64,
            "x86" => Arch::I386,
            _ => return None,
        };
        Some(Platform { os, arch })
    }

    /// Every platform Zoi can name.
    pub fn all() -> impl Iterator<Item = Platform> {
        Os::ALL
            .into_iter()
            .flat_map(|os| Arch::ALL.into_iter().map(move |arch| Platform { os, arch }))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.os.as_str(), self.arch.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub String);

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a Zoi platform: expected <os>-<arch> with os one of linux, macos, windows and arch one of amd64, arm64, 386",
            self.0
        )
    }
}

impl std::error::Error for PlatformError {}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError(s.to_string());
        let (os, arch) = s.split_once('-').ok_or_else(err)?;
        let os = Os::ALL
            .into_iter()
            .find(|o| o.as_str() == os)
            .ok_or_else(err)?;
        let arch = Arch::ALL
            .into_iter()
            .find(|a| a.as_str() == arch)
            .ok_or_else(err)?;
        Ok(Platform { os, arch })
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_platform() {
        for p in Platform::all() {
            assert_eq!(p.to_string().parse::<Platform>().unwrap(), p);
        }
        assert_eq!(Platform::all().count(), 9);
    }

    #[test]
    fn rejects_other_names() {
        for bad in [
            "linux",
            "linux-x86_64",
            "darwin-arm64",
            "Linux-amd64",
            "linux-amd64-x",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
