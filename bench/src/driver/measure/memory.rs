//! Process memory figures read from `/proc/<pid>`: peak RSS (`VmHWM`) and minor page faults.

/// `minflt` of `/proc/<pid>/stat` (field 10; the command name in field 2 may hold spaces, so
/// count from the closing parenthesis).
pub(super) fn minor_faults(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(7)?.parse().ok()
}

pub(super) fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
