//! File names and content types: the type is sniffed from the first bytes (magic numbers, the
//! `infer` crate, plus markup detection) and checked against the name's extension, so a program
//! or a web page cannot be stored as "offerte.pdf". Types a browser would render as active
//! content (HTML, SVG, XML) are never served as such: they go out as
//! `application/octet-stream`, always as an attachment.

use crate::{Error, Result};

/// Longest accepted file name, in characters.
pub const MAX_NAME: usize = 255;

/// Checks a file name: 1..=255 characters, no control characters, no path separators, not
/// `.`/`..`. Returns it trimmed.
pub fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    let bad = |msg: &str| Error::validation("name", "invalid_file_name", msg.to_owned());
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(bad("a file name has 1 to 255 characters"));
    }
    if n.chars().any(|c| c.is_control() || c == '/' || c == '\\') || n == "." || n == ".." {
        return Err(bad(
            "a file name may not hold control characters or path separators",
        ));
    }
    Ok(n.to_owned())
}

/// The lower-cased extension of a name, if any.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Types an extension may hold (the first is the one served when sniffing says nothing).
fn expected(ext: &str) -> Option<&'static [&'static str]> {
    const ZIP: &str = "application/zip";
    Some(match ext {
        "pdf" => &["application/pdf"],
        "png" => &["image/png"],
        "jpg" | "jpeg" => &["image/jpeg"],
        "gif" => &["image/gif"],
        "webp" => &["image/webp"],
        "tif" | "tiff" => &["image/tiff"],
        "bmp" => &["image/bmp"],
        "heic" => &["image/heic"],
        "zip" => &["application/zip"],
        "gz" | "tgz" => &["application/gzip"],
        "7z" => &["application/x-7z-compressed"],
        "docx" => &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ZIP,
        ],
        "xlsx" => &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ZIP,
        ],
        "pptx" => &[
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ZIP,
        ],
        "odt" => &["application/vnd.oasis.opendocument.text", ZIP],
        "ods" => &["application/vnd.oasis.opendocument.spreadsheet", ZIP],
        "mp3" => &["audio/mpeg"],
        "mp4" | "m4a" => &["video/mp4", "audio/m4a", "audio/mp4"],
        "txt" | "log" | "md" => &["text/plain"],
        "csv" => &["text/csv"],
        "json" => &["application/json"],
        "eml" => &["message/rfc822"],
        "html" | "htm" => &["text/html"],
        "svg" => &["image/svg+xml"],
        "xml" => &["application/xml", "text/xml"],
        _ => return None,
    })
}

/// Types that have no magic number: what the extension says is taken when sniffing finds
/// nothing (unless the content is markup, see [`sniff`]).
fn is_plain(t: &str) -> bool {
    matches!(
        t,
        "text/plain" | "text/csv" | "application/json" | "message/rfc822"
    )
}

/// Active content a browser could render or run: never served under its own type.
pub fn is_active(t: &str) -> bool {
    matches!(
        t,
        "text/html"
            | "image/svg+xml"
            | "application/xml"
            | "text/xml"
            | "application/xhtml+xml"
            | "text/javascript"
            | "application/javascript"
    )
}

/// What a file's first bytes say it is.
fn sniff(head: &[u8]) -> Option<String> {
    if let Some(t) = infer::get(head) {
        return Some(t.mime_type().to_owned());
    }
    // Markup: a web page or an SVG image under a harmless name is the classic stored-XSS.
    let text = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.contains("<svg") {
        return Some("image/svg+xml".into());
    }
    if t.starts_with("<!doctype html")
        || t.starts_with("<html")
        || t.contains("<script")
        || t.contains("<body")
        || t.contains("<iframe")
    {
        return Some("text/html".into());
    }
    if t.starts_with("<?xml") {
        return Some("application/xml".into());
    }
    None
}

/// The content type to store for a file named `name` whose first bytes are `head`, or a
/// `file_type_mismatch` error when content and name disagree.
pub fn content_type(name: &str, head: &[u8]) -> Result<String> {
    let ext = extension(name);
    let allowed = ext.as_deref().and_then(expected);
    let sniffed = sniff(head);
    let mismatch = |found: &str| {
        Error::validation(
            "file",
            "file_type_mismatch",
            format!(
                "the file's content is {found}, which its name ({}) does not say",
                ext.as_deref()
                    .map(|e| format!(".{e}"))
                    .unwrap_or_else(|| "no extension".into())
            ),
        )
    };
    match (sniffed, allowed) {
        (Some(found), Some(allowed)) => {
            if allowed.contains(&found.as_str()) {
                Ok(allowed[0].to_owned())
            } else {
                Err(mismatch(&found))
            }
        }
        // Active content must say so in its name (then it is stored, and served inert).
        (Some(found), None) if is_active(&found) => Err(mismatch(&found)),
        (Some(found), None) => Ok(found),
        (None, Some(allowed)) if is_plain(allowed[0]) || is_active(allowed[0]) => {
            Ok(allowed[0].to_owned())
        }
        // A name promising a binary format whose magic number is missing.
        (None, Some(_)) if head.is_empty() => Ok("application/octet-stream".into()),
        (None, Some(_)) => Err(mismatch("not recognisable")),
        (None, None) => Ok("application/octet-stream".into()),
    }
}

/// Whether a file whose stored type is `stored` may be called `name` (renames).
pub fn name_fits(name: &str, stored: &str) -> bool {
    match extension(name).as_deref().and_then(expected) {
        Some(allowed) => allowed.contains(&stored) || (is_plain(allowed[0]) && is_plain(stored)),
        None => !is_active(stored),
    }
}

/// The type a download is served under.
pub fn served_type(stored: &str) -> &str {
    if is_active(stored) {
        "application/octet-stream"
    } else {
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(" offerte.pdf ").unwrap(), "offerte.pdf");
        for bad in ["", "a/b", "..", "a\\b", "x\u{0}y", &"a".repeat(256)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn content_must_match_the_name() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff";
        assert_eq!(content_type("offerte.pdf", pdf).unwrap(), "application/pdf");
        assert_eq!(content_type("logo.PNG", png).unwrap(), "image/png");
        assert_eq!(content_type("notes.txt", b"hallo").unwrap(), "text/plain");
        assert_eq!(
            content_type("blob", b"\x01\x02\x03").unwrap(),
            "application/octet-stream"
        );
        for (name, head) in [
            ("offerte.pdf", &exe[..]),
            ("offerte.pdf", &png[..]),
            ("foto.jpg", &pdf[..]),
            ("offerte.pdf", b"just text"),
            ("leesmij.txt", b"<!DOCTYPE html><script>alert(1)</script>"),
            (
                "logo.png",
                b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
            ),
            ("page", b"<html><body>x</body></html>"),
        ] {
            let e = content_type(name, head).unwrap_err();
            assert_eq!(e.code, "file_type_mismatch", "{name}");
        }
        // Markup that says what it is is stored, and served inert.
        let t = content_type("pagina.html", b"<html></html>").unwrap();
        assert_eq!(served_type(&t), "application/octet-stream");
        let t = content_type("logo.svg", b"<svg></svg>").unwrap();
        assert_eq!(served_type(&t), "application/octet-stream");
    }
}
