//! SIGTERM/SIGINT handling without a handler: the signals are blocked in every thread and one
//! thread waits for them with sigwait, so shutdown runs as ordinary code.

pub struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and the threads it starts later).
    pub fn block_termination() -> Signals {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Signals { set }
        }
    }

    /// Waits for SIGTERM or SIGINT and names it. SIGHUP is logged and ignored (a terminal
    /// closing must not stop the agent, and there is no reload).
    pub fn wait(&self) -> &'static str {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: the set was initialised in block_termination.
            let rc = unsafe { libc::sigwait(&self.set, &mut signal) };
            match (rc, signal) {
                (0, libc::SIGTERM) => return "SIGTERM",
                (0, libc::SIGINT) => return "SIGINT",
                (0, libc::SIGHUP) => {
                    log::info!("SIGHUP ignored: restart the agent to load a changed config")
                }
                _ => {}
            }
        }
    }
}
