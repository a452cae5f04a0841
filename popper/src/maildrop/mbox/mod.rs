//! The mbox spool maildrop.

pub mod envelope;
pub mod scan;
pub mod uid;
