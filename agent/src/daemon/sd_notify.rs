//! The systemd notification protocol (`Type=notify`): `READY=1` once the
//! daemon is up, `WATCHDOG=1` while it is alive, `RELOADING=1` / `STOPPING=1`.
//! A datagram to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket);
//! nothing at all when the variable is unset.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives the service.
    pub fn from_env() -> Notifier {
        Notifier::from_vars(
            std::env::var_os("NOTIFY_SOCKET"),
            std::env::var("WATCHDOG_USEC").ok(),
            std::env::var("WATCHDOG_PID").ok(),
            std::process::id(),
        )
    }

    fn from_vars(
        socket: Option<std::ffi::OsString>,
        usec: Option<String>,
        pid: Option<String>,
        me: u32,
    ) -> Notifier {
        use std::os::unix::ffi::OsStrExt;
        let target = socket.filter(|s| !s.is_empty()).map(|s| {
            let b = s.as_bytes();
            match b.strip_prefix(b"@") {
                Some(name) => Target::Abstract(name.to_vec()),
                None => Target::Path(s.into()),
            }
        });
        let for_me = pid.is_none_or(|p| p.trim().parse::<u32>().is_ok_and(|p| p == me));
        let watchdog = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && for_me)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half the watchdog timeout.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one state line; errors are returned for the log, never fatal. A
    /// full queue (a listener that does not read) drops the message.
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sock = UnixDatagram::unbound()?;
        // never block the daemon on a listener that does not read
        sock.set_nonblocking(true)?;
        match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)?
            }
        };
        Ok(())
    }

    /// [`Notifier::notify`], where a full queue is not worth a warning.
    pub fn notify_quiet(&self, state: &str) -> std::io::Result<()> {
        match self.notify(state) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment() {
        let n = Notifier::from_vars(None, None, None, 1);
        assert!(n.target.is_none() && n.watchdog_every().is_none());
        n.notify("READY=1").unwrap();
        let n = Notifier::from_vars(
            Some("@vigil-x".into()),
            Some("30000000".into()),
            Some("42".into()),
            42,
        );
        assert_eq!(n.target, Some(Target::Abstract(b"vigil-x".to_vec())));
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(15)));
        // the watchdog is meant for another process
        let n = Notifier::from_vars(None, Some("30000000".into()), Some("7".into()), 42);
        assert!(n.watchdog_every().is_none());
    }

    #[test]
    fn sends_datagrams_to_a_path_and_an_abstract_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_vars(Some(path.clone().into()), None, None, 1);
        n.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("vigil-agent-daemon-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::from_vars(Some(format!("@{name}").into()), None, None, 1);
        n.notify("WATCHDOG=1").unwrap();
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }
}
