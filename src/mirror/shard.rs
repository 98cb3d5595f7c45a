//! `bin sync --shard K/N`: which packages one of N machines mirrors.
//!
//! A package's shard is FNV-1a of `@tier/name`, modulo N, plus one: the
//! same on every machine, whatever the other packages, so each machine
//! keeps its packages when others come and go, and `--prune` on a shard
//! only ever touches the shard's own packages.

use anyhow::Result;

use crate::error::{ErrorKind, Failure};

/// Shard `k` of `n` (1 <= k <= n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// `K/N` as given to `--shard`.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || {
            Failure::new(ErrorKind::Usage, format!("--shard '{s}' is not K/N"))
                .hint("e.g. --shard 1/4 … --shard 4/4 on four machines")
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || k == 0 || k > n {
            return Err(bad().into());
        }
        Ok(Shard { k, n })
    }

    /// Whether the package `@repo/name` falls in this shard.
    pub fn holds(self, repo: &str, name: &str) -> bool {
        shard_of(repo, name, self.n) == self.k
    }
}

/// Which shard (1-based) of `n` a package falls in.
fn shard_of(repo: &str, name: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("@{repo}/{name}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h % n + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_packages() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { k: 2, n: 3 });
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x").is_err());
        let names: Vec<String> = (0..100).map(|i| format!("pkg{i}")).collect();
        let mut seen = [0; 4];
        for n in &names {
            let k = shard_of("core", n, 4);
            assert!((1..=4).contains(&k));
            seen[(k - 1) as usize] += 1;
            assert!(Shard { k, n: 4 }.holds("core", n));
        }
        assert!(seen.iter().all(|&c| c > 10), "{seen:?}");
    }
}
