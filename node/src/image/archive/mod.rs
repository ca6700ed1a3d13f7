//! Images as tar archives: `docker load` and `docker save` (docker-archive and OCI layouts),
//! `docker import` of a root file system tar, and packing a directory in overlayfs form into a
//! layer tar (`commit`, `export`).
//!
//! ```text
//!  load.rs   body ─► bundle.rs (tmp dir) ─► layers unpacked ─► register ─► store
//!  import.rs body ─► one layer + a new config ─► register ─► store
//!  save.rs   store ─► layer tars replayed from tar-split ─► streamed tar
//!  pack.rs   a directory (upper dir, layer diff) ─► layer tar
//! ```
//! Archive code calls into `store/`; the store never calls back.

pub(crate) mod bundle;
pub(crate) mod import;
pub(crate) mod load;
pub mod pack;
pub(crate) mod save;
