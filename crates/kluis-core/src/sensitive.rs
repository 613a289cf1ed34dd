//! The sensitive-data guard: finds payment card numbers, bank account numbers (IBAN) and
//! national id numbers in free text, so that a write can be refused (or flagged) before data the
//! vendors forbid storing ends up in the CRM.
//!
//! Detection only. A [`Finding`] names the kind of data and nothing else: not the matched text,
//! not where it was. It can be logged, audited and put in an error without repeating what it
//! found. (Callers must not log the scanned text either.)
//!
//! Every rule needs a check digit to pass, so a number that merely looks like one (an order
//! number, a phone number, an amount) goes through, and a typo in a real one does too.
//!
//! [`scan`] is one forward pass over the bytes, with a second cursor for IBANs that only ever
//! moves forward: constant work per byte, no backtracking and no allocation but the result, so
//! it is safe on hostile input of any size. Only ASCII digits and letters count: the guard
//! catches numbers people paste or type by mistake, not someone determined to smuggle one past
//! it (who could always spell it out in words).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kind of data that must not be stored. The serde names are stable (they appear in API
/// errors and tenant settings).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveKind {
    /// A payment card number (PAN): ISO/IEC 7812, PCI DSS.
    PaymentCard,
    /// An international bank account number: ISO 13616.
    Iban,
    /// A Dutch citizen service number (burgerservicenummer).
    Bsn,
    /// A Belgian national register number (rijksregisternummer / numéro de registre national).
    BelgianNationalNumber,
}

impl SensitiveKind {
    /// Every kind, in the order [`scan`] reports them.
    pub const ALL: [SensitiveKind; 4] = [
        SensitiveKind::PaymentCard,
        SensitiveKind::Iban,
        SensitiveKind::Bsn,
        SensitiveKind::BelgianNationalNumber,
    ];

    /// The stable name, the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            SensitiveKind::PaymentCard => "payment_card",
            SensitiveKind::Iban => "iban",
            SensitiveKind::Bsn => "bsn",
            SensitiveKind::BelgianNationalNumber => "belgian_national_number",
        }
    }

    fn index(self) -> usize {
        match self {
            SensitiveKind::PaymentCard => 0,
            SensitiveKind::Iban => 1,
            SensitiveKind::Bsn => 2,
            SensitiveKind::BelgianNationalNumber => 3,
        }
    }
}

impl fmt::Display for SensitiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sensitive data of this kind is somewhere in the scanned text. Deliberately carries neither
/// the matched text nor its position, so no output of it can leak the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub kind: SensitiveKind,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())
    }
}

