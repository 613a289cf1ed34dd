//! The files section of a record page: the record's files (download link, size, scan status),
//! an upload form (multipart, streamed into the same service call as the API's upload), and
//! delete / restore buttons. Uploads are scanned like API uploads: an infected file is
//! refused with the page's error view.

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::StreamExt;
use kluis_core::crm::ObjectType;
use kluis_core::files::{FileInfo, carries_files};
use kluis_core::{Actor, RecordId, RequestContext};

use super::super::i18n::Lang;
use super::super::{Notice, form_page_user};
use super::{Pairs, after, get_field, parse_id, poster, record_type, view};
use crate::AppState;
use crate::auth::Ctx;

pub struct FilesText {
    pub title: &'static str,
    pub none: &'static str,
    pub upload: &'static str,
    pub choose: &'static str,
    pub delete: &'static str,
    pub restore: &'static str,
    pub trash: &'static str,
    pub pending: &'static str,
    pub infected: &'static str,
    pub uploaded: &'static str,
    pub deleted: &'static str,
    pub restored: &'static str,
}

const EN: FilesText = FilesText {
    title: "Files",
    none: "No files yet.",
    upload: "Upload file",
    choose: "File",
    delete: "Delete",
    restore: "Restore",
    trash: "Deleted files (restorable)",
    pending: "waiting for the virus scan",
    infected: "quarantined: a threat was found",
    uploaded: "The file was uploaded.",
    deleted: "The file was moved to the deleted files.",
    restored: "The file was restored.",
};

const NL: FilesText = FilesText {
    title: "Bestanden",
    none: "Nog geen bestanden.",
    upload: "Bestand uploaden",
    choose: "Bestand",
    delete: "Verwijderen",
    restore: "Terugzetten",
    trash: "Verwijderde bestanden (terug te zetten)",
    pending: "wacht op de virusscan",
    infected: "in quarantaine: er is een bedreiging gevonden",
    uploaded: "Het bestand is geüpload.",
    deleted: "Het bestand is naar de verwijderde bestanden verplaatst.",
    restored: "Het bestand is teruggezet.",
};

pub fn text(lang: Lang) -> &'static FilesText {
    match lang {
        Lang::Nl => &NL,
        Lang::En => &EN,
    }
}

/// `?done=` codes of the files section.
pub fn done(lang: Lang, code: Option<&str>) -> Option<Notice> {
    let t = text(lang);
    match code? {
        "file_uploaded" => Notice::ok(t.uploaded),
        "file_deleted" => Notice::ok(t.deleted),
        "file_restored" => Notice::ok(t.restored),
        _ => None,
    }
}

pub struct FileLine {
    pub id: String,
    pub name: String,
    pub size: String,
    /// Empty when downloadable; else why not.
    pub state: &'static str,
    pub downloadable: bool,
}

pub struct FilesView {
    pub t: &'static FilesText,
    pub live: Vec<FileLine>,
    pub trashed: Vec<FileLine>,
}

fn size(n: i64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.0} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn line(t: &'static FilesText, f: FileInfo) -> FileLine {
    let (state, downloadable) = match f.status.as_str() {
        "pending" => (t.pending, false),
        "infected" => (t.infected, false),
        _ => ("", true),
    };
    FileLine {
        id: f.id.to_string(),
        name: f.name,
        size: size(f.size),
        state,
        downloadable,
    }
}

/// The section's contents, or None for types without files (or a server without them).
pub async fn view(
    s: &AppState,
    a: &Actor,
    lang: Lang,
    t: ObjectType,
    id: RecordId,
) -> kluis_core::Result<Option<FilesView>> {
    if !carries_files(t) || s.kluis.files_config().is_none() {
        return Ok(None);
    }
    let tx = text(lang);
    let live = s.kluis.list_files(a, t, id, false).await?;
    let trashed = s.kluis.list_files(a, t, id, true).await?;
    Ok(Some(FilesView {
        t: tx,
        live: live.into_iter().map(|f| line(tx, f)).collect(),
        trashed: trashed.into_iter().map(|f| line(tx, f)).collect(),
    }))
}

/// `POST /<type>/{id}/files`: multipart with `csrf` first, then `file`.
pub async fn upload(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Response {
    let t = record_type(&uri);
    let bad = || {
        kluis_core::Error::validation("file", "invalid_form", "the upload form was not understood")
    };
    // The token comes first in the form (the template puts it there): nothing of the file is
    // read before the poster is known.
    let csrf = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    let user = match form_page_user(&s, &headers, &csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let id = parse_id(&id)?;
        let field = form
            .next_field()
            .await
            .map_err(|_| bad())?
            .ok_or_else(bad)?;
        if field.name() != Some("file") {
            return Err(bad());
        }
        let name = field.file_name().unwrap_or_default().to_owned();
        let base = format!("{}/{}", view::plural(t), id);
        s.kluis
            .upload_file(&user.actor, &c, t, id, &name, field.boxed())
            .await?;
        Ok(format!("{base}?done=file_uploaded#files"))
    }
    .await;
    let refused = result.is_err();
    let mut res = after(&headers, &user, t, result);
    if refused {
        // The rest of the form may be unread: this connection cannot carry another request.
        // (hyper drops the header on HTTP/2, where it does not apply.)
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}

async fn set_trashed(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
    form: &Pairs,
    trash: bool,
) -> Response {
    let user = match poster(s, headers, form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(uri);
    let result = async {
        let id = parse_id(id)?;
        let file = get_field(form, "file")
            .parse::<uuid::Uuid>()
            .map_err(|_| kluis_core::Error::not_found())?;
        // The file must hang on this record (the service checks the tenant and the record).
        let info = s.kluis.file_info(&user.actor, file).await?;
        if info.record_id != id.0 {
            return Err(kluis_core::Error::not_found());
        }
        if trash {
            s.kluis.delete_file(&user.actor, c, file).await?;
        } else {
            s.kluis.restore_file(&user.actor, c, file).await?;
        }
        let code = if trash {
            "file_deleted"
        } else {
            "file_restored"
        };
        Ok(format!("{}/{}?done={code}#files", view::plural(t), id))
    }
    .await;
    after(headers, &user, t, result)
}

/// `POST /<type>/{id}/files/delete` (`file`, `csrf`).
pub async fn delete(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::extract::Form(form): axum::extract::Form<Pairs>,
) -> Response {
    set_trashed(&s, &c, &headers, &uri, &id, &form, true).await
}

/// `POST /<type>/{id}/files/restore` (`file`, `csrf`).
pub async fn restore(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::extract::Form(form): axum::extract::Form<Pairs>,
) -> Response {
    set_trashed(&s, &c, &headers, &uri, &id, &form, false).await
}
