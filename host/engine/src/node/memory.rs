//! The engine process's memory, as its heartbeats report it to the
//! controller (the dashboard's engine rows, `/metrics`).

/// The process's resident memory in bytes, from `/proc/self/status`
/// (`VmRSS`); 0 where the system does not say (not Linux).
pub(super) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| vm_rss_bytes(&status))
        .unwrap_or(0)
}

/// The `VmRSS:   1234 kB` line of a `/proc/PID/status` text, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_is_read_in_bytes() {
        let status = "Name:\twasp\nVmPeak:\t  99 kB\nVmRSS:\t   2048 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_bytes(status), Some(2 << 20));
        assert_eq!(vm_rss_bytes("Name:\twasp\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\tmany kB\n"), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        // Linux is where the engines run (and CI): the file is there.
        assert!(resident_bytes() > 1 << 20);
    }
}
