//! Update tests: sessions' marks applied to real spool files.
