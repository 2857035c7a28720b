//! Ctrl-C (SIGINT) as a stream whose handler is installed the moment it is created, so a signal
//! arriving right after a command announced itself is never lost to the default action (which
//! would kill the process without the clean-stop message).

/// An installed Ctrl-C listener.
pub struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Installs the handler now (must be called inside the runtime).
    pub fn install() -> std::io::Result<Interrupts> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            Ok(Interrupts { signal })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupts {})
        }
    }

    /// Waits for the next Ctrl-C; `false` if signals can no longer be received.
    pub async fn recv(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
