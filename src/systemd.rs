//! systemd integration without libsystemd: the notify protocol (READY=1, STOPPING=1,
//! WATCHDOG=1, STATUS=) is one datagram on the socket named by `NOTIFY_SOCKET`, and socket
//! activation hands the listening socket over as fd 3 (`LISTEN_FDS`, `LISTEN_PID`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where to send notifications; absent when not started by systemd with `Type=notify`.
pub struct Notifier {
    socket: UnixDatagram,
    address: NotifyAddress,
}

enum NotifyAddress {
    Path(std::path::PathBuf),
    /// Linux abstract socket (`@name` in `NOTIFY_SOCKET`).
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; None when unset or unusable (logged).
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(value.as_os_str()).to_vec();
        let address = match bytes.split_first() {
            Some((b'@', name)) => NotifyAddress::Abstract(name.to_vec()),
            Some((b'/', _)) => NotifyAddress::Path(value.into()),
            _ => {
                log::warn!("NOTIFY_SOCKET={value:?} is neither a path nor @abstract: not notifying systemd");
                return None;
            }
        };
        match UnixDatagram::unbound() {
            Ok(socket) => Some(Notifier { socket, address }),
            Err(err) => {
                log::warn!("cannot create the systemd notify socket: {err}");
                None
            }
        }
    }

    /// Sends one notification ("READY=1\nSTATUS=..."); failures are logged at debug level
    /// (systemd gone is not the agent's problem).
    pub fn notify(&self, state: &str) {
        let sent = match &self.address {
            NotifyAddress::Path(path) => self.socket.send_to(state.as_bytes(), path),
            NotifyAddress::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|addr| self.socket.send_to_addr(state.as_bytes(), &addr))
            }
        };
        if let Err(err) = sent {
            log::debug!("cannot notify systemd ({state:?}): {err}");
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1.
pub fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64).saturating_mul(1_000_000) + now.tv_nsec as u64 / 1000
}

/// How often to send WATCHDOG=1: half of `WATCHDOG_USEC`, when the watchdog is on for us.
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_USEC` and `WATCHDOG_PID` as sd_watchdog_enabled reads them.
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// The first socket passed by systemd socket activation (fd 3), as a std listener.
pub fn activated_listener() -> Result<std::net::TcpListener, String> {
    let fds = parse_listen_fds(
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::process::id(),
    )?;
    if fds > 1 {
        log::warn!("systemd passed {fds} sockets; serving on the first only");
    }
    const FIRST_FD: i32 = 3;
    // SAFETY: fstat on an fd number only reads its metadata.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(FIRST_FD, &mut stat) } != 0
        || (stat.st_mode & libc::S_IFMT) != libc::S_IFSOCK
    {
        return Err("--web.systemd-socket: fd 3 is not a socket".into());
    }
    // SAFETY: systemd hands fd 3 to this process, which owns it from here on.
    let listener =
        unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(FIRST_FD) };
    // Later children must not inherit the socket variables.
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDNAMES");
    Ok(listener)
}

pub fn parse_listen_fds(fds: Option<&str>, pid: Option<&str>, own_pid: u32) -> Result<u32, String> {
    let (Some(fds), Some(pid)) = (fds, pid) else {
        return Err(
            "--web.systemd-socket: no socket from systemd (LISTEN_FDS/LISTEN_PID unset; start the agent from its .socket unit)".into(),
        );
    };
    if pid.trim().parse::<u32>().ok() != Some(own_pid) {
        return Err(format!(
            "--web.systemd-socket: the sockets are for process {pid}, not this one"
        ));
    }
    match fds.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "--web.systemd-socket: LISTEN_FDS={fds:?} gives no socket"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_half_the_timeout_and_only_for_us() {
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("x"), None, 7), None);
        assert_eq!(parse_watchdog(None, None, 7), None);
    }

    #[test]
    fn listen_fds_must_be_ours() {
        assert_eq!(parse_listen_fds(Some("1"), Some("9"), 9), Ok(1));
        assert!(parse_listen_fds(Some("1"), Some("8"), 9).is_err());
        assert!(parse_listen_fds(Some("0"), Some("9"), 9).is_err());
        assert!(parse_listen_fds(None, None, 9).is_err());
    }

    #[test]
    fn notifications_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            address: NotifyAddress::Path(path),
        };
        notifier.notify("READY=1\nSTATUS=serving");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }
}
