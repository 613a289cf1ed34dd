//! The SMTP side: where to send, how securely, and one delivery attempt.
//!
//! `smtp://host[:port]` requires STARTTLS (port 587 by default), `smtps://host[:port]` is
//! implicit TLS (465). Plain text exists only as `smtp+plain://` and only to a loopback
//! address (a local relay), so a typo cannot send credentials and reset links in the clear.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    ImplicitTls,
    /// No encryption: loopback relays only.
    PlainLoopback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
}

/// Parses `smtp://`, `smtps://` or `smtp+plain://` URLs (no user info: credentials are
/// separate settings, the password a secret).
pub fn parse_smtp_url(url: &str) -> Result<SmtpTarget, String> {
    let (security, rest, default_port) = if let Some(r) = url.strip_prefix("smtp://") {
        (SmtpSecurity::StartTls, r, 587)
    } else if let Some(r) = url.strip_prefix("smtps://") {
        (SmtpSecurity::ImplicitTls, r, 465)
    } else if let Some(r) = url.strip_prefix("smtp+plain://") {
        (SmtpSecurity::PlainLoopback, r, 25)
    } else {
        return Err("smtp_url must start with smtp:// (STARTTLS), smtps:// (TLS) or smtp+plain:// (loopback only)".into());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['@', '/', '?', '#']) || rest.is_empty() {
        return Err(
            "smtp_url takes only host and port (credentials go in smtp_username / smtp_password)"
                .into(),
        );
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("smtp_url: unclosed [")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "smtp_url: bad port")?,
            None if after.is_empty() => default_port,
            None => return Err("smtp_url: bad port".into()),
        };
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse::<u16>().map_err(|_| "smtp_url: bad port")?,
            ),
            None => (rest.to_owned(), default_port),
        }
    };
    if host.is_empty() || port == 0 {
        return Err("smtp_url: missing host or port".into());
    }
    if security == SmtpSecurity::PlainLoopback && !is_loopback(&host) {
        return Err(format!(
            "smtp+plain:// is allowed only to a loopback address, not {host}; use smtp:// (STARTTLS) or smtps://"
        ));
    }
    Ok(SmtpTarget {
        host,
        port,
        security,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Everything needed to talk to the relay. Debug never shows the password.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp_url: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Sender address, e.g. `Kluis <no-reply@example.nl>`.
    pub from: String,
    /// Base of every link in a message, e.g. `https://crm.example.nl`.
    pub public_url: String,
    /// Extra CA certificates (PEM) trusted for the relay, besides the public web roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// First retry after this long; doubles each attempt, at most an hour.
    pub retry_initial: Duration,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// Connection and command timeout.
    pub timeout: Duration,
    /// How often every tenant's outbox is looked at, besides the wake-ups after each queued
    /// message (other nodes' messages, retries after a restart).
    pub sweep_interval: Duration,
}

/// Why an attempt failed, without anything the relay echoed (it may quote addresses).
#[derive(Debug, Clone)]
pub struct SendFailure {
    /// The relay refused the message for good (5xx): retrying will not help.
    pub permanent: bool,
    pub reason: String,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    pub(crate) config: MailConfig,
}

/// One rendered message.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutgoingMail {
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mailer {
    pub fn new(config: MailConfig) -> Result<Mailer, String> {
        let target = parse_smtp_url(&config.smtp_url)?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| "mail_from is not a valid address".to_owned())?;
        let public = config.public_url.trim_end_matches('/');
        if !public.starts_with("https://") {
            return Err("public_url must start with https:// (links in emails)".into());
        }
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
                .port(target.port)
                .timeout(Some(config.timeout));
        let tls = || -> Result<TlsParameters, String> {
            let mut p = TlsParameters::builder(target.host.clone());
            if let Some(pem) = &config.extra_ca_pem {
                let mut rd = pem.as_slice();
                let mut n = 0;
                for der in rustls_pemfile::certs(&mut rd) {
                    let der = der.map_err(|_| "smtp_ca_file: unreadable PEM".to_owned())?;
                    p = p.add_root_certificate(
                        Certificate::from_der(der.to_vec())
                            .map_err(|_| "smtp_ca_file: bad certificate".to_owned())?,
                    );
                    n += 1;
                }
                if n == 0 {
                    return Err("smtp_ca_file holds no certificate".into());
                }
            }
            p.build_rustls().map_err(|e| format!("SMTP TLS setup: {e}"))
        };
        builder = match target.security {
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::ImplicitTls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::PlainLoopback => builder.tls(Tls::None),
        };
        match (&config.username, &config.password) {
            (Some(u), Some(p)) => {
                builder =
                    builder.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
            }
            (None, None) => {}
            _ => return Err("set both smtp_username and smtp_password, or neither".into()),
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            config: MailConfig {
                public_url: public.to_owned(),
                ..config
            },
        })
    }

    /// One delivery attempt.
    pub async fn send(&self, m: &OutgoingMail) -> Result<(), SendFailure> {
        let to: Mailbox = format!("{} <{}>", quote_name(&m.to_name), m.to)
            .parse()
            .or_else(|_| m.to.parse())
            .map_err(|_| SendFailure {
                permanent: true,
                reason: "invalid recipient address".into(),
            })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                m.html.clone(),
            ))
            .map_err(|_| SendFailure {
                permanent: true,
                reason: "message could not be built".into(),
            })?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendFailure {
                permanent: e.is_permanent(),
                reason: describe(&e),
            })
    }
}

