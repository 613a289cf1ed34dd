//! The pages' two languages. Every string a page shows lives here, once per language, so a
//! missing Dutch string is a compile error rather than an English word on a Dutch page.

use axum::http::{HeaderMap, header};

use crate::auth::cookie;

/// Remembers the visitor's choice of language (not personal data; no consent needed).
pub const LANG_COOKIE: &str = "__Host-kluis_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Nl,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "nl" => Some(Lang::Nl),
            _ => None,
        }
    }

    /// The language cookie, else the browser's first preference among ours, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut prefs: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim().to_ascii_lowercase();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                let primary = tag.split('-').next()?;
                Lang::parse(primary).map(|l| (q, l))
            })
            .collect();
        // Stable sort keeps the header's order among equal weights.
        prefs.sort_by(|a, b| b.0.total_cmp(&a.0));
        prefs.first().map_or(Lang::En, |p| p.1)
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }
}

/// Every string of every page.
pub struct Text {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub sign_out_everywhere: &'static str,
    pub organisation: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub forgot_password: &'static str,
    pub sso_button: &'static str,
    pub sso_hint: &'static str,
    pub or: &'static str,
    pub mfa_title: &'static str,
    pub mfa_intro: &'static str,
    pub totp_code: &'static str,
    pub recovery_code: &'static str,
    pub recovery_code_hint: &'static str,
    pub verify: &'static str,
    pub enrol_title: &'static str,
    pub enrol_required: &'static str,
    pub enrol_intro: &'static str,
    pub enrol_start: &'static str,
    pub enrol_scan: &'static str,
    pub enrol_secret: &'static str,
    pub enrol_confirm: &'static str,
    pub recovery_title: &'static str,
    pub recovery_intro: &'static str,
    pub continue_: &'static str,
    pub forgot_title: &'static str,
    pub forgot_intro: &'static str,
    pub forgot_submit: &'static str,
    pub forgot_sent: &'static str,
    pub back_to_sign_in: &'static str,
    pub account_title: &'static str,
    pub signed_in_as: &'static str,
    pub security_settings: &'static str,
    pub mfa_section: &'static str,
    pub mfa_on: &'static str,
    pub mfa_off: &'static str,
    pub mfa_required_by_org: &'static str,
    pub recovery_left: &'static str,
    pub mfa_setup: &'static str,
    pub mfa_disable: &'static str,
    pub mfa_disable_hint: &'static str,
    pub new_recovery_codes: &'static str,
    pub password_section: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub change_password: &'static str,
    pub sessions_section: &'static str,
    pub device: &'static str,
    pub ip_address: &'static str,
    pub last_seen: &'static str,
    pub this_device: &'static str,
    pub revoke: &'static str,
    pub admin_title: &'static str,
    pub mfa_policy_section: &'static str,
    pub mfa_policy_intro: &'static str,
    pub save: &'static str,
    pub password_policy_section: &'static str,
    pub min_length: &'static str,
    pub require_upper: &'static str,
    pub require_lower: &'static str,
    pub require_digit: &'static str,
    pub require_special: &'static str,
    pub reject_common: &'static str,
    pub users_section: &'static str,
    pub name: &'static str,
    pub role: &'static str,
    pub status: &'static str,
    pub actions: &'static str,
    pub unlock: &'static str,
    pub reset_mfa: &'static str,
    pub end_sessions: &'static str,
    pub next_page: &'static str,
    pub sso_section: &'static str,
    pub sso_none: &'static str,
    pub sso_provider: &'static str,
    pub sso_entra_tenant: &'static str,
    pub sso_issuer: &'static str,
    pub sso_hosted_domain: &'static str,
    pub sso_client_id: &'static str,
    pub sso_client_secret: &'static str,
    pub sso_client_secret_hint: &'static str,
    pub sso_domains: &'static str,
    pub sso_jit: &'static str,
    pub sso_jit_role: &'static str,
    pub sso_required: &'static str,
    pub sso_remove: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub done_saved: &'static str,
    pub done_password: &'static str,
    pub done_mfa_off: &'static str,
    pub done_revoked: &'static str,
    pub done_unlocked: &'static str,
    pub done_mfa_reset: &'static str,
    pub done_sso_removed: &'static str,
    pub err_invalid_credentials: &'static str,
    pub err_invalid_code: &'static str,
    pub err_form_expired: &'static str,
    pub err_too_many: &'static str,
    pub err_forbidden: &'static str,
    pub err_generic: &'static str,
    pub reset_title: &'static str,
    pub reset_intro: &'static str,
    pub reset_button: &'static str,
    pub reset_done: &'static str,
    pub reset_missing: &'static str,
    pub invite_title: &'static str,
    pub invite_intro: &'static str,
    pub invite_button: &'static str,
    pub invite_done: &'static str,
    pub invite_missing: &'static str,
    pub password_hint: &'static str,
    pub error_prefix: &'static str,
    pub sso_one_kind: &'static str,
    pub saml_intro: &'static str,
    pub saml_give_idp: &'static str,
    pub saml_idp_entity_id: &'static str,
    pub saml_idp_sso_url: &'static str,
    pub saml_idp_certificate: &'static str,
    pub saml_allow_sha1: &'static str,
    pub passkeys_section: &'static str,
    pub passkeys_intro: &'static str,
    pub passkeys_none: &'static str,
    pub passkey_name: &'static str,
    pub passkey_add: &'static str,
    pub passkey_sign_in: &'static str,
    pub passkey_use: &'static str,
    pub passkey_unsupported: &'static str,
    pub passkey_delete_hint: &'static str,
    pub remove: &'static str,
    pub created: &'static str,
    pub done_passkey: &'static str,
    pub done_passkey_deleted: &'static str,
    pub scim_intro: &'static str,
    pub scim_token_active: &'static str,
    pub scim_token_none: &'static str,
    pub scim_token_create: &'static str,
    pub scim_token_revoke: &'static str,
    pub scim_token_once: &'static str,
    pub scim_mappings: &'static str,
    pub scim_default_role: &'static str,
    pub break_glass_on: &'static str,
    pub break_glass_off: &'static str,
    pub done_scim_token: &'static str,
    pub role_names: [(&'static str, &'static str); 5],
}

