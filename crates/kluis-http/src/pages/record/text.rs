//! The record pages' strings (English and Dutch) and their number and date formats.
//!
//! The money and date helpers follow the shared formats (nl `€ 1.234,50`, `25-11-2026`;
//! en `€1,234.50`, `2026-11-25`). They are local until `pages/format.rs` (helper "tables")
//! is merged; then they can call it.

use kluis_core::crm::ObjectType;

use super::super::i18n::Lang;

/// Every string of the record pages.
pub struct RecText {
    pub lang: Lang,
    pub save: &'static str,
    pub details: &'static str,
    pub revision: &'static str,
    pub read_only: &'static str,
    pub company: &'static str,
    pub no_company: &'static str,
    pub set_company: &'static str,
    pub remove: &'static str,
    pub add: &'static str,
    pub contacts: &'static str,
    pub related: &'static str,
    pub add_contact: &'static str,
    pub add_related: &'static str,
    pub none: &'static str,
    pub tags: &'static str,
    pub add_tag: &'static str,
    pub new_tag: &'static str,
    pub new_tag_hint: &'static str,
    pub choose: &'static str,
    pub timeline: &'static str,
    pub timeline_empty: &'static str,
    pub kind_note: &'static str,
    pub kind_task: &'static str,
    pub kind_change: &'static str,
    pub kind_created: &'static str,
    pub kind_event: &'static str,
    pub restore_version: &'static str,
    pub add_note: &'static str,
    pub add_task: &'static str,
    pub task_title: &'static str,
    pub due_date: &'static str,
    pub trash_title: &'static str,
    pub move_to_trash: &'static str,
    pub restore_from_trash: &'static str,
    pub trash_empty: &'static str,
    pub deleted_at: &'static str,
    pub deleted_by: &'static str,
    pub type_: &'static str,
    pub name: &'static str,
    pub create: &'static str,
    pub new_contact: &'static str,
    pub new_company: &'static str,
    pub new_deal: &'static str,
    pub new_ticket: &'static str,
    pub conflict_title: &'static str,
    pub conflict_intro: &'static str,
    pub conflict_field: &'static str,
    pub conflict_yours: &'static str,
    pub conflict_stored: &'static str,
    pub conflict_apply: &'static str,
    pub conflict_keep: &'static str,
    pub my_tasks: &'static str,
    pub overdue: &'static str,
    pub today: &'static str,
    pub upcoming: &'static str,
    pub no_due_date: &'static str,
    pub no_tasks: &'static str,
    pub mark_done: &'static str,
    pub done: &'static str,
    pub open: &'static str,
    pub all_tasks: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub forbidden_title: &'static str,
    pub forbidden_text: &'static str,
    pub error_title: &'static str,
    pub back: &'static str,
    pub deals: &'static str,
    pub tickets: &'static str,
    pub owner: &'static str,
    pub nobody: &'static str,
    pub stage: &'static str,
    pub priority: &'static str,
    pub amount: &'static str,
    pub currency: &'static str,
    pub close_date: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub api_key: &'static str,
    pub system: &'static str,
    pub created: &'static str,
    pub updated: &'static str,
    pub by: &'static str,
    pub done_saved: &'static str,
    pub done_created: &'static str,
    pub done_trashed: &'static str,
    pub done_restored: &'static str,
    pub done_version: &'static str,
    pub done_note: &'static str,
    pub done_task: &'static str,
    pub done_task_done: &'static str,
    pub view_record: &'static str,
    pub priorities: [(&'static str, &'static str); 4],
    pub labels: &'static [(&'static str, &'static str)],
}

impl RecText {
    pub fn of(lang: Lang) -> &'static RecText {
        match lang {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }

    /// The label of a built-in field or column; the name itself when unknown.
    pub fn label(&self, name: &str) -> String {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map_or_else(|| name.to_owned(), |(_, v)| (*v).to_owned())
    }

