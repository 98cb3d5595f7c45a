//! Server-side work: what runs on the machines that host the mirror, as
//! opposed to the client machines that use it.
//!
//! [`index`] keeps a binary host's archive tree servable: it writes (or
//! checks) the `.hash`, `.size` and `.files` Zoi fetches next to every
//! archive, and lints the tree against the layout the registry's URL
//! templates expect. [`db`] mirrors the registry's git repository with the
//! corporate `repo.yaml` as an overlay commit; [`binsync`] copies upstream's
//! pre-built archives into the company's layout ([`prune`] removes old
//! versions); [`publish`] puts a bundle (or keys, setup scripts) where
//! clients read it, the bucket or a folder; [`serve`] serves a tree
//! over HTTP for small teams, tests and the demo.

pub mod bins;
pub mod binsync;
pub mod binsync_s3;
pub mod db;
pub mod freshness;
pub mod index;
pub mod index_s3;
pub mod prune;
pub mod publish;
pub mod serve;
pub mod shard;
pub mod status;
pub mod sync;