impl Text {
    /// The localized message for an error code; `None` when the core's own (English,
    /// rule-naming) message is the most precise thing to show.
    pub fn error(&self, code: &str) -> Option<&'static str> {
        Some(match code {
            "invalid_credentials" | "unauthenticated" => self.err_invalid_credentials,
            "invalid_code" => self.err_invalid_code,
            "csrf_failed" | "form_expired" => self.err_form_expired,
            "too_many_requests" | "rate_limited" | "throttled" => self.err_too_many,
            "forbidden" => self.err_forbidden,
            "internal" => self.err_generic,
            _ => return None,
        })
    }

    pub fn role_name(&self, role: &str) -> &'static str {
        self.role_names
            .iter()
            .find(|(k, _)| *k == role)
            .map_or("?", |(_, v)| v)
    }

    /// The message for a `?done=` code after a successful form post.
    pub fn done(&self, code: &str) -> Option<&'static str> {
        Some(match code {
            "saved" => self.done_saved,
            "password" => self.done_password,
            "mfa_off" => self.done_mfa_off,
            "revoked" => self.done_revoked,
            "unlocked" => self.done_unlocked,
            "mfa_reset" => self.done_mfa_reset,
            "sso_removed" => self.done_sso_removed,
            "passkey" => self.done_passkey,
            "passkey_deleted" => self.done_passkey_deleted,
            _ => return None,
        })
    }
}