    pub fn priority(&self, p: &str) -> &'static str {
        self.priorities
            .iter()
            .find(|(k, _)| *k == p)
            .map_or("?", |(_, v)| v)
    }

    /// A type's name, singular.
    pub fn type_name(&self, t: ObjectType) -> &'static str {
        let (en, nl) = match t {
            ObjectType::Contact => ("Contact", "Contact"),
            ObjectType::Company => ("Company", "Bedrijf"),
            ObjectType::Deal => ("Deal", "Deal"),
            ObjectType::Ticket => ("Ticket", "Ticket"),
            ObjectType::Note => ("Note", "Notitie"),
            ObjectType::Task => ("Task", "Taak"),
        };
        match self.lang {
            Lang::En => en,
            Lang::Nl => nl,
        }
    }

    pub fn done(&self, code: &str) -> Option<&'static str> {
        Some(match code {
            "saved" => self.done_saved,
            "created" => self.done_created,
            "trashed" => self.done_trashed,
            "restored" => self.done_restored,
            "version" => self.done_version,
            "note" => self.done_note,
            "task" => self.done_task,
            "task_done" => self.done_task_done,
            _ => return None,
        })
    }

    /// Money in minor units: nl `€ 1.234,50`, en `€1,234.50`; other currencies by code.
    pub fn money(&self, minor: i64, currency: &str) -> String {
        money(self.lang, minor, currency)
    }

    /// A `YYYY-MM-DD` date: nl `25-11-2026`, en `2026-11-25`.
    pub fn date(&self, ymd: &str) -> String {
        date(self.lang, ymd)
    }

    /// An RFC 3339 time in UTC: nl `25-11-2026 14:05`, en `2026-11-25 14:05`.
    pub fn datetime(&self, rfc3339: &str) -> String {
        datetime(self.lang, rfc3339)
    }
}

fn group(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// An amount in minor units with two decimals, grouped for `lang` (no currency).
pub fn amount(lang: Lang, minor: i64) -> String {
    let neg = minor < 0;
    let abs = minor.unsigned_abs();
    let whole = (abs / 100).to_string();
    let cents = abs % 100;
    let (thousands, decimal) = match lang {
        Lang::Nl => ('.', ','),
        Lang::En => (',', '.'),
    };
    format!(
        "{}{}{decimal}{cents:02}",
        if neg { "-" } else { "" },
        group(&whole, thousands)
    )
}

pub fn money(lang: Lang, minor: i64, currency: &str) -> String {
    let n = amount(lang, minor);
    let symbol = match currency {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        _ => None,
    };
    match (lang, symbol) {
        (Lang::Nl, Some(s)) => format!("{s} {n}"),
        (Lang::En, Some(s)) => format!("{s}{n}"),
        (_, None) => format!("{currency} {n}"),
    }
}

pub fn date(lang: Lang, ymd: &str) -> String {
    let d = ymd.get(..10).unwrap_or(ymd);
    match (lang, d.split('-').collect::<Vec<_>>().as_slice()) {
        (Lang::Nl, [y, m, day]) => format!("{day}-{m}-{y}"),
        _ => d.to_owned(),
    }
}

pub fn datetime(lang: Lang, rfc3339: &str) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
    else {
        return rfc3339.to_owned();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let ymd = format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
    format!("{} {:02}:{:02}", date(lang, &ymd), t.hour(), t.minute())
}

/// Parses an amount as people type it (`1234.50`, `1.234,50`, `1,234.50`, `12`) into minor
/// units; None when it is no amount.
pub fn parse_amount(raw: &str) -> Option<i64> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '€' | '$' | '£'))
        .collect();
    if s.is_empty() {
        return None;
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r.to_owned()),
        None => (false, s),
    };
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return None;
    }
    // The decimal separator: the last separator when followed by one or two digits.
    let last = s.rfind(['.', ',']);
    let (whole, frac) = match last {
        Some(i) if s.len() - i - 1 <= 2 && s.len() - i > 1 => (&s[..i], &s[i + 1..]),
        _ => (s.as_str(), ""),
    };
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let v = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if neg { -v } else { v })
}

