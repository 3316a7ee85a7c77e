//! `--plugin PATH|NAME`: a path is used as given; a bare name `x` means `libx.so` in the
//! plugin folders. A bare name that is also a folder where trajhost runs (a plugin's own crate,
//! say) is still looked up as a name, and the error then says both.
//!
//! A plugin named by a checkpoint or a run folder (files from someone else) is looked up by
//! name only ([`resolve_recorded_plugin`]): opening a library runs its initialisers, so such a
//! name must never become a path.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The folders searched for a plugin given by name, in order: `$TRAJHOST_PLUGIN_DIR`,
/// `./plugins`, `./target/release` (where a plugin's own crate builds it), and the workspace's
/// `plugins/` next to the running binary's `target/`.
pub fn plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("TRAJHOST_PLUGIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("plugins"));
    dirs.push(PathBuf::from("target/release"));
    // target/<profile>/trajhost → <workspace>/plugins
    if let Ok(exe) = std::env::current_exe() {
        if let Some(workspace) = exe.ancestors().nth(3) {
            dirs.push(workspace.join("plugins"));
        }
    }
    dirs
}

pub fn resolve_plugin(spec: &str) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    let bare = !spec.contains('/') && !spec.ends_with(".so");
    let is_name = bare && (!as_path.exists() || as_path.is_dir());
    if !is_name {
        return Ok(as_path.to_path_buf());
    }
    find_in_plugin_dirs(spec)
}

/// The plugin a checkpoint or run folder names: a crate-like name (letters, digits, `_`, `-`)
/// found in the plugin folders, never a path, whatever the name looks like.
pub fn resolve_recorded_plugin(name: &str) -> Result<PathBuf> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !plain {
        bail!(
            "the recorded plugin name {name:?} is not a plugin name (letters, digits, '_' or '-'); a run folder never names a plugin file: give --plugin to choose one"
        );
    }
    find_in_plugin_dirs(name)
}

fn find_in_plugin_dirs(spec: &str) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    let file = format!("lib{spec}.so");
    let dirs = plugin_dirs();
    if let Some(found) = dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let folder = match as_path.is_dir() {
        true => format!("{spec} is a directory, not a plugin file; "),
        false => String::new(),
    };
    bail!(
        "{folder}no plugin named '{spec}': looked for {file} in {} (build plugins with scripts/build, set TRAJHOST_PLUGIN_DIR, or give a path)",
        searched.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_kept_and_unknown_names_are_explained() {
        assert_eq!(
            resolve_plugin("x/liby.so").unwrap(),
            PathBuf::from("x/liby.so")
        );
        let err = resolve_plugin("no_such_backbone").unwrap_err().to_string();
        assert!(err.contains("libno_such_backbone.so"), "{err}");
    }

    #[test]
    fn a_recorded_name_is_never_used_as_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libevil.so");
        std::fs::write(&file, b"not a library").unwrap();
        for name in [
            file.to_str().unwrap(),
            "../plugins/libmagvit.so",
            "runs/x/checkpoints/epoch-0002.so",
            "magvit.so",
            "",
            ".",
        ] {
            let err = resolve_recorded_plugin(name).unwrap_err().to_string();
            assert!(err.contains("not a plugin name"), "{name}: {err}");
        }
        let err = resolve_recorded_plugin("no_such_backbone")
            .unwrap_err()
            .to_string();
        assert!(err.contains("libno_such_backbone.so"), "{err}");
    }
}