/// A reason safe to store and log: the kind of failure and the reply code, never the text.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let code = e.status().map(|c| format!(" ({c})")).unwrap_or_default();
    let kind = if e.is_permanent() {
        "rejected permanently"
    } else if e.is_transient() {
        "rejected temporarily"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else if e.is_client() {
        "client error"
    } else {
        "connection failed"
    };
    format!("{kind}{code}")
}

/// Display names are quoted so commas and the like cannot add recipients.
fn quote_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let t = parse_smtp_url("smtp://mail.example.nl").unwrap();
        assert_eq!((t.port, t.security), (587, SmtpSecurity::StartTls));
        let t = parse_smtp_url("smtps://mail.example.nl:2465").unwrap();
        assert_eq!((t.port, t.security), (2465, SmtpSecurity::ImplicitTls));
        let t = parse_smtp_url("smtp+plain://127.0.0.1:2525").unwrap();
        assert_eq!((t.port, t.security), (2525, SmtpSecurity::PlainLoopback));
        let t = parse_smtp_url("smtp+plain://[::1]:25").unwrap();
        assert_eq!(t.host, "::1");
        assert!(parse_smtp_url("smtp+plain://mail.example.nl:25").is_err());
        assert!(parse_smtp_url("smtp+plain://10.0.0.1:25").is_err());
        assert!(parse_smtp_url("smtp://user:pw@mail.example.nl").is_err());
        assert!(parse_smtp_url("http://mail.example.nl").is_err());
        assert!(parse_smtp_url("smtp://mail.example.nl:0").is_err());
        assert!(parse_smtp_url("smtp://mail.example.nl:x").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = MailConfig {
            smtp_url: "smtp://mail.example.nl".into(),
            username: Some("kluis".into()),
            password: Some(SecretString::from("hunter2-geheim")),
            from: "Kluis <no-reply@example.nl>".into(),
            public_url: "https://crm.example.nl".into(),
            extra_ca_pem: None,
            retry_initial: Duration::from_secs(30),
            max_attempts: 10,
            timeout: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(60),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(Mailer::new(c.clone()).is_ok());
        let bad = MailConfig {
            public_url: "http://crm.example.nl".into(),
            ..c
        };
        assert!(Mailer::new(bad).is_err());
    }
}
