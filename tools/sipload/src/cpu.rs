//! CPU time of processes from /proc (Linux): the generator's own, to tell when it is the
//! bottleneck, and optionally the server's, sampled at the exact edges of the measured
//! window.

use std::io;
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat times (`USER_HZ`, what `getconf CLK_TCK`
/// prints): part of the kernel ABI, 100 on every architecture Linux exposes it on.
const USER_HZ: u64 = 100;

/// A process: this one or another by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The generator itself.
    Own,
    /// Another process (the server under test).
    Pid(u32),
}

/// User + system CPU time of a whole process (all its threads, live and exited), with
/// the 10 ms resolution of /proc/PID/stat.
pub fn process_cpu(p: Process) -> io::Result<Duration> {
    let path = match p {
        Process::Own => "/proc/self/stat".to_owned(),
        Process::Pid(pid) => format!("/proc/{pid}/stat"),
    };
    let text = std::fs::read_to_string(path)?;
    let ticks = parse_stat_ticks(&text).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat format")
    })?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime (fields 14 and 15) from a /proc/PID/stat line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// How many CPUs this process may run on (taskset), from /proc/self/status.
pub fn allowed_cpus() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    count_cpu_list(list.trim())
}

/// Counts a CPU list such as `0-3,6,8-9`.
fn count_cpu_list(list: &str) -> Option<usize> {
    list.split(',').try_fold(0usize, |n, part| {
        let part = part.trim();
        Some(
            n + match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                    b.checked_sub(a)? + 1
                }
                None => {
                    part.parse::<usize>().ok()?;
                    1
                }
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_odd_command_name() {
        let line =
            "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_ticks(line), Some(281));
        assert_eq!(parse_stat_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(process_cpu(Process::Own).is_ok());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("1"), Some(1));
        assert_eq!(count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }
}
