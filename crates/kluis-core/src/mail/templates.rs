//! The messages, in English and Dutch: plain text plus a simple HTML alternative. Every
//! value put into the HTML is escaped.

use super::smtp::OutgoingMail;

/// Languages Kluis writes emails and account pages in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    En,
    Nl,
}

impl Locale {
    pub fn parse(s: &str) -> Option<Locale> {
        match s {
            "en" => Some(Locale::En),
            "nl" => Some(Locale::Nl),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Nl => "nl",
        }
    }
}

pub(crate) struct Recipient<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub organisation: &'a str,
}

pub(crate) fn password_reset(
    l: Locale,
    to: &Recipient<'_>,
    link: &str,
    minutes: u64,
) -> OutgoingMail {
    let (subject, lines) = match l {
        Locale::En => (
            "Reset your Kluis password".to_owned(),
            vec![
                format!("Hello {},", to.name),
                format!(
                    "Someone asked to reset the password of your account at {} in Kluis. Open this link within {minutes} minutes to choose a new password:",
                    to.organisation
                ),
                LINK.to_owned(),
                "The link works once. If you did not ask for this, ignore this email: your password stays as it is.".to_owned(),
            ],
        ),
        Locale::Nl => (
            "Stel je Kluis-wachtwoord opnieuw in".to_owned(),
            vec![
                format!("Hallo {},", to.name),
                format!(
                    "Iemand heeft gevraagd het wachtwoord van je account bij {} in Kluis opnieuw in te stellen. Open deze link binnen {minutes} minuten om een nieuw wachtwoord te kiezen:",
                    to.organisation
                ),
                LINK.to_owned(),
                "De link werkt één keer. Heb je dit niet gevraagd? Negeer dan deze e-mail: je wachtwoord blijft ongewijzigd.".to_owned(),
            ],
        ),
    };
    render(to, subject, &lines, Some(link))
}

pub(crate) fn invitation(l: Locale, to: &Recipient<'_>, link: &str, hours: u64) -> OutgoingMail {
    let (subject, lines) = match l {
        Locale::En => (
            format!("You are invited to {} in Kluis", to.organisation),
            vec![
                format!("Hello {},", to.name),
                format!(
                    "You have been invited to {} in Kluis. Open this link within {hours} hours to choose your password and activate your account:",
                    to.organisation
                ),
                LINK.to_owned(),
                "The link works once. If you did not expect this invitation, ignore this email.".to_owned(),
            ],
        ),
        Locale::Nl => (
            format!("Je bent uitgenodigd voor {} in Kluis", to.organisation),
            vec![
                format!("Hallo {},", to.name),
                format!(
                    "Je bent uitgenodigd voor {} in Kluis. Open deze link binnen {hours} uur om je wachtwoord te kiezen en je account te activeren:",
                    to.organisation
                ),
                LINK.to_owned(),
                "De link werkt één keer. Verwachtte je deze uitnodiging niet? Negeer dan deze e-mail.".to_owned(),
            ],
        ),
    };
    render(to, subject, &lines, Some(link))
}

pub(crate) fn account_locked(
    l: Locale,
    to: &Recipient<'_>,
    until_utc: &str,
    reset_page: &str,
) -> OutgoingMail {
    let (subject, lines) = match l {
        Locale::En => (
            "Your Kluis account was locked".to_owned(),
            vec![
                format!("Hello {},", to.name),
                format!(
                    "After too many failed sign-in attempts, your account at {} in Kluis is locked until {until_utc} (UTC).",
                    to.organisation
                ),
                "If that was not you, someone may know or be guessing your password. You can choose a new one here:".to_owned(),
                LINK.to_owned(),
            ],
        ),
        Locale::Nl => (
            "Je Kluis-account is geblokkeerd".to_owned(),
            vec![
                format!("Hallo {},", to.name),
                format!(
                    "Na te veel mislukte aanmeldpogingen is je account bij {} in Kluis geblokkeerd tot {until_utc} (UTC).",
                    to.organisation
                ),
                "Was jij dit niet? Dan kent of raadt iemand misschien je wachtwoord. Kies hier een nieuw wachtwoord:".to_owned(),
                LINK.to_owned(),
            ],
        ),
    };
    render(to, subject, &lines, Some(reset_page))
}

