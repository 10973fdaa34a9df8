//! `patch_level`'s pure parsers: dpkg's status file and apt's Packages
//! indices ([`status`]), dpkg version ordering ([`dpkg_version`]) and
//! advisory feeds ([`feeds`]). No I/O: unit tests and fuzz targets call them.

pub mod dpkg_version;
pub mod feeds;
pub mod status;
