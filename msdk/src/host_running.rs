//! The running call as the SDK's own hosts keep it (`HostApi::running_call`): the test
//! harness (`crate::testing`) and the unit tests' host set the frame they pass to the
//! module as their thread's running call while the module has it, as the runtime does.

use core::cell::Cell;
use core::ffi::c_void;

use crate::abi::CallFrame;

std::thread_local! {
    /// The frame of the innermost call this thread runs through [`running`], or null.
    static RUNNING: Cell<*mut c_void> = const { Cell::new(core::ptr::null_mut()) };
}

/// `HostApi::running_call`: the innermost frame this thread runs a call on.
pub(crate) unsafe extern "C" fn running_call() -> *mut c_void {
    RUNNING.try_with(Cell::get).unwrap_or(core::ptr::null_mut())
}

/// Runs `f`, a call on `frame`, with `frame` as this thread's running call, and puts the
/// outer call's back afterwards, `f` unwinding or not (a frame left published past its
/// life would be read by the next log or panic on the thread).
///
/// # Safety
///
/// `frame` must be null or a frame valid for reads until `f` returns (its `size` first,
/// the whole frame when that covers this SDK's), whose `host_call`, when its `host` is
/// a connected host's table, that host's services accept meanwhile: the SDK's log and
/// panic hook read it through [`running_call`] from safe code.
pub(crate) unsafe fn running<R>(frame: *mut CallFrame, f: impl FnOnce() -> R) -> R {
    /// Puts the outer call back when dropped.
    struct Restore(*mut c_void);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = RUNNING.try_with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(RUNNING.with(|r| r.replace(frame.cast())));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_host::call_frame;

    /// A call that unwinds leaves no frame of its own published: before, its frame (gone
    /// with the unwound stack) stayed this thread's running call.
    #[test]
    fn a_call_that_unwinds_puts_the_outer_call_back() {
        let mut arena = [0u8; 16];
        let mut frame = call_frame(&[], &mut arena);
        let frame_ptr = &raw mut frame;
        let unwound = std::panic::catch_unwind(|| {
            // SAFETY: the frame is a local, alive until after `f` unwinds; its host is the
            // tests' table, whose services take any handle.
            unsafe { running(frame_ptr, || panic!("the call unwinds")) }
        });
        assert!(unwound.is_err());
        // SAFETY: callable from any thread.
        assert!(unsafe { running_call() }.is_null(), "no call runs");
    }
}
