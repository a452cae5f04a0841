//! popper: a POP3/APOP server compatible with Qualcomm's qpopper.
#![deny(unsafe_code)]

pub mod maildrop;
pub mod protocol;
pub mod sim;
