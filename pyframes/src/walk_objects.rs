//! The handler's walk of 3.9 and 3.10 frames: heap `PyFrameObject`s chained by `f_back` from
//! the thread state's `frame`. Each one is run by its own call of the evaluation function, so
//! every frame is an entry frame. Nothing here is proven mapped: every frame is copied
//! ([`Reader::copy`]: a fault-recovering read, or a system call within the walk's budget).
//! Async-signal-safe.

use crate::layout::{Layout, MAX_FRAME_SIZE};
use crate::probe::Session;
use crate::read::{u32_at, u64_at};
use crate::record::{check_of, RawFrame, MARKER};
use crate::walk::Reader;

/// Pushes [`MARKER`] and two words per frame from `first`, innermost first, at most
/// `max_frames` frames (cycles end there too). Returns the number pushed. Async-signal-safe.
pub(crate) fn walk_frame_objects(reader: &mut Reader, layout: &Layout, first: u64, max_frames: usize, push: &mut impl FnMut(u64, Option<&Session>)) -> usize {
    let mut frame = [0u8; MAX_FRAME_SIZE];
    let Some(frame) = frame.get_mut(..layout.frame_size) else { return 0 };
    let mut address = first;
    let mut pushed = 0;
    while address != 0 && address.is_multiple_of(8) && pushed < max_frames && reader.read(address, frame) {
        let code = u64_at(frame, layout.frame_code);
        if code == 0 || !code.is_multiple_of(8) {
            break;
        }
        let lasti = u32_at(frame, layout.frame_prev_instr) as i32;
        let instr = if lasti > 0 { lasti as u32 / layout.lasti_bytes_per_unit } else { 0 };
        let mut check = check_of(u64_at(frame, layout.frame_func));
        if reader.probing() {
            // A fault-recovering read costs nanoseconds: fold in the code object's name and
            // file objects too, which tell apart two code objects at one address in one module.
            let mut names = [0u8; 16];
            if reader.copy(code + layout.code_filename as u64, &mut names) {
                check ^= check_of(u64_at(&names, 0)).rotate_left(11) ^ check_of(u64_at(&names, 8)).rotate_left(22);
            }
        }
        if pushed == 0 {
            push(MARKER, reader.session());
        }
        let [first_word, second_word] = RawFrame { code, check, instr, entry: true }.words();
        push(first_word, reader.session());
        push(second_word, reader.session());
        pushed += 1;
        address = u64_at(frame, layout.frame_previous);
    }
    pushed
}