pub static EN: RecText = RecText {
    lang: Lang::En,
    save: "Save",
    details: "Details",
    revision: "Revision",
    read_only: "You can view this record but not change it.",
    company: "Company",
    no_company: "No company",
    set_company: "Link company",
    remove: "Remove",
    add: "Add",
    contacts: "Contacts",
    related: "About",
    add_contact: "Add a contact",
    add_related: "Link a record",
    none: "None yet.",
    tags: "Tags",
    add_tag: "Add tag",
    new_tag: "Or a new tag",
    new_tag_hint: "Creates the tag if it does not exist.",
    choose: "Choose…",
    timeline: "Timeline",
    timeline_empty: "Nothing happened yet.",
    kind_note: "Note",
    kind_task: "Task",
    kind_change: "Changed",
    kind_created: "Created",
    kind_event: "Event",
    restore_version: "Restore this version",
    add_note: "Add a note",
    add_task: "Add a task",
    task_title: "Task",
    due_date: "Due date",
    trash_title: "Trash",
    move_to_trash: "Move to trash",
    restore_from_trash: "Restore",
    trash_empty: "The trash is empty.",
    deleted_at: "Deleted",
    deleted_by: "Deleted by",
    type_: "Type",
    name: "Name",
    create: "Create",
    new_contact: "New contact",
    new_company: "New company",
    new_deal: "New deal",
    new_ticket: "New ticket",
    conflict_title: "Someone else changed this record",
    conflict_intro: "Your changes were not saved, because the record changed since you opened it. Nothing was overwritten. Compare the values, then apply yours on the new revision or keep the stored ones.",
    conflict_field: "Field",
    conflict_yours: "Your value",
    conflict_stored: "Stored now",
    conflict_apply: "Apply my values",
    conflict_keep: "Keep the stored values",
    my_tasks: "My tasks",
    overdue: "Overdue",
    today: "Today",
    upcoming: "Upcoming",
    no_due_date: "No due date",
    no_tasks: "No open tasks.",
    mark_done: "Mark done",
    done: "Done",
    open: "Open",
    all_tasks: "All tasks",
    not_found_title: "Not found",
    not_found_text: "There is no such record in your organisation, or it was deleted.",
    forbidden_title: "Not allowed",
    forbidden_text: "You are not allowed to do that.",
    error_title: "Something went wrong",
    back: "Back",
    deals: "Deals",
    tickets: "Tickets",
    owner: "Owner",
    nobody: "Nobody",
    stage: "Stage",
    priority: "Priority",
    amount: "Amount",
    currency: "Currency",
    close_date: "Close date",
    yes: "Yes",
    no: "No",
    api_key: "API key",
    system: "System",
    created: "Created",
    updated: "Updated",
    by: "by",
    done_saved: "Saved.",
    done_created: "Created.",
    done_trashed: "Moved to the trash.",
    done_restored: "Restored from the trash.",
    done_version: "The earlier version is current again.",
    done_note: "Note added.",
    done_task: "Task added.",
    done_task_done: "Task done.",
    view_record: "Open",
    priorities: [
        ("low", "Low"),
        ("normal", "Normal"),
        ("high", "High"),
        ("urgent", "Urgent"),
    ],
    labels: &[
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("email", "Email"),
        ("phone", "Phone"),
        ("mobile", "Mobile"),
        ("job_title", "Job title"),
        ("street", "Street"),
        ("postal_code", "Postal code"),
        ("city", "City"),
        ("country", "Country (NL, BE, …)"),
        ("website", "Website"),
        ("description", "Description"),
        ("name", "Name"),
        ("domain", "Domain"),
        ("industry", "Industry"),
        ("kvk_number", "KvK number"),
        ("vat_number", "VAT number"),
        ("lost_reason", "Reason lost"),
        ("subject", "Subject"),
        ("body", "Note"),
        ("title", "Title"),
        ("owner_id", "Owner"),
        ("stage_id", "Stage"),
        ("priority", "Priority"),
        ("amount", "Amount"),
        ("amount_minor", "Amount"),
        ("currency", "Currency"),
        ("close_date", "Close date"),
        ("due_date", "Due date"),
        ("done", "Done"),
        ("pipeline_id", "Pipeline"),
    ],
};

