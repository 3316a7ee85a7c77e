//! `trajhost plugin new NAME`: a backbone crate of its own, made from `plugins/template/`
//! (embedded here, so the two cannot drift apart), that builds outside this repository with
//! one `cargo build --release` and runs the conformance kit in its `cargo test`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// How the new crate reaches `trajhost-plugin-api` and `trajhost-build`, which are not on
/// crates.io.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deps {
    /// By path, to this checkout of trajhost (absolute).
    Path,
    /// By git URL (`--git-url`, default: this checkout's `origin`), pinned to its commit.
    Git,
}

/// `trajhost plugin new`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NewPluginArgs {
    /// The plugin's name: lowercase letters, digits and '_' (e.g. `r2plus1d`).
    pub name: String,
    /// The crate's folder (default: ./NAME); it must not exist or be empty.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How it depends on trajhost-plugin-api and trajhost-build: `path` (this checkout)
    /// or `git` (--git-url, default: this checkout's origin, pinned to its commit).
    #[arg(long, value_enum, default_value = "path")]
    pub deps: Deps,
    #[arg(long)]
    pub git_url: Option<String>,
}

const TEMPLATE_MANIFEST: &str = include_str!("../../../plugins/template/Cargo.toml");
const TEMPLATE_BUILD: &str = include_str!("../../../plugins/template/build.rs");
const TEMPLATE_LIB: &str = include_str!("../../../plugins/template/src/lib.rs");
const TEMPLATE_TEST: &str = include_str!("../../../plugins/template/tests/conformance.rs");
const TEMPLATE_README: &str = include_str!("../../../plugins/template/README.md");

/// The template's own dependency lines, replaced by paths or git URLs into this checkout.
const API_DEP: &str = r#"trajhost-plugin-api = { path = "../../plugin-api" }"#;
const BUILD_DEP: &str = r#"trajhost-build = { path = "../../build-support" }"#;

/// `.cargo/config.toml`: cargo finds libtorch through the `.libtorch` link, as in trajhost.
const CARGO_CONFIG: &str = "[env]\nLIBTORCH = { value = \".libtorch\", relative = true }\n";
/// What the crate's build and its README's commands write: nothing to commit.
const GITIGNORE: &str = "/target\n/.libtorch\n/results\n/data\n*.snap.new\n";

/// The trajhost checkout this binary was built from.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// A crate name that is also a plugin name: `lib<name>.so`, `--plugin <name>`, `use <name>`.
pub fn check_name(name: &str) -> Result<()> {
    const RESERVED: &[&str] = &[
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        // Reserved for later editions: a crate of that name does not compile either.
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "gen",
        "macro",
        "override",
        "priv",
        "try",
        "typeof",
        "unsized",
        "virtual",
        "yield",
        "std",
        "core",
        "alloc",
        "test",
        "proc_macro",
    ];
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed {
        bail!("plugin name '{name}': use lowercase letters, digits and '_', starting with a letter (it names the crate, lib{name}.so and --plugin {name})");
    }
    if RESERVED.contains(&name) {
        bail!("plugin name '{name}' is a Rust keyword or a built-in crate: choose another");
    }
    Ok(())
}

/// `my_net` → `MyNet`: the backbone's type.
pub fn type_name(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The template's manifest for crate `name` with `api` and `build` as dependency specs,
/// made a workspace of its own (so it builds even inside another workspace's folder).
pub fn manifest(name: &str, api: &str, build: &str) -> Result<String> {
    let text = TEMPLATE_MANIFEST.replacen("name = \"template\"", &format!("name = \"{name}\""), 1);
    if !text.contains(API_DEP) || !text.contains(BUILD_DEP) || text == TEMPLATE_MANIFEST {
        bail!("plugins/template/Cargo.toml no longer has the lines `plugin new` rewrites");
    }
    let text = text
        .replace(API_DEP, &format!("trajhost-plugin-api = {api}"))
        .replace(BUILD_DEP, &format!("trajhost-build = {build}"));
    Ok(text + "\n# A workspace of its own, wherever it is placed.\n[workspace]\n")
}

/// Dependency specs `(plugin-api, build-support)` for `deps`.
fn dependency_specs(options: &NewPluginArgs) -> Result<(String, String)> {
    let root = checkout();
    match options.deps {
        Deps::Path => {
            if !root.join("plugin-api/Cargo.toml").is_file() {
                bail!("--deps path: this trajhost was built from {}, which no longer holds plugin-api/Cargo.toml; use --deps git", root.display());
            }
            let spec =
                |dir: &str| format!("{{ path = {:?} }}", root.join(dir).display().to_string());
            Ok((spec("plugin-api"), spec("build-support")))
        }
        Deps::Git => {
            let url = match &options.git_url {
                Some(url) => url.clone(),
                None => git(&root, &["remote", "get-url", "origin"]).context(
                    "--deps git: this checkout has no `origin` remote; give the repository's URL with --git-url",
                )?,
            };
            // A clone of a clone has a folder as its origin: useless on any other machine.
            if !url.contains("://") && !url.contains('@') {
                bail!("--deps git: this checkout's `origin` is {url:?}, a folder on this machine, which nobody else can fetch; give the repository's URL with --git-url");
            }
            let pin = git(&root, &["rev-parse", "HEAD"])
                .map(|rev| format!(", rev = {rev:?}"))
                .unwrap_or_default();
            let spec = format!("{{ git = {url:?}{pin} }}");
            Ok((spec.clone(), spec))
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git")?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.is_empty() {
        bail!("git {} failed in {}", args.join(" "), dir.display());
    }
    Ok(text)
}

/// The libtorch folder this process runs on, read from its memory map: the one the new crate
/// must link for its plugin to load here.
fn running_libtorch() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let library = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))?;
    // <libtorch>/lib/libtorch_cpu.so
    Some(Path::new(library).parent()?.parent()?.to_path_buf())
}

