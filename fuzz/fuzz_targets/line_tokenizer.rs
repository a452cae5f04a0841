//! The line reader and tokenizer on arbitrary client bytes, fed in pieces
//! whose sizes come from the input itself.
//!
//! Invariants: no panic; no line handed on is longer than 1023 bytes or
//! holds an LF; an over-long line is one `TooLong` frame, never a command;
//! every line tokenizes or is a parse error, and a command parses or is a
//! parse error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use popper::protocol::command::Tokens;
use popper::protocol::line::{Frame, LineBuf, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut lines = LineBuf::new();
    for chunk in data.chunks(step) {
        lines.push(chunk);
        while let Some(frame) = lines.next_frame() {
            match frame {
                Frame::TooLong => {}
                Frame::Line(l) => {
                    assert!(l.len() <= MAX_LINE, "a line of {} bytes", l.len());
                    assert!(!l.contains(&b'\n'));
                    if let Ok(Some(t)) = Tokens::split(l)
                        && let Some(v) = t.verb()
                    {
                        let _ = t.command(v);
                    }
                }
            }
        }
    }
});
