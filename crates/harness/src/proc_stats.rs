//! What a process has used, read from Linux's /proc: CPU time and peak memory, for the
//! bench's per-job figures. Elsewhere (or for a process already reaped) there is no
//! reading, never a wrong one.

/// CPU time `pid` has used, user + system, in µs.
pub fn cpu_usec(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(command)`, which may hold spaces: state is the 1st, so utime
    // (14th of the line) is the 12th and stime the 13th.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks_per_s = rustix::param::clock_ticks_per_second() as f64;
    Some((utime + stime) / ticks_per_s * 1e6)
}

/// The peak resident set of `pid` (VmHWM), in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Whether children can be pinned apart from a server on CPU 0: `taskset` runs and the
/// machine has a CPU beyond `cpu`'s number.
pub fn can_pin(cpu: usize) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus > cpu
        && std::process::Command::new("taskset")
            .arg("-V")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        let me = std::process::id();
        assert!(cpu_usec(me).is_some_and(|us| us >= 0.0));
        assert!(peak_rss_mb(me).is_some_and(|mb| mb > 0.0));
        assert_eq!(cpu_usec(u32::MAX), None, "no such process");
    }
}
