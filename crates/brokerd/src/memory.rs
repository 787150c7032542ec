//! The allocator's arenas, limited to one per core.
//!
//! glibc lets threads spread over up to eight malloc arenas per core, and memory freed into
//! one arena is reused only by allocations from it. An upload hands its chunks between runtime
//! workers and blocking threads, so with many arenas each keeps free chunks of its own and
//! resident memory grows with the upload's length: the B2 benchmark measured a growth of
//! 12 MiB for a 100 MiB upload against 29 MiB for 1 GiB. With one arena per core both were
//! 21–22 MiB, at the same upload speed.

/// Limits glibc's malloc to one arena per core (at least two) unless `MALLOC_ARENA_MAX` sets a
/// limit already; returns the limit set, if any. Call it before any other thread starts.
pub fn limit_arenas() -> Option<usize> {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return None;
    }
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    set_arena_limit(arenas).then_some(arenas)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_limit(arenas: usize) -> bool {
    let Ok(arenas) = libc::c_int::try_from(arenas) else {
        return false;
    };
    // SAFETY: mallopt only changes one of malloc's parameters, and returns 1 when it did.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_limit(_arenas: usize) -> bool {
    // Other allocators do not hand out per-thread arenas this way.
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_the_limit() {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            let limit = super::limit_arenas().expect("mallopt accepted the limit");
            assert!(limit >= 2);
        }
    }
}