pub static EN: Text = Text {
    lang: "en",
    other_lang: "nl",
    other_lang_name: "Nederlands",
    sign_in: "Sign in",
    sign_out: "Sign out",
    sign_out_everywhere: "Sign out everywhere",
    organisation: "Organisation",
    email: "Email address",
    password: "Password",
    forgot_password: "Forgot your password?",
    sso_button: "Sign in with single sign-on",
    sso_hint: "Uses your organisation's identity provider (Microsoft, Google, ...).",
    or: "or",
    mfa_title: "Two-step verification",
    mfa_intro: "Enter the 6-digit code from your authenticator app.",
    totp_code: "Code",
    recovery_code: "Recovery code",
    recovery_code_hint: "Lost your phone? Use one of your recovery codes instead.",
    verify: "Verify",
    enrol_title: "Set up two-step verification",
    enrol_required: "Your organisation requires two-step verification before you can continue.",
    enrol_intro: "You need an authenticator app, such as FreeOTP, Aegis, Google Authenticator or Microsoft Authenticator.",
    enrol_start: "Start",
    enrol_scan: "Scan this code with your authenticator app, then enter the code it shows.",
    enrol_secret: "Cannot scan? Type this key",
    enrol_confirm: "Confirm",
    recovery_title: "Your recovery codes",
    recovery_intro: "Keep these codes somewhere safe. Each one works once, if you lose your authenticator. They are shown only now.",
    continue_: "Continue",
    forgot_title: "Reset your password",
    forgot_intro: "We will email you a link to choose a new password. The link works once, for 30 minutes.",
    forgot_submit: "Send reset link",
    forgot_sent: "If this organisation has an active account with this email address, a reset link is on its way.",
    back_to_sign_in: "Back to sign in",
    account_title: "Your account",
    signed_in_as: "Signed in as",
    security_settings: "Security settings",
    mfa_section: "Two-step verification",
    mfa_on: "On",
    mfa_off: "Off",
    mfa_required_by_org: "Required by your organisation",
    recovery_left: "Recovery codes left",
    mfa_setup: "Set up",
    mfa_disable: "Turn off",
    mfa_disable_hint: "Confirm with a current code or your password.",
    new_recovery_codes: "New recovery codes",
    password_section: "Password",
    current_password: "Current password",
    new_password: "New password",
    change_password: "Change password",
    sessions_section: "Where you are signed in",
    device: "Device",
    ip_address: "IP address",
    last_seen: "Last seen",
    this_device: "this device",
    revoke: "Sign out",
    admin_title: "Security settings",
    mfa_policy_section: "Required two-step verification",
    mfa_policy_intro: "Users with these roles must use two-step verification; without it they are guided through set-up at their next sign-in.",
    save: "Save",
    password_policy_section: "Password policy",
    min_length: "Minimum length",
    require_upper: "Require an upper-case letter",
    require_lower: "Require a lower-case letter",
    require_digit: "Require a digit",
    require_special: "Require a special character",
    reject_common: "Reject common passwords",
    users_section: "Users",
    name: "Name",
    role: "Role",
    status: "Status",
    actions: "Actions",
    unlock: "Unlock",
    reset_mfa: "Reset two-step verification",
    end_sessions: "Sign out all sessions",
    next_page: "Next page",
    sso_section: "Single sign-on",
    sso_none: "Single sign-on is not configured.",
    sso_provider: "Provider",
    sso_entra_tenant: "Microsoft Entra tenant id or domain",
    sso_issuer: "Issuer URL (generic OpenID Connect)",
    sso_hosted_domain: "Google Workspace domain",
    sso_client_id: "Client id",
    sso_client_secret: "Client secret",
    sso_client_secret_hint: "Leave empty to keep the stored secret. It is never shown again.",
    sso_domains: "Allowed email domains (comma-separated)",
    sso_jit: "Create accounts at first sign-in",
    sso_jit_role: "Role of accounts created at first sign-in",
    sso_required: "Require single sign-on (passwords only for break-glass owners)",
    sso_remove: "Remove single sign-on",
    yes: "yes",
    no: "no",
    done_saved: "Saved.",
    done_password: "Your password is changed. Your other sessions have been signed out.",
    done_mfa_off: "Two-step verification is off.",
    done_revoked: "Signed out.",
    done_unlocked: "The account is unlocked.",
    done_mfa_reset: "Two-step verification of that user is reset.",
    done_sso_removed: "Single sign-on is removed.",
    err_invalid_credentials: "Sign-in failed. Check your organisation, email address and password. After repeated failures an account is locked for a while.",
    err_invalid_code: "That code is wrong, expired or already used.",
    err_form_expired: "This form has expired. Please try again.",
    err_too_many: "Too many attempts. Please wait a while and try again.",
    err_forbidden: "You are not allowed to do that.",
    err_generic: "Something went wrong on our side. Please try again later.",
    reset_title: "Choose a new password",
    reset_intro: "Choose a new password for your Kluis account. This link works once; afterwards you are signed out everywhere.",
    reset_button: "Set password",
    reset_done: "Done. Your password is changed; sign in with the new password.",
    reset_missing: "This page needs the link from your email.",
    invite_title: "Accept your invitation",
    invite_intro: "Choose a password to activate your Kluis account. This link works once.",
    invite_button: "Activate account",
    invite_done: "Done. Your account is active; sign in with your email and this password.",
    invite_missing: "This page needs the link from your invitation email.",
    password_hint: "At least 8 characters with an upper-case letter, a lower-case letter, a digit and a special character; common passwords are refused. Your organisation may ask for more.",
    error_prefix: "Error: ",
    scim_intro: "Let Microsoft Entra ID, Okta or another identity provider create, update and remove users (SCIM 2.0). Base URL: /scim/v2 on this server.",
    scim_token_active: "A provisioning token is active, since",
    scim_token_none: "No provisioning token.",
    scim_token_create: "Create a new token (the old one stops working)",
    scim_token_revoke: "Revoke the token",
    scim_token_once: "Copy this token into your identity provider now; it is not shown again:",
    scim_mappings: "Groups and roles, one per line: group name = role (admin, manager, member, read_only)",
    scim_default_role: "Role of users in no mapped group",
    break_glass_on: "Allow emergency password sign-in (owners)",
    break_glass_off: "Withdraw emergency password sign-in",
    done_scim_token: "New provisioning token created.",
    passkeys_section: "Passkeys",
    passkeys_intro: "Sign in with your fingerprint, face or device PIN instead of a password and code. A passkey counts as two-step verification.",
    passkeys_none: "No passkeys yet.",
    passkey_name: "Name (e.g. “Work laptop”)",
    passkey_add: "Add a passkey",
    passkey_sign_in: "Sign in with a passkey",
    passkey_use: "Use a passkey",
    passkey_unsupported: "This browser does not support passkeys.",
    passkey_delete_hint: "To remove a passkey, confirm with a current code or your password.",
    remove: "Remove",
    created: "Created",
    done_passkey: "Passkey added.",
    done_passkey_deleted: "Passkey removed.",
    sso_one_kind: "An organisation has one single sign-on configuration: saving OpenID Connect replaces SAML and the other way round.",
    saml_intro: "Sign-in through a SAML 2.0 identity provider (AD FS, Entra ID, Okta, ...). Responses must be signed by the certificate below; nothing else is trusted.",
    saml_give_idp: "Give your identity provider",
    saml_idp_entity_id: "Identity provider entity id",
    saml_idp_sso_url: "Identity provider sign-in URL",
    saml_idp_certificate: "Identity provider signing certificate (PEM)",
    saml_allow_sha1: "Accept SHA-1 signatures (old identity providers only)",
    role_names: [
        ("owner", "Owner"),
        ("admin", "Administrator"),
        ("manager", "Manager"),
        ("member", "Member"),
        ("read_only", "Read only"),
    ],
};