pub static NL: RecText = RecText {
    lang: Lang::Nl,
    save: "Opslaan",
    details: "Gegevens",
    revision: "Versie",
    read_only: "Je kunt dit record bekijken maar niet wijzigen.",
    company: "Bedrijf",
    no_company: "Geen bedrijf",
    set_company: "Bedrijf koppelen",
    remove: "Verwijderen",
    add: "Toevoegen",
    contacts: "Contacten",
    related: "Over",
    add_contact: "Contact toevoegen",
    add_related: "Record koppelen",
    none: "Nog geen.",
    tags: "Labels",
    add_tag: "Label toevoegen",
    new_tag: "Of een nieuw label",
    new_tag_hint: "Maakt het label aan als het nog niet bestaat.",
    choose: "Kies…",
    timeline: "Tijdlijn",
    timeline_empty: "Er is nog niets gebeurd.",
    kind_note: "Notitie",
    kind_task: "Taak",
    kind_change: "Gewijzigd",
    kind_created: "Aangemaakt",
    kind_event: "Gebeurtenis",
    restore_version: "Deze versie terugzetten",
    add_note: "Notitie toevoegen",
    add_task: "Taak toevoegen",
    task_title: "Taak",
    due_date: "Vervaldatum",
    trash_title: "Prullenbak",
    move_to_trash: "Naar de prullenbak",
    restore_from_trash: "Terugzetten",
    trash_empty: "De prullenbak is leeg.",
    deleted_at: "Verwijderd",
    deleted_by: "Verwijderd door",
    type_: "Soort",
    name: "Naam",
    create: "Aanmaken",
    new_contact: "Nieuw contact",
    new_company: "Nieuw bedrijf",
    new_deal: "Nieuwe deal",
    new_ticket: "Nieuw ticket",
    conflict_title: "Iemand anders heeft dit record gewijzigd",
    conflict_intro: "Je wijzigingen zijn niet opgeslagen, omdat het record is gewijzigd sinds je het opende. Er is niets overschreven. Vergelijk de waarden en zet daarna die van jou op de nieuwe versie, of houd de opgeslagen waarden.",
    conflict_field: "Veld",
    conflict_yours: "Jouw waarde",
    conflict_stored: "Nu opgeslagen",
    conflict_apply: "Mijn waarden toepassen",
    conflict_keep: "Opgeslagen waarden houden",
    my_tasks: "Mijn taken",
    overdue: "Te laat",
    today: "Vandaag",
    upcoming: "Binnenkort",
    no_due_date: "Geen vervaldatum",
    no_tasks: "Geen openstaande taken.",
    mark_done: "Afvinken",
    done: "Klaar",
    open: "Open",
    all_tasks: "Alle taken",
    not_found_title: "Niet gevonden",
    not_found_text: "Dit record bestaat niet in je organisatie, of het is verwijderd.",
    forbidden_title: "Niet toegestaan",
    forbidden_text: "Dat mag je niet doen.",
    error_title: "Er ging iets mis",
    back: "Terug",
    deals: "Deals",
    tickets: "Tickets",
    owner: "Eigenaar",
    nobody: "Niemand",
    stage: "Fase",
    priority: "Prioriteit",
    amount: "Bedrag",
    currency: "Valuta",
    close_date: "Verwachte sluitdatum",
    yes: "Ja",
    no: "Nee",
    api_key: "API-sleutel",
    system: "Systeem",
    created: "Aangemaakt",
    updated: "Bijgewerkt",
    by: "door",
    done_saved: "Opgeslagen.",
    done_created: "Aangemaakt.",
    done_trashed: "Naar de prullenbak verplaatst.",
    done_restored: "Uit de prullenbak teruggezet.",
    done_version: "De eerdere versie is weer actueel.",
    done_note: "Notitie toegevoegd.",
    done_task: "Taak toegevoegd.",
    done_task_done: "Taak afgevinkt.",
    view_record: "Openen",
    priorities: [
        ("low", "Laag"),
        ("normal", "Normaal"),
        ("high", "Hoog"),
        ("urgent", "Urgent"),
    ],
    labels: &[
        ("first_name", "Voornaam"),
        ("last_name", "Achternaam"),
        ("email", "E-mail"),
        ("phone", "Telefoon"),
        ("mobile", "Mobiel"),
        ("job_title", "Functie"),
        ("street", "Straat"),
        ("postal_code", "Postcode"),
        ("city", "Plaats"),
        ("country", "Land (NL, BE, …)"),
        ("website", "Website"),
        ("description", "Omschrijving"),
        ("name", "Naam"),
        ("domain", "Domein"),
        ("industry", "Branche"),
        ("kvk_number", "KvK-nummer"),
        ("vat_number", "Btw-nummer"),
        ("lost_reason", "Reden verloren"),
        ("subject", "Onderwerp"),
        ("body", "Notitie"),
        ("title", "Titel"),
        ("owner_id", "Eigenaar"),
        ("stage_id", "Fase"),
        ("priority", "Prioriteit"),
        ("amount", "Bedrag"),
        ("amount_minor", "Bedrag"),
        ("currency", "Valuta"),
        ("close_date", "Verwachte sluitdatum"),
        ("due_date", "Vervaldatum"),
        ("done", "Klaar"),
        ("pipeline_id", "Pijplijn"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_dates_in_both_languages() {
        assert_eq!(money(Lang::Nl, 123_450, "EUR"), "€ 1.234,50");
        assert_eq!(money(Lang::En, 123_450, "EUR"), "€1,234.50");
        assert_eq!(money(Lang::Nl, 5, "EUR"), "€ 0,05");
        assert_eq!(money(Lang::En, 100_000_000, "USD"), "$1,000,000.00");
        assert_eq!(money(Lang::Nl, 1000, "SEK"), "SEK 10,00");
        assert_eq!(date(Lang::Nl, "2026-11-25"), "25-11-2026");
        assert_eq!(date(Lang::En, "2026-11-25"), "2026-11-25");
        assert_eq!(
            datetime(Lang::Nl, "2026-11-25T14:05:09.123Z"),
            "25-11-2026 14:05"
        );
    }

    #[test]
    fn amounts_parse_as_people_type_them() {
        for (raw, want) in [
            ("1234.50", Some(123_450)),
            ("1.234,50", Some(123_450)),
            ("1,234.50", Some(123_450)),
            ("€ 1.234,5", Some(123_450)),
            ("12", Some(1200)),
            ("1.234", Some(123_400)),
            ("0,05", Some(5)),
            ("abc", None),
            ("", None),
        ] {
            assert_eq!(parse_amount(raw), want, "{raw}");
        }
    }
}
