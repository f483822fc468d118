//! Prompt wakeups on a busy host: a short time slice for the threads that
//! carry messages.
//!
//! When engines compute on every core, a process that wakes for a message
//! (the controller forwarding a task, a client receiving a result, an
//! engine's epoch ticker) waits for a core. Linux's scheduler (EEVDF,
//! since 6.6) lets a waking thread take the core from a computing one at
//! once only if its time slice is shorter (`PREEMPT_SHORT`); at the
//! default slice it may wait out the other's slice, milliseconds, on every
//! message. Since Linux 6.12 a thread may ask for a shorter slice of the
//! normal policy (`sched_setattr` with `sched_runtime`): no privilege, no
//! real-time policy, no change to its share of the CPU (its weight), only
//! to how promptly it runs when it wakes. The threads that mostly wait
//! ask for one; the engine's computing thread keeps the default.

use std::time::Duration;

/// The slice asked for: the shortest Linux grants (0.1 ms). A thread that
/// runs longer is preempted sooner, so only threads that run briefly at a
/// time ask for it.
pub const SHORT_TIME_SLICE: Duration = Duration::from_micros(100);

/// Asks for [`SHORT_TIME_SLICE`] for the calling thread, and for the
/// threads it starts afterwards (they inherit it), keeping its nice value.
/// Returns whether the kernel holds it: older kernels (before 6.12) and
/// other systems keep their default, which is only slower.
pub fn prefer_prompt_wakeups() -> bool {
    imp::set_slice(SHORT_TIME_SLICE) && imp::slice() == Some(SHORT_TIME_SLICE)
}

/// Returns the calling thread to the kernel's default slice, and the
/// threads it starts afterwards: for a thread that computes, whose parent
/// process may have asked for a short one (a child inherits it).
pub fn default_time_slice() -> bool {
    imp::set_slice(Duration::ZERO)
}

/// The calling thread's time slice of the normal policy, if the kernel
/// reports one (Linux 6.12 and later; `None` elsewhere).
pub fn time_slice() -> Option<Duration> {
    imp::slice()
}

/// The syscalls, which no well-kept crate wraps for the normal policy's
/// slice (rustix and nix stop at `sched_setscheduler`): unavoidably
/// `unsafe`, each call with its reason.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    use std::time::Duration;

    /// `SCHED_OTHER`, the normal policy.
    const SCHED_NORMAL: u32 = 0;

    fn empty() -> libc::sched_attr {
        libc::sched_attr {
            size: std::mem::size_of::<libc::sched_attr>() as u32,
            sched_policy: SCHED_NORMAL,
            sched_flags: 0,
            sched_nice: 0,
            sched_priority: 0,
            sched_runtime: 0,
            sched_deadline: 0,
            sched_period: 0,
        }
    }

    pub(super) fn set_slice(slice: Duration) -> bool {
        let mut attr = empty();
        // Setting the policy sets the nice value too: keep the thread's.
        let Some(nice) = nice() else {
            return false;
        };
        attr.sched_nice = nice;
        attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: sched_setattr(0 = calling thread, a valid sched_attr of
        // the size it declares, no flags).
        let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
        set == 0
    }

    /// The calling thread's nice value.
    pub(super) fn nice() -> Option<i32> {
        // SAFETY: getpriority reads the calling thread's nice value (who 0
        // is the calling thread on Linux); errno is cleared first to tell
        // a nice of -1 from an error, as its manual says.
        let nice = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        // SAFETY: reads the errno that getpriority may have set.
        let failed = nice == -1 && unsafe { *libc::__errno_location() } != 0;
        (!failed).then_some(nice)
    }

    pub(super) fn slice() -> Option<Duration> {
        let mut attr = empty();
        // SAFETY: sched_getattr(0 = calling thread) writes at most `size`
        // bytes into `attr`.
        let got = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr,
                std::mem::size_of::<libc::sched_attr>() as u32,
                0,
            )
        };
        (got == 0 && attr.sched_policy == SCHED_NORMAL && attr.sched_runtime > 0)
            .then(|| Duration::from_nanos(attr.sched_runtime))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::Duration;

    pub(super) fn set_slice(_slice: Duration) -> bool {
        false
    }

    pub(super) fn slice() -> Option<Duration> {
        None
    }

    pub(super) fn nice() -> Option<i32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's version, major and minor, from `uname -r`.
    fn kernel() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (next(), next())
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_its_threads_inherit_it() {
        let (granted, inherited, nice) = std::thread::spawn(|| {
            let granted = prefer_prompt_wakeups();
            let inherited = std::thread::spawn(time_slice).join().expect("child");
            (granted, inherited, imp::nice())
        })
        .join()
        .expect("thread");
        if cfg!(target_os = "linux") && kernel() >= (6, 12) {
            assert!(granted, "Linux {:?} grants a short slice", kernel());
            assert_eq!(inherited, Some(SHORT_TIME_SLICE));
        } else {
            assert!(!granted);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(nice, imp::nice(), "the nice value is kept");
        }
        // This thread was left alone.
        assert_ne!(time_slice(), Some(SHORT_TIME_SLICE));
        let reset = std::thread::spawn(|| {
            prefer_prompt_wakeups();
            (default_time_slice(), time_slice())
        })
        .join()
        .expect("thread");
        if cfg!(target_os = "linux") && kernel() >= (6, 12) {
            assert_eq!(reset, (true, time_slice()), "back to the default");
        }
    }
}