/// Support access: a request, a grant, its first use, or a watching rule's alert.
#[allow(clippy::too_many_arguments)]
pub(crate) fn support_access(
    l: Locale,
    to: &Recipient<'_>,
    notice: crate::support::SupportNotice,
    operator: &str,
    reason: &str,
    expires_utc: &str,
    page: &str,
) -> OutgoingMail {
    use crate::support::SupportNotice as N;
    let org = to.organisation;
    let (subject, what) = match (l, notice) {
        (Locale::En, N::Requested) => (
            "Kluis support asks for access".to_owned(),
            format!(
                "{operator} of Kluis support asks for access to {org}. Nothing is opened until an owner or admin approves it."
            ),
        ),
        (Locale::Nl, N::Requested) => (
            "Kluis-support vraagt toegang".to_owned(),
            format!(
                "{operator} van Kluis-support vraagt toegang tot {org}. Er wordt niets geopend tot een eigenaar of beheerder dit goedkeurt."
            ),
        ),
        (Locale::En, N::Granted) => (
            "Support access to your organisation was granted".to_owned(),
            format!("{operator} of Kluis support has access to {org} until {expires_utc} (UTC)."),
        ),
        (Locale::Nl, N::Granted) => (
            "Supporttoegang tot je organisatie is verleend".to_owned(),
            format!(
                "{operator} van Kluis-support heeft toegang tot {org} tot {expires_utc} (UTC)."
            ),
        ),
        (Locale::En, N::FirstUse) => (
            "Kluis support is now working in your organisation".to_owned(),
            format!(
                "{operator} of Kluis support just used the access to {org} for the first time."
            ),
        ),
        (Locale::Nl, N::FirstUse) => (
            "Kluis-support werkt nu in je organisatie".to_owned(),
            format!(
                "{operator} van Kluis-support gebruikte de toegang tot {org} zojuist voor het eerst."
            ),
        ),
        (Locale::En, N::Alert(rule)) => (
            "Unusual support access to your organisation".to_owned(),
            format!(
                "The use of support access to {org} by {operator} matched the rule \"{rule}\". You can revoke the access at once."
            ),
        ),
        (Locale::Nl, N::Alert(rule)) => (
            "Ongebruikelijke supporttoegang tot je organisatie".to_owned(),
            format!(
                "Het gebruik van supporttoegang tot {org} door {operator} viel onder de regel \"{rule}\". Je kunt de toegang direct intrekken."
            ),
        ),
    };
    let (hello, why, see) = match l {
        Locale::En => (
            format!("Hello {},", to.name),
            format!("Reason given: {reason}"),
            "Every request made under this access is listed here, where you can also end it:",
        ),
        Locale::Nl => (
            format!("Hallo {},", to.name),
            format!("Opgegeven reden: {reason}"),
            "Elk verzoek onder deze toegang staat hier, waar je de toegang ook kunt beëindigen:",
        ),
    };
    render(
        to,
        subject,
        &[hello, what, why, see.to_owned(), LINK.to_owned()],
        Some(page),
    )
}

/// What an organisation's owners are told about an incident that affects it (seed 003: within
/// 2 business days). Times are UTC; categories are the register's names.
pub(crate) struct IncidentNotice<'a> {
    pub severity: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub detected_utc: &'a str,
    pub categories: &'a [String],
    pub personal_data_breach: bool,
    pub measures: &'a str,
}

