//! Malware scanning with ClamAV's `clamd` over its unix socket, `INSTREAM` command (documented in
//! clamd(8)): `zINSTREAM\0`, then chunks each prefixed with their length as a 4-byte big-endian
//! integer, a zero length to end, and one reply line (`stream: OK`, `stream: <name> FOUND`, or
//! an error). Written here rather than taken from a crate because an upload is scanned while it
//! streams in (the same bytes go to the sealer and to clamd, chunk by chunk), which needs the
//! protocol's incremental form; it is these few lines.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// clamd accepts chunks of any size up to its StreamMaxLength; keep each write bounded.
const MAX_PIECE: usize = 1 << 20;

/// Where clamd listens and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Clamd {
    pub socket: PathBuf,
    /// Connect, each write, and the final verdict must each finish within this.
    pub timeout: Duration,
}

/// What clamd said about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature name clamd reported.
    Infected(String),
    /// The scanner could not give a verdict (down, timeout, size limit): the file stays pending.
    Unavailable(String),
}

/// One INSTREAM scan in progress.
pub struct ScanSession {
    stream: Option<UnixStream>,
    failed: Option<String>,
    timeout: Duration,
}

impl Clamd {
    /// Opens a scan. A scanner that cannot be reached gives a session that only fails (the
    /// upload goes on and the file is left pending).
    pub async fn start(&self) -> ScanSession {
        let connect = async {
            let mut s = UnixStream::connect(&self.socket).await?;
            s.write_all(b"zINSTREAM\0").await?;
            Ok::<_, std::io::Error>(s)
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(s)) => ScanSession {
                stream: Some(s),
                failed: None,
                timeout: self.timeout,
            },
            Ok(Err(e)) => ScanSession::failed(format!("cannot reach clamd: {e}"), self.timeout),
            Err(_) => ScanSession::failed("clamd did not answer in time".into(), self.timeout),
        }
    }

    /// `PING` -> `PONG`: whether clamd is up.
    pub async fn ping(&self) -> bool {
        let ping = async {
            let mut s = UnixStream::connect(&self.socket).await?;
            s.write_all(b"zPING\0").await?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(r)) if r.starts_with(b"PONG"))
    }
}

impl ScanSession {
    fn failed(why: String, timeout: Duration) -> Self {
        ScanSession {
            stream: None,
            failed: Some(why),
            timeout,
        }
    }

    /// Sends the next bytes of the file. Errors are kept for [`ScanSession::finish`].
    pub async fn send(&mut self, data: &[u8]) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        for piece in data.chunks(MAX_PIECE) {
            let len = u32::try_from(piece.len()).unwrap_or(u32::MAX).to_be_bytes();
            let write = async {
                s.write_all(&len).await?;
                s.write_all(piece).await
            };
            let r = tokio::time::timeout(self.timeout, write).await;
            if !matches!(r, Ok(Ok(()))) {
                // clamd closes the stream when it refuses (e.g. INSTREAM size limit); its
                // reply, if any, is read in `finish`.
                self.failed = Some("clamd stopped reading the stream".into());
                return;
            }
        }
    }

    /// Ends the stream and reads the verdict.
    pub async fn finish(mut self) -> Verdict {
        let Some(mut s) = self.stream.take() else {
            return Verdict::Unavailable(self.failed.unwrap_or_default());
        };
        let end = async {
            if self.failed.is_none() {
                s.write_all(&[0, 0, 0, 0]).await?;
            }
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = match tokio::time::timeout(self.timeout, end).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Verdict::Unavailable(format!("clamd: {e}")),
            Err(_) => return Verdict::Unavailable("clamd did not answer in time".into()),
        };
        parse_reply(&reply, self.failed.is_some())
    }
}

fn parse_reply(reply: &[u8], stream_failed: bool) -> Verdict {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n']).trim();
    let body = text.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") if !stream_failed => Verdict::Clean,
        Some(b) if b.ends_with(" FOUND") => {
            Verdict::Infected(b.trim_end_matches(" FOUND").trim().to_owned())
        }
        _ => Verdict::Unavailable(format!("clamd: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_strictly() {
        assert_eq!(parse_reply(b"stream: OK\0", false), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\0", false),
            Verdict::Infected("Eicar-Test-Signature".into())
        );
        // A truncated stream is never "clean", even if clamd says OK to what it got.
        assert!(matches!(
            parse_reply(b"stream: OK\0", true),
            Verdict::Unavailable(_)
        ));
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0", false),
            Verdict::Unavailable(_)
        ));
        assert!(matches!(parse_reply(b"", false), Verdict::Unavailable(_)));
    }
}