/// Writes the crate; returns its folder.
pub fn scaffold(options: &NewPluginArgs) -> Result<PathBuf> {
    let name = options.name.as_str();
    check_name(name)?;
    let dir = options.out.clone().unwrap_or_else(|| PathBuf::from(name));
    let shown = dir.display();
    if dir.is_file() {
        bail!("--out {shown} is a file; give a new or empty folder");
    }
    if dir.is_dir() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{shown} is not empty; give a new or empty folder with --out");
    }
    let (api, build) = dependency_specs(options)?;
    let ty = type_name(name);
    let files = [
        ("Cargo.toml", manifest(name, &api, &build)?),
        ("build.rs", TEMPLATE_BUILD.to_string()),
        ("src/lib.rs", TEMPLATE_LIB.replace("Template", &ty)),
        (
            "tests/conformance.rs",
            TEMPLATE_TEST.replace("template::build", &format!("{name}::build")),
        ),
        (
            "README.md",
            TEMPLATE_README.replace("mynet", name).replace("MyNet", &ty),
        ),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        (".gitignore", GITIGNORE.to_string()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file in the crate"))
            .with_context(|| format!("creating {}", path.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // The host's own lock file: the new crate resolves tch, torch-sys and the rest to exactly
    // the versions the host was built with (cargo drops what it does not use).
    let lock = checkout().join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .with_context(|| format!("copying {} into {shown}", lock.display()))?;
    }
    match running_libtorch() {
        Some(libtorch) => std::os::unix::fs::symlink(&libtorch, dir.join(".libtorch"))
            .with_context(|| format!("linking {shown}/.libtorch"))?,
        None => eprintln!(
            "note: could not tell which libtorch trajhost runs on; link it with: {}/scripts/setup-torch --link {shown}",
            checkout().display()
        ),
    }
    Ok(dir)
}

/// `trajhost plugin new`: scaffolds, then says what to run next.
pub fn run(options: &NewPluginArgs) -> Result<()> {
    let dir = scaffold(options)?;
    let name = &options.name;
    let shown = dir.display();
    let exe = std::env::current_exe().map_or("trajhost".into(), |p| p.display().to_string());
    println!("created the backbone crate '{name}' in {shown}; next:");
    println!("  cd {shown}");
    println!("  cargo build --release     # target/release/lib{name}.so");
    println!("  cargo test --release      # the conformance kit, in-process");
    println!("  {exe} plugin check target/release/lib{name}.so");
    println!("then write your layers where src/lib.rs says TODO (README.md walks through it)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_plugin_names() {
        assert!(check_name("r2plus1d").is_ok());
        assert!(check_name("my_net").is_ok());
        for bad in [
            "", "MyNet", "my-net", "2net", "net!", "fn", "std", "abstract", "yield", "gen",
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        assert_eq!(type_name("r2plus1d"), "R2plus1d");
        assert_eq!(type_name("my_net"), "MyNet");
    }

    #[test]
    fn the_manifest_gets_its_name_dependencies_and_own_workspace() {
        let text = manifest("r2", "{ path = \"/a\" }", "{ path = \"/b\" }").unwrap();
        assert!(text.contains("name = \"r2\""), "{text}");
        assert!(
            text.contains("trajhost-plugin-api = { path = \"/a\" }"),
            "{text}"
        );
        assert!(
            text.contains("trajhost-build = { path = \"/b\" }"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("[workspace]"), "{text}");
        assert!(!text.contains("workspace = true"), "{text}");
    }

    /// A git dependency on a folder works only on this machine: refused, naming it (a clone
    /// of a clone has one as its `origin`); a URL is written pinned.
    #[test]
    fn git_dependencies_need_a_url_not_a_folder() {
        let options = |url: &str| NewPluginArgs {
            name: "r2".into(),
            out: None,
            deps: Deps::Git,
            git_url: Some(url.into()),
        };
        let err = dependency_specs(&options("/home/me/trajhost")).unwrap_err();
        assert!(
            err.to_string().contains("\"/home/me/trajhost\", a folder"),
            "{err}"
        );
        let (api, _) = dependency_specs(&options("https://example.org/trajhost.git")).unwrap();
        assert!(
            api.starts_with("{ git = \"https://example.org/trajhost.git\""),
            "{api}"
        );
    }

    #[test]
    fn an_occupied_folder_or_a_bad_name_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let options = |name: &str, out: &Path| NewPluginArgs {
            name: name.into(),
            out: Some(out.to_path_buf()),
            deps: Deps::Path,
            git_url: None,
        };
        let err = scaffold(&options("ok", dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not empty"), "{err}");
        let fresh = dir.path().join("fresh");
        let err = scaffold(&options("Bad", &fresh)).unwrap_err().to_string();
        assert!(err.contains("'Bad'"), "{err}");
        assert!(!fresh.exists());
    }
}