pub(crate) fn incident_notice(
    l: Locale,
    to: &Recipient<'_>,
    n: &IncidentNotice<'_>,
) -> OutgoingMail {
    let categories = if n.categories.is_empty() {
        "-".to_owned()
    } else {
        n.categories.join(", ")
    };
    let (subject, lines) = match l {
        Locale::En => (
            format!("Security incident notice ({}): {}", n.severity, n.title),
            vec![
                format!("Hello {},", to.name),
                format!(
                    "We are informing you, as an owner of {} in Kluis, of a security incident that affects your organisation.",
                    to.organisation
                ),
                format!("What happened: {}", n.description),
                format!(
                    "Detected: {} (UTC). Severity: {}.",
                    n.detected_utc, n.severity
                ),
                format!("Data concerned: {categories}."),
                if n.personal_data_breach {
                    "This is a breach of personal data. As the controller you may have to notify the Dutch Data Protection Authority (Autoriteit Persoonsgegevens) within 72 hours and, where required, the people concerned.".to_owned()
                } else {
                    "On what we know now, no personal data was breached.".to_owned()
                },
                format!("Measures taken: {}", n.measures),
            ],
        ),
        Locale::Nl => (
            format!(
                "Melding beveiligingsincident ({}): {}",
                severity_nl(n.severity),
                n.title
            ),
            vec![
                format!("Hallo {},", to.name),
                format!(
                    "Als eigenaar van {} in Kluis informeren we je over een beveiligingsincident dat je organisatie raakt.",
                    to.organisation
                ),
                format!("Wat er gebeurde: {}", n.description),
                format!(
                    "Ontdekt: {} (UTC). Ernst: {}.",
                    n.detected_utc,
                    severity_nl(n.severity)
                ),
                format!("Betrokken gegevens: {categories}."),
                if n.personal_data_breach {
                    "Dit is een datalek met persoonsgegevens. Als verwerkingsverantwoordelijke moet je dit mogelijk binnen 72 uur melden bij de Autoriteit Persoonsgegevens en, waar nodig, aan de betrokkenen.".to_owned()
                } else {
                    "Voor zover nu bekend zijn er geen persoonsgegevens gelekt.".to_owned()
                },
                format!("Genomen maatregelen: {}", n.measures),
            ],
        ),
    };
    render(to, subject, &lines, None)
}

fn severity_nl(s: &str) -> &str {
    match s {
        "critical" => "kritiek",
        "high" => "hoog",
        "medium" => "middel",
        "low" => "laag",
        other => other,
    }
}

/// Placeholder line replaced by the link (a plain line in text, an anchor in HTML).
const LINK: &str = "\u{0}link";

fn render(
    to: &Recipient<'_>,
    subject: String,
    lines: &[String],
    link: Option<&str>,
) -> OutgoingMail {
    let link = link.unwrap_or_default();
    let text = lines
        .iter()
        .map(|l| {
            if l == LINK {
                link.to_owned()
            } else {
                l.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n\n-- \nKluis\n";
    let mut html =
        String::from("<!doctype html><html><body style=\"font-family:sans-serif;max-width:36em\">");
    for l in lines {
        if l == LINK {
            html.push_str(&format!(
                "<p><a href=\"{0}\">{0}</a></p>",
                escape_html(link)
            ));
        } else {
            html.push_str(&format!("<p>{}</p>", escape_html(l)));
        }
    }
    html.push_str("<p style=\"color:#666\">Kluis</p></body></html>");
    OutgoingMail {
        to: to.email.to_owned(),
        to_name: to.name.to_owned(),
        subject,
        text,
        html,
    }
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_names_and_keeps_the_link() {
        let to = Recipient {
            email: "a@b.nl",
            name: "<script>x</script>",
            organisation: "A&B",
        };
        let m = invitation(Locale::Nl, &to, "https://k.example/invite#abc", 72);
        assert!(m.html.contains("&lt;script&gt;") && !m.html.contains("<script>"));
        assert!(m.html.contains("A&amp;B"));
        assert!(m.text.contains("https://k.example/invite#abc"));
        assert!(m.html.contains("href=\"https://k.example/invite#abc\""));
        assert!(m.text.contains("72 uur") && m.subject.contains("uitgenodigd"));
        let e = password_reset(Locale::En, &to, "https://k.example/reset#x", 30);
        assert!(e.text.contains("30 minutes") && !e.text.contains('\u{0}'));
    }
}
