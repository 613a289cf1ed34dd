//! Layering rules checked over source text: which files may name which crate.
//!
//! The compiler enforces that arrows between crates never point up (Cargo refuses cycles); it
//! cannot see that inside `kluis-core` only the seam (`src/db.rs`) names `kluis-store`, or that
//! the HTTP layer never reaches the store around the core. These checks can, and each has a
//! test that plants a violation to show it fails.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (recursively) whose code names `crate_ident` (e.g.
/// `kluis_store`) and is not in `allowed` (paths relative to `dir`). Comment lines are
/// ignored, so documentation may mention the crate.
pub fn files_naming(dir: &Path, crate_ident: &str, allowed: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut |path| {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        if allowed.iter().any(|a| Path::new(a) == rel) {
            return;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let names_it = text.lines().any(|line| {
            let code = line.trim_start();
            !code.starts_with("//") && names(code, crate_ident)
        });
        if names_it {
            out.push(rel.to_path_buf());
        }
    });
    out.sort();
    out
}

/// `crate_ident` as a whole path segment (`kluis_store::`, `kluis_store;`, `extern crate`),
/// not as part of a longer identifier.
fn names(code: &str, crate_ident: &str) -> bool {
    code.match_indices(crate_ident).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + crate_ident.len()..].chars().next();
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, f);
        } else if p.extension().is_some_and(|e| e == "rs") {
            f(&p);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_planted_import_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("crm")).unwrap();
        std::fs::write(dir.path().join("db.rs"), "pub use kluis_store::Store;\n").unwrap();
        std::fs::write(
            dir.path().join("ok.rs"),
            "//! Mentions kluis_store in a comment.\nuse kluis_store_extra::X;\nlet my_kluis_store = 1;\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("crm/planted.rs"),
            "fn f() {\n    let r: kluis_store::rows::UserRow;\n}\n",
        )
        .unwrap();
        let found = files_naming(dir.path(), "kluis_store", &["db.rs"]);
        assert_eq!(found, vec![PathBuf::from("crm/planted.rs")]);
        // Without the allowance, the seam itself is reported too.
        assert_eq!(files_naming(dir.path(), "kluis_store", &[]).len(), 2);
    }
}