/// Looks for sensitive data in `text`. Returns at most one finding per kind, in the order of
/// [`SensitiveKind::ALL`]; empty when nothing was found.
pub fn scan(text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut found = [false; SensitiveKind::ALL.len()];
    let mut ibans = IbanCursor::new(b);
    found[SensitiveKind::Iban.index()] = ibans.next.is_some();

    let mut i = 0;
    while i < b.len() && !found.iter().all(|f| *f) {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // `i` starts a maximal run of digits.
        if let Some(iban_end) = ibans.covering(i) {
            // Digits inside a valid IBAN are that IBAN, not also a card or an id number: an
            // IBAN printed in groups of four can hold a Luhn-valid run of groups.
            i = iban_end;
            continue;
        }
        if card_at(b, i) {
            found[SensitiveKind::PaymentCard.index()] = true;
        }
        if id_may_start(b, i) {
            if BSN_FORMATS.iter().any(|f| id_number_at(b, i, f, bsn_valid)) {
                found[SensitiveKind::Bsn.index()] = true;
            }
            if BE_NATIONAL_NUMBER_FORMATS
                .iter()
                .any(|f| id_number_at(b, i, f, be_national_number_valid))
            {
                found[SensitiveKind::BelgianNationalNumber.index()] = true;
            }
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }

    SensitiveKind::ALL
        .into_iter()
        .filter(|k| found[k.index()])
        .map(|kind| Finding { kind })
        .collect()
}

/// The byte at `i`, or 0 (not a digit, letter or separator) past the end.
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte just before `i`, or 0 at the start.
fn before(b: &[u8], i: usize) -> u8 {
    i.checked_sub(1).map_or(0, |p| at(b, p))
}

// ---------------------------------------------------------------------------------------------
// Payment cards

/// Digit groups of a card number typed with separators have at least this many digits (cards
/// are printed 4-4-4-4, 4-6-5 or 4-6-4). Shorter groups are lists of small numbers, phone
/// numbers ("+31 6 ...") and the like; letting them join would make false positives likely.
const MIN_CARD_GROUP: usize = 3;

/// A card number starting at the digit run at `s`, possibly continuing over further digit
/// groups. Why these rules:
/// - 13 to 19 digits: the PAN lengths of ISO/IEC 7812-1 in use.
/// - Groups joined by one space, no-break space or hyphen, the same one throughout: how people
///   type and print them ("4111 1111 1111 1111", "4111-1111-1111-1111").
/// - Not touching a letter, and not continuing a number with a decimal point or comma: a run
///   inside a reference code, an IBAN or an amount is not a card. Digit groups are maximal
///   runs, so a card-length run inside a longer run of digits never matches.
/// - Luhn check (ISO/IEC 7812-1 annex B) AND a prefix and length some network issues (see
///   [`issuer_plausible`]): one random number in ten passes Luhn, far fewer also have a
///   network's prefix at that network's length.
///
/// Candidates starting at later groups of the same chain are tried when the caller reaches
/// those groups, so a card followed by another number ("... 1111 12/26") is still found.
/// At most 19 digits are read, so this is constant work per digit run.
fn card_at(b: &[u8], s: usize) -> bool {
    if !number_may_start(b, s) {
        return false;
    }
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut j = s;
    let mut groups = 0;
    let mut first_len = 0;
    let mut joined_by: Option<u8> = None;
    loop {
        let group_start = j;
        while at(b, j).is_ascii_digit() {
            if n == digits.len() {
                return false;
            }
            digits[n] = at(b, j) - b'0';
            n += 1;
            j += 1;
        }
        let len = j - group_start;
        groups += 1;
        if groups == 1 {
            first_len = len;
        } else if len < MIN_CARD_GROUP || first_len < MIN_CARD_GROUP {
            return false;
        }
        if n >= 13 && number_may_end(b, j) && is_card(&digits[..n]) {
            return true;
        }
        let Some((sep, width)) = card_separator(b, j) else {
            return false;
        };
        if joined_by.is_some_and(|prev| prev != sep) || !at(b, j + width).is_ascii_digit() {
            return false;
        }
        joined_by = Some(sep);
        j += width;
    }
}

/// A separator between card digit groups at `j`: its class (space or hyphen) and byte width.
fn card_separator(b: &[u8], j: usize) -> Option<(u8, usize)> {
    match (at(b, j), at(b, j + 1)) {
        (b' ', _) => Some((b' ', 1)),
        (b'-', _) => Some((b'-', 1)),
        // U+00A0 NO-BREAK SPACE, common in text copied from web pages and PDFs.
        (0xC2, 0xA0) => Some((b' ', 2)),
        _ => None,
    }
}

/// A number may start at `s`: not glued to a letter or digit, and not the decimals or thousands
/// of a number before it ("1.4111...", "12,4111...").
fn number_may_start(b: &[u8], s: usize) -> bool {
    let prev = before(b, s);
    let continues_number =
        matches!(prev, b'.' | b',') && before(b, s.saturating_sub(1)).is_ascii_digit();
    !(prev.is_ascii_alphanumeric() || continues_number)
}

/// A number may end at `e` (exclusive): not glued to a letter or digit, and not followed by
/// decimals or more thousands.
fn number_may_end(b: &[u8], e: usize) -> bool {
    let next = at(b, e);
    let continued = matches!(next, b'.' | b',') && at(b, e + 1).is_ascii_digit();
    !(next.is_ascii_alphanumeric() || continued)
}

fn is_card(digits: &[u8]) -> bool {
    luhn_valid(digits) && issuer_plausible(digits)
}

/// The Luhn (mod 10) check of ISO/IEC 7812-1: from the right, every second digit doubled (its
/// digits summed), the total a multiple of 10.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The number starts with the issuer identification number (IIN) range of a network that issues
/// cards of this length (networks' published IIN ranges). Order numbers and other Luhn-valid
/// numbers rarely start like this at exactly these lengths.
fn issuer_plausible(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |k: usize| {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let long = (16..=19).contains(&len);
    // Visa: 4, 13 (old cards), 16 or 19 digits.
    let visa = p1 == 4 && matches!(len, 13 | 16 | 19);
    // Mastercard: 51-55 and 2221-2720, 16 digits.
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    // American Express: 34 and 37, 15 digits.
    let amex = matches!(p2, 34 | 37) && len == 15;
    // Discover: 6011, 644-649 and 65, 16-19 digits.
    let discover = (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && long;
    // JCB: 3528-3589, 16-19 digits.
    let jcb = (3528..=3589).contains(&p4) && long;
    // Maestro: 50 and 56-69, 12-19 digits (13 is the shortest this guard looks at).
    let maestro = p2 == 50 || (56..=69).contains(&p2);
    // Diners Club: 300-305, 36, 38-39, 14-19 digits.
    let diners = ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && len >= 14;
    // UnionPay: 62, 16-19 digits.
    let unionpay = p2 == 62 && long;
    visa || mastercard || amex || discover || jcb || maestro || diners || unionpay
}

// ---------------------------------------------------------------------------------------------
// IBAN

/// Finds valid IBANs lazily, in order; positions only ever move forward, so all calls together
/// read the text a bounded number of times.
struct IbanCursor<'a> {
    b: &'a [u8],
    /// The next valid IBAN at or after the last position asked about: (start, end).
    next: Option<(usize, usize)>,
}

impl<'a> IbanCursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        IbanCursor {
            b,
            next: find_iban(b, 0),
        }
    }

    /// The end of the valid IBAN that contains `pos`, if any. `pos` must not decrease between
    /// calls.
    fn covering(&mut self, pos: usize) -> Option<usize> {
        while let Some((_, end)) = self.next {
            if end > pos {
                break;
            }
            self.next = find_iban(self.b, end);
        }
        match self.next {
            Some((start, end)) if start <= pos => Some(end),
            _ => None,
        }
    }
}

