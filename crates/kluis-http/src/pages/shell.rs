//! The app shell's strings and navigation (kept out of `i18n.rs`, which the sign-in and
//! security pages own).

use super::Nav;

/// The shell's words in one language.
pub struct ShellText {
    pub skip: &'static str,
    pub main_nav: &'static str,
    pub contacts: &'static str,
    pub companies: &'static str,
    pub deals: &'static str,
    pub tickets: &'static str,
    pub tasks: &'static str,
    pub dashboard: &'static str,
    pub import: &'static str,
    pub trash: &'static str,
    pub settings: &'static str,
    pub search: &'static str,
    pub search_placeholder: &'static str,
    pub user_menu: &'static str,
    pub account: &'static str,
    pub security_settings: &'static str,
    pub language: &'static str,
}

pub const EN: ShellText = ShellText {
    skip: "Skip to content",
    main_nav: "Main",
    contacts: "Contacts",
    companies: "Companies",
    deals: "Deals",
    tickets: "Tickets",
    tasks: "Tasks",
    dashboard: "Dashboard",
    import: "Import",
    trash: "Trash",
    settings: "Settings",
    search: "Search",
    search_placeholder: "Name, company, email…",
    user_menu: "Account menu",
    account: "Account and security",
    security_settings: "Security settings",
    language: "Language",
};

pub const NL: ShellText = ShellText {
    skip: "Naar de inhoud",
    main_nav: "Hoofdmenu",
    contacts: "Contactpersonen",
    companies: "Bedrijven",
    deals: "Deals",
    tickets: "Tickets",
    tasks: "Taken",
    dashboard: "Dashboard",
    import: "Importeren",
    trash: "Prullenbak",
    settings: "Instellingen",
    search: "Zoeken",
    search_placeholder: "Naam, bedrijf, e-mail…",
    user_menu: "Accountmenu",
    account: "Account en beveiliging",
    security_settings: "Beveiligingsinstellingen",
    language: "Taal",
};

/// The shell's text for a page's language code (`t.lang`).
pub fn text(lang: &str) -> &'static ShellText {
    if lang == "nl" { &NL } else { &EN }
}

/// One entry of the main navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// The page is in this section (`aria-current`).
    pub current: bool,
}

impl Nav {
    /// The shell's words for the page language.
    pub fn shell(&self, lang: &str) -> &'static ShellText {
        text(lang)
    }

    /// The main navigation; Settings only for administrators.
    pub fn items(&self, lang: &str) -> Vec<NavItem> {
        let s = text(lang);
        let mut all = vec![
            ("/contacts", s.contacts),
            ("/companies", s.companies),
            ("/deals", s.deals),
            ("/tickets", s.tickets),
            ("/tasks", s.tasks),
            ("/dashboard", s.dashboard),
            ("/import", s.import),
            ("/trash", s.trash),
        ];
        if self.admin {
            all.push(("/settings", s.settings));
        }
        all.into_iter()
            .map(|(href, label)| NavItem {
                href,
                label,
                current: self.path == href
                    || self
                        .path
                        .strip_prefix(href)
                        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?')),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nav(path: &'static str, admin: bool) -> Nav {
        Nav {
            signed_in: true,
            admin,
            ..Nav::anonymous(path)
        }
    }

    #[test]
    fn settings_only_for_admins_and_current_section_marked() {
        let member = nav("/deals/board", false);
        let items = member.items("en");
        assert!(!items.iter().any(|i| i.href == "/settings"));
        let current: Vec<_> = items.iter().filter(|i| i.current).map(|i| i.href).collect();
        assert_eq!(current, vec!["/deals"]);
        assert!(
            nav("/contacts", true)
                .items("nl")
                .iter()
                .any(|i| i.href == "/settings")
        );
        assert_eq!(
            nav("/contacts", true).items("nl")[0].label,
            "Contactpersonen"
        );
        assert!(!nav("/contactsx", false).items("en")[0].current);
    }
}