pub static NL: Text = Text {
    lang: "nl",
    other_lang: "en",
    other_lang_name: "English",
    sign_in: "Inloggen",
    sign_out: "Uitloggen",
    sign_out_everywhere: "Overal uitloggen",
    organisation: "Organisatie",
    email: "E-mailadres",
    password: "Wachtwoord",
    forgot_password: "Wachtwoord vergeten?",
    sso_button: "Inloggen met single sign-on",
    sso_hint: "Via de identiteitsprovider van je organisatie (Microsoft, Google, ...).",
    or: "of",
    mfa_title: "Verificatie in twee stappen",
    mfa_intro: "Vul de code van 6 cijfers uit je authenticator-app in.",
    totp_code: "Code",
    recovery_code: "Herstelcode",
    recovery_code_hint: "Telefoon kwijt? Gebruik dan een van je herstelcodes.",
    verify: "Controleren",
    enrol_title: "Verificatie in twee stappen instellen",
    enrol_required: "Je organisatie vereist verificatie in twee stappen voordat je verder kunt.",
    enrol_intro: "Je hebt een authenticator-app nodig, zoals FreeOTP, Aegis, Google Authenticator of Microsoft Authenticator.",
    enrol_start: "Beginnen",
    enrol_scan: "Scan deze code met je authenticator-app en vul daarna de code in die de app toont.",
    enrol_secret: "Lukt scannen niet? Typ deze sleutel over",
    enrol_confirm: "Bevestigen",
    recovery_title: "Je herstelcodes",
    recovery_intro: "Bewaar deze codes op een veilige plek. Elke code werkt één keer, als je je authenticator kwijt bent. Ze worden alleen nu getoond.",
    continue_: "Verder",
    forgot_title: "Wachtwoord opnieuw instellen",
    forgot_intro: "We mailen je een link om een nieuw wachtwoord te kiezen. De link werkt één keer, 30 minuten lang.",
    forgot_submit: "Link versturen",
    forgot_sent: "Als deze organisatie een actief account met dit e-mailadres heeft, is er een link naar je onderweg.",
    back_to_sign_in: "Terug naar inloggen",
    account_title: "Je account",
    signed_in_as: "Ingelogd als",
    security_settings: "Beveiligingsinstellingen",
    mfa_section: "Verificatie in twee stappen",
    mfa_on: "Aan",
    mfa_off: "Uit",
    mfa_required_by_org: "Vereist door je organisatie",
    recovery_left: "Herstelcodes over",
    mfa_setup: "Instellen",
    mfa_disable: "Uitzetten",
    mfa_disable_hint: "Bevestig met een actuele code of je wachtwoord.",
    new_recovery_codes: "Nieuwe herstelcodes",
    password_section: "Wachtwoord",
    current_password: "Huidig wachtwoord",
    new_password: "Nieuw wachtwoord",
    change_password: "Wachtwoord wijzigen",
    sessions_section: "Waar je bent ingelogd",
    device: "Apparaat",
    ip_address: "IP-adres",
    last_seen: "Laatst actief",
    this_device: "dit apparaat",
    revoke: "Uitloggen",
    admin_title: "Beveiligingsinstellingen",
    mfa_policy_section: "Verplichte verificatie in twee stappen",
    mfa_policy_intro: "Gebruikers met deze rollen moeten verificatie in twee stappen gebruiken; wie die nog niet heeft, stelt haar in bij de volgende keer inloggen.",
    save: "Opslaan",
    password_policy_section: "Wachtwoordbeleid",
    min_length: "Minimale lengte",
    require_upper: "Hoofdletter verplicht",
    require_lower: "Kleine letter verplicht",
    require_digit: "Cijfer verplicht",
    require_special: "Speciaal teken verplicht",
    reject_common: "Veelgebruikte wachtwoorden weigeren",
    users_section: "Gebruikers",
    name: "Naam",
    role: "Rol",
    status: "Status",
    actions: "Acties",
    unlock: "Ontgrendelen",
    reset_mfa: "Verificatie in twee stappen resetten",
    end_sessions: "Alle sessies beëindigen",
    next_page: "Volgende pagina",
    sso_section: "Single sign-on",
    sso_none: "Single sign-on is niet ingesteld.",
    sso_provider: "Provider",
    sso_entra_tenant: "Tenant-id of domein van Microsoft Entra",
    sso_issuer: "Issuer-URL (algemene OpenID Connect)",
    sso_hosted_domain: "Google Workspace-domein",
    sso_client_id: "Client-id",
    sso_client_secret: "Clientgeheim",
    sso_client_secret_hint: "Laat leeg om het opgeslagen geheim te houden. Het wordt nooit meer getoond.",
    sso_domains: "Toegestane e-maildomeinen (gescheiden door komma's)",
    sso_jit: "Accounts aanmaken bij de eerste keer inloggen",
    sso_jit_role: "Rol van accounts die bij de eerste keer inloggen ontstaan",
    sso_required: "Single sign-on verplicht (wachtwoorden alleen voor noodtoegang van eigenaren)",
    sso_remove: "Single sign-on verwijderen",
    yes: "ja",
    no: "nee",
    done_saved: "Opgeslagen.",
    done_password: "Je wachtwoord is gewijzigd. Je andere sessies zijn uitgelogd.",
    done_mfa_off: "Verificatie in twee stappen staat uit.",
    done_revoked: "Uitgelogd.",
    done_unlocked: "Het account is ontgrendeld.",
    done_mfa_reset: "Verificatie in twee stappen van die gebruiker is gereset.",
    done_sso_removed: "Single sign-on is verwijderd.",
    err_invalid_credentials: "Inloggen mislukt. Controleer organisatie, e-mailadres en wachtwoord. Na herhaalde mislukte pogingen wordt een account een tijdje geblokkeerd.",
    err_invalid_code: "Die code is onjuist, verlopen of al gebruikt.",
    err_form_expired: "Dit formulier is verlopen. Probeer het opnieuw.",
    err_too_many: "Te veel pogingen. Wacht even en probeer het opnieuw.",
    err_forbidden: "Dat mag je niet doen.",
    err_generic: "Er ging bij ons iets mis. Probeer het later opnieuw.",
    reset_title: "Kies een nieuw wachtwoord",
    reset_intro: "Kies een nieuw wachtwoord voor je Kluis-account. Deze link werkt één keer; daarna ben je overal afgemeld.",
    reset_button: "Wachtwoord instellen",
    reset_done: "Klaar. Je wachtwoord is gewijzigd; meld je aan met het nieuwe wachtwoord.",
    reset_missing: "Deze pagina heeft de link uit je e-mail nodig.",
    invite_title: "Accepteer je uitnodiging",
    invite_intro: "Kies een wachtwoord om je Kluis-account te activeren. Deze link werkt één keer.",
    invite_button: "Account activeren",
    invite_done: "Klaar. Je account is actief; meld je aan met je e-mailadres en dit wachtwoord.",
    invite_missing: "Deze pagina heeft de link uit je uitnodigingsmail nodig.",
    password_hint: "Minstens 8 tekens met een hoofdletter, een kleine letter, een cijfer en een leesteken; veelgebruikte wachtwoorden worden geweigerd. Je organisatie kan strengere eisen stellen.",
    error_prefix: "Fout: ",
    scim_intro: "Laat Microsoft Entra ID, Okta of een andere identiteitsprovider gebruikers aanmaken, bijwerken en verwijderen (SCIM 2.0). Basis-URL: /scim/v2 op deze server.",
    scim_token_active: "Er is een actief provisioningtoken, sinds",
    scim_token_none: "Geen provisioningtoken.",
    scim_token_create: "Nieuw token maken (het oude werkt dan niet meer)",
    scim_token_revoke: "Token intrekken",
    scim_token_once: "Kopieer dit token nu naar je identiteitsprovider; het wordt niet nog eens getoond:",
    scim_mappings: "Groepen en rollen, één per regel: groepsnaam = rol (admin, manager, member, read_only)",
    scim_default_role: "Rol van gebruikers in geen enkele gekoppelde groep",
    break_glass_on: "Noodtoegang met wachtwoord toestaan (eigenaren)",
    break_glass_off: "Noodtoegang met wachtwoord intrekken",
    done_scim_token: "Nieuw provisioningtoken gemaakt.",
    passkeys_section: "Passkeys",
    passkeys_intro: "Log in met je vingerafdruk, gezicht of apparaatpincode in plaats van een wachtwoord en code. Een passkey telt als verificatie in twee stappen.",
    passkeys_none: "Nog geen passkeys.",
    passkey_name: "Naam (bijv. „Werklaptop”)",
    passkey_add: "Passkey toevoegen",
    passkey_sign_in: "Inloggen met een passkey",
    passkey_use: "Passkey gebruiken",
    passkey_unsupported: "Deze browser ondersteunt geen passkeys.",
    passkey_delete_hint: "Bevestig het verwijderen van een passkey met een actuele code of je wachtwoord.",
    remove: "Verwijderen",
    created: "Aangemaakt",
    done_passkey: "Passkey toegevoegd.",
    done_passkey_deleted: "Passkey verwijderd.",
    sso_one_kind: "Een organisatie heeft één single sign-on-configuratie: OpenID Connect opslaan vervangt SAML en andersom.",
    saml_intro: "Inloggen via een SAML 2.0-identiteitsprovider (AD FS, Entra ID, Okta, ...). Antwoorden moeten ondertekend zijn met het certificaat hieronder; iets anders wordt niet vertrouwd.",
    saml_give_idp: "Geef je identiteitsprovider",
    saml_idp_entity_id: "Entity-id van de identiteitsprovider",
    saml_idp_sso_url: "Inlog-URL van de identiteitsprovider",
    saml_idp_certificate: "Ondertekeningscertificaat van de identiteitsprovider (PEM)",
    saml_allow_sha1: "SHA-1-handtekeningen accepteren (alleen oude identiteitsproviders)",
    role_names: [
        ("owner", "Eigenaar"),
        ("admin", "Beheerder"),
        ("manager", "Manager"),
        ("member", "Lid"),
        ("read_only", "Alleen lezen"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn language_follows_cookie_then_accept_language() {
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::En);
        assert_eq!(Lang::of(&with_accept("nl-NL,nl;q=0.9,en;q=0.8")), Lang::Nl);
        assert_eq!(Lang::of(&with_accept("de-DE,en;q=0.5,nl;q=0.9")), Lang::Nl);
        assert_eq!(Lang::of(&with_accept("fr,de")), Lang::En);
        let mut h = with_accept("nl");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-kluis_lang=en"),
        );
        assert_eq!(Lang::of(&h), Lang::En);
    }

    #[test]
    fn every_role_has_a_name_in_both_languages() {
        for t in [&EN, &NL] {
            for r in kluis_core::Role::ALL {
                assert_ne!(t.role_name(r.as_str()), "?", "{}: {}", t.lang, r.as_str());
            }
        }
    }
}