/// The first valid IBAN starting at or after `from`: (start, end).
fn find_iban(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 1 < b.len() {
        let (c0, c1) = (b[i], b[i + 1]);
        if c0.is_ascii_alphabetic()
            && c1.is_ascii_alphabetic()
            && !before(b, i).is_ascii_alphanumeric()
            && let Some(len) = iban_length(c0.to_ascii_uppercase(), c1.to_ascii_uppercase())
            && let Some(end) = iban_at(b, i, len)
        {
            return Some((i, end));
        }
        i += 1;
    }
    None
}

/// A valid IBAN of `len` characters starting at `s`; returns where it ends. ISO 13616-1:
/// - country code, two check digits, then the country's BBAN, letters and digits, the total
///   length fixed per country ([`iban_length`]);
/// - case-insensitive (the standard's electronic form is upper case; people type lower);
/// - the paper format groups the characters in fours separated by one space ("NL91 ABNA 0417
///   1643 00"), so one space is allowed after every fourth character;
/// - check digits 02-98, and the number moved to the end (BBAN, country, check digits), letters
///   as 10-35, leaves remainder 1 modulo 97 (ISO/IEC 7064 MOD 97-10). Any single wrong
///   character fails it.
/// - not touching another letter or digit at either end.
fn iban_at(b: &[u8], s: usize, len: usize) -> Option<usize> {
    let mut chars = [0u8; 34];
    if len > chars.len() {
        return None;
    }
    let mut n = 0;
    let mut j = s;
    let mut spaced_at = 0;
    while n < len {
        let c = at(b, j);
        if c == b' '
            && n > 0
            && n.is_multiple_of(4)
            && spaced_at != n
            && at(b, j + 1).is_ascii_alphanumeric()
        {
            spaced_at = n;
            j += 1;
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return None;
        }
        chars[n] = c.to_ascii_uppercase();
        n += 1;
        j += 1;
    }
    if at(b, j).is_ascii_alphanumeric() {
        return None;
    }
    let (country, rest) = chars[..len].split_at(2);
    let (check, bban) = rest.split_at(2);
    if !check.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let check_value = (check[0] - b'0') * 10 + (check[1] - b'0');
    if !(2..=98).contains(&check_value) {
        return None;
    }
    let mut rem = 0u32;
    for &c in bban.iter().chain(country).chain(check) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    (rem == 1).then_some(j)
}

