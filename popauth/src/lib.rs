//! pop.auth database (later).
