//! The tamper-evident audit log.
//!
//! Every report ingested, enrollment, revocation, user change, closure and
//! incident transition is an entry. Entries are canonically encoded JSON;
//! their leaf hashes form an RFC 6962 Merkle tree ([`crate::merkle`]). Each
//! entry is also signed (ed25519 over `seq || leaf hash`), so an altered,
//! swapped or re-hashed entry is named exactly; signed checkpoints (C2SP
//! `tlog-checkpoint` notes: origin, size, root) are issued as the log grows and
//! every pair of consecutive checkpoints must be consistent.
//!
//! The verifier ([`verify`]) works on an [`Export`], which is what the database
//! holds or what `vigil-reporter audit export` wrote: the same code checks both.

pub mod log;
pub mod verify;
pub mod write;

pub use log::*;
pub use verify::*;
pub use write::AuditedWrite;