/// IBAN length per country (SWIFT IBAN registry, the ISO 13616 registration authority): all
/// EU/EEA countries, GB, CH and the other registered countries. Territories that use their
/// parent's code (French overseas departments: FR) need no entry.
fn iban_length(c0: u8, c1: u8) -> Option<usize> {
    Some(match &[c0, c1] {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FK" | b"FO" | b"GL" | b"NL" | b"SD" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HN" | b"HU" | b"LB" | b"NI" | b"PL"
        | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// National id numbers

/// How a BSN is written: nine digits (one below 100 000 000 keeps its leading zero, so always
/// nine), or with dots as on some documents and letters.
///
/// Decision on false positives: any 9-digit number passing the 11-proef is reported, without
/// asking for a nearby word like "BSN". About one in eleven arbitrary 9-digit numbers passes,
/// but an id number pasted into a note rarely comes with a label, and storing one is the worse
/// error: the tenant chooses between blocking (the user sees which field and why, and can
/// rephrase) and storing with a flag. The number must stand alone (not glued to letters or
/// other digits, not part of a longer number with dots, commas, hyphens or slashes, not after
/// an international dialling prefix like "+31 "), which excludes most phone numbers, order
/// numbers, amounts and dates. A number failing the 11-proef always passes through. Old Dutch
/// bank account numbers also used the 11-proef; they are bank details, so reporting them is
/// no loss.
const BSN_FORMATS: [&[u8]; 3] = [b"#########", b"###.###.###", b"####.##.###"];

/// How a Belgian national register number is written: YYMMDD SSS CC, bare or as printed on the
/// eID card ("85.07.30-033.28") and common variants.
const BE_NATIONAL_NUMBER_FORMATS: [&[u8]; 5] = [
    b"###########",
    b"##.##.##-###.##",
    b"##.##.##-###-##",
    b"######-###-##",
    b"######-###.##",
];

/// An id number may start at `s`: as [`number_may_start`], and also not after a hyphen or
/// slash continuing a number ("2024-123456782"), and not after an international dialling
/// prefix ("+31612345678", "+31 612345678"), where a 9- or 11-digit number is a phone number.
fn id_may_start(b: &[u8], s: usize) -> bool {
    let prev = before(b, s);
    if !number_may_start(b, s) || prev == b'+' {
        return false;
    }
    let p = s.saturating_sub(1);
    if matches!(prev, b'-' | b'/') && before(b, p).is_ascii_digit() {
        return false;
    }
    if matches!(prev, b' ' | b'-') {
        // "+<country code> " before the number.
        let mut q = p;
        let mut digits = 0;
        while digits < 4 && before(b, q).is_ascii_digit() {
            q -= 1;
            digits += 1;
        }
        if digits > 0 && before(b, q) == b'+' {
            return false;
        }
    }
    true
}

/// An id number may end at `e`: as [`number_may_end`], and not followed by a hyphen or slash and
/// more digits.
fn id_may_end(b: &[u8], e: usize) -> bool {
    number_may_end(b, e) && !(matches!(at(b, e), b'-' | b'/') && at(b, e + 1).is_ascii_digit())
}

/// Whether the text at `s` has `format` ('#' a digit, anything else itself), ends where a
/// number may end, and its digits pass `valid`.
fn id_number_at(b: &[u8], s: usize, format: &[u8], valid: fn(&[u8]) -> bool) -> bool {
    let mut digits = [0u8; 11];
    let mut n = 0;
    for (k, &f) in format.iter().enumerate() {
        let c = at(b, s + k);
        if f == b'#' {
            if !c.is_ascii_digit() || n == digits.len() {
                return false;
            }
            digits[n] = c - b'0';
            n += 1;
        } else if c != f {
            return false;
        }
    }
    id_may_end(b, s + format.len()) && valid(&digits[..n])
}

/// The BSN "11-proef" (Besluit burgerservicenummer / Logius): 9*d1 + 8*d2 + ... + 2*d8 - 1*d9
/// is a multiple of 11. Weights 1-9 are coprime with 11, so any single wrong digit fails it.
/// All zeros passes the sum but is no number.
fn bsn_valid(digits: &[u8]) -> bool {
    const WEIGHTS: [i32; 9] = [9, 8, 7, 6, 5, 4, 3, 2, -1];
    if digits.len() != WEIGHTS.len() || digits.iter().all(|&d| d == 0) {
        return false;
    }
    let sum: i32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| i32::from(d) * w)
        .sum();
    sum.rem_euclid(11) == 0
}

/// The Belgian national register number (Wet van 8 augustus 1983 tot regeling van een
/// Rijksregister; Rijksregister formats): YYMMDD birth date, SSS day counter, CC = 97 - (the
/// first nine digits mod 97); for people born from 2000 on, the nine digits are prefixed with
/// "2" first. Either century is accepted. To keep false positives low the date must be
/// plausible: month 00-12, or +20 / +40 for BIS numbers (people not in the register), day
/// 00-31 (00 where the date is unknown), and the counter 001-998.
fn be_national_number_valid(digits: &[u8]) -> bool {
    let [_, _, m1, m2, d1, d2, s1, s2, s3, c1, c2] = digits else {
        return false;
    };
    let month = m1 * 10 + m2;
    let day = d1 * 10 + d2;
    let serial = u32::from(*s1) * 100 + u32::from(*s2) * 10 + u32::from(*s3);
    if !matches!(month, 0..=12 | 20..=32 | 40..=52) || day > 31 || !(1..=998).contains(&serial) {
        return false;
    }
    let first_nine = digits
        .iter()
        .take(9)
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d));
    let check = u64::from(c1 * 10 + c2);
    97 - first_nine % 97 == check || 97 - (2_000_000_000 + first_nine) % 97 == check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<SensitiveKind> {
        scan(text).into_iter().map(|f| f.kind).collect()
    }

    fn has(text: &str, kind: SensitiveKind) -> bool {
        kinds(text).contains(&kind)
    }

    /// splitmix64: deterministic pseudo-random numbers without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn digit(&mut self) -> char {
            char::from(b'0' + (self.next() % 10) as u8)
        }
    }

    /// Every variant of `number` with one digit replaced by another digit.
    fn one_digit_changed(number: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in number.char_indices() {
            if !c.is_ascii_digit() {
                continue;
            }
            for d in '0'..='9' {
                if d != c {
                    let mut s = number.to_owned();
                    s.replace_range(i..i + 1, &d.to_string());
                    out.push(s);
                }
            }
        }
        out
    }

    const CARDS: [&str; 14] = [
        "4111111111111111",
        "4012888888881881",
        "4222222222222",
        "5555555555554444",
        "5105105105105100",
        "2223003122003222",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "3566002020360505",
        "30569309025904",
        "36227206271667",
        "6200000000000005",
        "6759649826438453",
    ];

    #[test]
    fn cards_are_found() {
        for card in CARDS {
            assert_eq!(kinds(card), [SensitiveKind::PaymentCard], "{card}");
        }
        for text in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111\u{a0}1111\u{a0}1111\u{a0}1111",
            "3782 822463 10005",
            "5555 5555 5555 4444",
            "Mijn creditcard is 4111 1111 1111 1111, geldig tot 12/26.",
            "Please charge card 5555-5555-5555-4444 for the renewal.",
            "kaart: 4111111111111111 exp 12/26",
            "(4111111111111111)",
            "4111 1111 1111 1111 12/26",
            "ref 12 4111 1111 1111 1111",
        ] {
            assert!(has(text, SensitiveKind::PaymentCard), "{text}");
        }
    }

    #[test]
    fn card_look_alikes_pass() {
        for card in CARDS {
            for changed in one_digit_changed(card) {
                assert!(!has(&changed, SensitiveKind::PaymentCard), "{changed}");
            }
        }
        for text in [
            // Card-length runs inside longer runs.
            "41111111111111111111",
            "004111111111111111",
            "411111111111111100000000",
            "12345678904111111111111111",
            // Glued to letters, or the decimals of an amount.
            "ORD4111111111111111",
            "1.4111111111111111",
            // Luhn-valid, but no network issues such numbers.
            "1234567812345670",
            "0000000000000000",
            "9999999999999995",
            // Luhn-valid with a Visa (15 digits) or Amex (16) prefix, at a length that network
            // does not use.
            "411111111111116",
            "3411111111111110",
            // Mixed separators, or groups too short to be a card's.
            "4111 1111-1111 1111",
            "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "41 11 11 11 11 11 11 11",
            "4111  1111  1111  1111",
            // Phone numbers, postcodes, dates, amounts, order and KvK numbers.
            "+31 6 12345678",
            "+31 20 123 4567",
            "020-1234567",
            "0031 6 1234 5678",
            "1012 AB Amsterdam",
            "2024-03-12 12-03-2024 12/03/2024",
            "€ 1.234.567,89",
            "Bestelling 2024-000123 en factuur 20240312-0042",
            "KvK 12345678",
        ] {
            assert!(!has(text, SensitiveKind::PaymentCard), "{text}");
        }
    }

    #[test]
    fn random_visa_numbers_found_iff_luhn_valid() {
        // An independent Luhn: double every digit in an odd position counted from the right
        // (starting at 0), sum the digits of the products.
        fn expected_valid(number: &str) -> bool {
            let mut total = 0;
            for (pos, c) in number.chars().rev().enumerate() {
                let v = c.to_digit(10).unwrap();
                let v = if pos % 2 == 1 { v * 2 } else { v };
                total += v / 10 + v % 10;
            }
            total % 10 == 0
        }
        let mut rng = Rng(0x5EED);
        let mut valid = 0;
        for i in 0..10_000 {
            let number: String = std::iter::once('4')
                .chain((0..15).map(|_| rng.digit()))
                .collect();
            let expected = expected_valid(&number);
            valid += usize::from(expected);
            let text = match i % 3 {
                0 => number.clone(),
                1 => format!(
                    "card {} {} {} {}.",
                    &number[0..4],
                    &number[4..8],
                    &number[8..12],
                    &number[12..16]
                ),
                _ => format!(
                    "{}-{}-{}-{}",
                    &number[0..4],
                    &number[4..8],
                    &number[8..12],
                    &number[12..16]
                ),
            };
            assert_eq!(has(&text, SensitiveKind::PaymentCard), expected, "{text}");
        }
        // About one in ten is valid; both branches were exercised.
        assert!((800..1200).contains(&valid), "{valid}");
    }

    const IBANS: [&str; 5] = [
        "NL91ABNA0417164300",
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "BE68539007547034",
        "FR1420041010050500013M02606",
    ];

    #[test]
    fn ibans_are_found() {
        for iban in IBANS {
            assert_eq!(kinds(iban), [SensitiveKind::Iban], "{iban}");
            assert_eq!(
                kinds(&iban.to_ascii_lowercase()),
                [SensitiveKind::Iban],
                "{iban}"
            );
            let printed: String = iban
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(kinds(&printed), [SensitiveKind::Iban], "{printed}");
            let sentence = format!("Graag overmaken naar {printed}, t.n.v. J. Jansen.");
            assert_eq!(kinds(&sentence), [SensitiveKind::Iban], "{sentence}");
        }
        for text in [
            "IBAN: nl91 abna 0417 1643 00",
            "Account (CH93 0076 2011 6238 5295 7) closed",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "PL61 1090 1014 0000 0712 1981 2874",
        ] {
            assert_eq!(kinds(text), [SensitiveKind::Iban], "{text}");
        }
    }

    #[test]
    fn iban_digits_are_not_also_a_card() {
        // Valid IBAN whose printed groups hold the Luhn-valid Visa test number.
        let text = "DE95 4111 1111 1111 1111 00";
        assert_eq!(kinds(text), [SensitiveKind::Iban]);
        // With a wrong check digit it is no IBAN, and the card shows.
        assert_eq!(
            kinds("DE96 4111 1111 1111 1111 00"),
            [SensitiveKind::PaymentCard]
        );
    }

    #[test]
    fn iban_look_alikes_pass() {
        for iban in IBANS {
            for changed in one_digit_changed(iban) {
                assert!(!has(&changed, SensitiveKind::Iban), "{changed}");
            }
        }
        for text in [
            // Wrong length for the country, unknown country, glued to more characters.
            "NL91ABNA041716430",
            "NL91ABNA04171643000",
            "XX91ABNA0417164300",
            "ANL91ABNA0417164300",
            "NL91ABNA0417164300B",
            // Spaces not at the group boundaries, doubled.
            "NL 91ABNA0417164300",
            "NL91 ABNA 041 71643 00",
            "NL91  ABNA 0417 1643 00",
            "1012 AB Amsterdam",
            "NL123456789B01",
        ] {
            assert!(!has(text, SensitiveKind::Iban), "{text}");
        }
    }

    #[test]
    fn bsns_are_found() {
        for text in [
            "111222333",
            "123456782",
            "123.456.782",
            "1234.56.782",
            "BSN: 123456782",
            "Zijn burgerservicenummer is 111222333.",
            "bsn 012345672 (met voorloopnul)",
        ] {
            assert_eq!(kinds(text), [SensitiveKind::Bsn], "{text}");
        }
    }

    #[test]
    fn bsn_look_alikes_pass() {
        for bsn in ["111222333", "123456782", "123.456.782"] {
            for changed in one_digit_changed(bsn) {
                assert!(!has(&changed, SensitiveKind::Bsn), "{changed}");
            }
        }
        for text in [
            "123456789",
            "000000000",
            "1234567820",
            "0123456782",
            "12345678",
            "NL123456782B01",
            "ORD123456782",
            "2024-123456782",
            "123456782-01",
            "1.123.456.782",
            "€ 123.456.782,00",
            "+31612345678",
            "+31 123456782",
            "123 456 782",
            "+31 6 12345678",
            "020-1234567",
            "KvK 12345678",
            "€ 1.234.567,89",
        ] {
            assert!(!has(text, SensitiveKind::Bsn), "{text}");
        }
    }

    #[test]
    fn belgian_national_numbers() {
        for text in [
            "85073003328",
            "85.07.30-033.28",
            "85.07.30-033-28",
            "850730-033-28",
            "850730-033.28",
            // Born in 2001: the check digits are computed over "2" followed by the nine.
            "rijksregisternummer 01.02.03-456.03",
            // BIS number: month + 20.
            "BIS 85.27.30-033.71",
        ] {
            assert_eq!(
                kinds(text),
                [SensitiveKind::BelgianNationalNumber],
                "{text}"
            );
        }
        // Any single wrong digit fails the check for the number's own century; it can pass the
        // other century's (about 1 in 97), which is why this sample is fixed.
        for number in ["85073003328", "85.07.30-033.28"] {
            for changed in one_digit_changed(number) {
                assert!(
                    !has(&changed, SensitiveKind::BelgianNationalNumber),
                    "{changed}"
                );
            }
        }
        for text in [
            // Check digits right for neither century (28 and 57 would be).
            "85.07.30-033.29",
            "85.07.30-033.56",
            // Valid check digits, but month 13, day 32 or counter 000.
            "85.13.30-033.70",
            "85.07.32-033.65",
            "85.07.30-000.61",
            // Inside a longer number, or a phone number.
            "185073003328",
            "85073003328-1",
            "+3285073003328",
            "+32 85073003328",
            "85 07 30 033 28",
        ] {
            assert!(!has(text, SensitiveKind::BelgianNationalNumber), "{text}");
        }
    }

    #[test]
    fn findings_deduplicated_in_fixed_order() {
        let text = "BSN 123456782, kaart 4111 1111 1111 1111 en 5555555555554444, \
                    IBAN NL91ABNA0417164300 of DE89370400440532013000, \
                    rijksregister 85.07.30-033.28, nog een BSN 111222333.";
        assert_eq!(kinds(text), SensitiveKind::ALL);
        assert!(scan("").is_empty());
        assert!(scan("Geen bijzonderheden. Terugbellen op 020-1234567.").is_empty());
    }

    #[test]
    fn output_never_contains_the_number() {
        let text = "4111111111111111 NL91ABNA0417164300 123456782 85.07.30-033.28";
        let findings = scan(text);
        assert_eq!(findings.len(), 4);
        for finding in &findings {
            for shown in [
                format!("{finding:?}"),
                format!("{finding}"),
                format!("{:?}", finding.kind),
                serde_json::to_string(finding).unwrap(),
            ] {
                assert!(!shown.bytes().any(|c| c.is_ascii_digit()), "{shown}");
            }
        }
        assert!(!format!("{findings:?}").bytes().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn kind_names_are_stable() {
        let names: Vec<_> = SensitiveKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["payment_card", "iban", "bsn", "belgian_national_number"]
        );
        for kind in SensitiveKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<SensitiveKind>(&json).unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(SensitiveKind::ALL[kind.index()], kind);
        }
    }

    #[test]
    fn huge_hostile_inputs_scan_in_one_pass() {
        const SIZE: usize = 10 * 1024 * 1024;
        // Random digits and single spaces: every position is a candidate start.
        let mut rng = Rng(42);
        let mut text = String::with_capacity(SIZE);
        while text.len() < SIZE {
            if rng.next().is_multiple_of(5) {
                text.push(' ');
            } else {
                text.push(rng.digit());
            }
        }
        let _ = scan(&text);
        // One digit run; one long chain of card-like groups; letters that look like
        // country codes; many look-alike IBAN starts.
        let _ = scan(&"7".repeat(SIZE));
        assert!(scan(&"4111 ".repeat(SIZE / 5)).is_empty());
        assert!(scan(&"NL".repeat(SIZE / 2)).is_empty());
        assert!(scan(&"NL91 ".repeat(SIZE / 5)).is_empty());
        assert!(scan(&"1.2-".repeat(SIZE / 4)).is_empty());
    }
}
