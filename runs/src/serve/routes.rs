//! What each URL answers, and the rule that no answer comes from outside the results folder.
//!
//! | path | answer |
//! |---|---|
//! | `/` | the dashboard (`page.html`) |
//! | `/api/runs` | [`super::api::Snapshot`] as JSON |
//! | `/api/runs/<name>/metrics` | [`super::api::History`] as JSON |
//! | `/api/runs/<name>/progress` | PROGRESS.txt |
//! | `/api/runs/<name>/log?lines=N` | the last N (200) lines of run.log |
//! | `/api/runs/<name>/checkpoints` | the files in checkpoints/ as JSON |
//! | `/files/<path>` | a file inside the results folder (curves PNG, train.out, ...) |
//!
//! Paths are decoded one segment at a time and a segment that is empty, `.`, `..`, or holds an
//! (encoded) `/`, `\` or NUL is refused before any file is looked at; a file (also PROGRESS.txt,
//! run.log and checkpoints/ of a run) is then served only if its real path (symbolic links
//! resolved) is still inside the results folder. A run folder linked in from elsewhere is
//! neither listed nor served (`api::Runs` leaves it out, so its name is unknown here).

use super::api::Runs;
use super::auth::Guard;
pub use super::server::Body;
use super::server::{Request, Response};
use crate::rundir::{self, PROGRESS};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const PAGE: &str = include_str!("page.html");

/// Lines of run.log `/log` gives without `?lines=`, and the most it gives.
const LOG_LINES: usize = 200;
const MAX_LOG_LINES: usize = 10_000;

pub struct Service {
    pub guard: Guard,
    pub runs: Runs,
}

/// An answer before it becomes a response (so the rules are testable without a socket).
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
    /// `Content-Disposition: attachment`: a file the browser should save, not render.
    pub download: bool,
}

impl Answer {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Answer {
        Answer {
            status,
            content_type,
            body: Body::Bytes(body),
            download: false,
        }
    }

    fn text(status: u16, text: impl Into<String>) -> Answer {
        Answer::new(status, TEXT, (text.into() + "\n").into_bytes())
    }

    fn json(value: &impl serde::Serialize) -> Answer {
        match serde_json::to_vec(value) {
            Ok(body) => Answer::new(200, JSON, body),
            Err(e) => Answer::text(500, format!("encoding JSON: {e}")),
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

impl Service {
    /// What a worker of `super::server` sends back for `request`.
    pub fn respond(&self, request: &Request) -> Response {
        let header = |name: &'static str| request.header(name).map(str::to_string);
        response(self.answer(&request.method, &request.target, header))
    }

    /// The answer to `method url`; `header` looks a request header up by name.
    pub fn answer(
        &self,
        method: &str,
        url: &str,
        header: impl Fn(&'static str) -> Option<String>,
    ) -> Answer {
        if method != "GET" && method != "HEAD" {
            return Answer::text(405, "read-only: GET and HEAD only");
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let query = parse_query(query);
        if let Err(refusal) = self.guard.check(
            header("Authorization").as_deref(),
            param(&query, "token"),
            header("Host").as_deref(),
        ) {
            return Answer::text(refusal.status, refusal.reason);
        }
        let parts = match parse_path(path) {
            Ok(parts) => parts,
            Err(reason) => return Answer::text(400, reason),
        };
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match parts.as_slice() {
            [] => Answer::new(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
            ["api", "runs"] => Answer::json(&self.runs.snapshot()),
            ["api", "runs", name, what] => match self.runs.find(name) {
                Some(dir) => self.run_file(&dir, what, param(&query, "lines")),
                None => Answer::text(404, format!("no run named {name:?}")),
            },
            ["files", rest @ ..] if !rest.is_empty() => self.file(rest),
            _ => Answer::text(404, format!("nothing at {path}")),
        }
    }

    fn run_file(&self, dir: &Path, what: &str, lines: Option<&str>) -> Answer {
        let name = rundir::run_name(dir);
        // The raw files below are served only from inside the results folder, like /files/: a
        // run.log linked to /etc/passwd is refused, not tailed.
        let inside = |file: &str| self.inside(&dir.join(file), &format!("{name}/{file}"));
        match what {
            "metrics" => Answer::json(&self.runs.history(dir)),
            "progress" => match inside(PROGRESS) {
                Ok(Some(real)) => match rundir::read_regular(&real) {
                    Ok(Some(text)) => Answer::new(200, TEXT, text),
                    Ok(None) => Answer::text(404, format!("{name} has no {PROGRESS}")),
                    Err(_) => Answer::text(404, format!("{name}/{PROGRESS} could not be read")),
                },
                Ok(None) => Answer::text(404, format!("{name} has no {PROGRESS}")),
                Err(refusal) => refusal,
            },
            "log" => {
                let lines = match lines.map(str::parse::<usize>) {
                    None => LOG_LINES,
                    Some(Ok(n)) => n.clamp(1, MAX_LOG_LINES),
                    Some(Err(_)) => return Answer::text(400, "?lines= takes a whole number"),
                };
                if let Err(refusal) = inside(rundir::RUN_LOG) {
                    return refusal;
                }
                match rundir::log::tail(dir, lines) {
                    Ok(Some(text)) => Answer::new(200, TEXT, text.into_bytes()),
                    Ok(None) => Answer::text(404, format!("{name} has no {}", rundir::RUN_LOG)),
                    Err(e) => Answer::text(500, format!("{e:#}")),
                }
            }
            "checkpoints" => {
                if let Err(refusal) = inside(rundir::CHECKPOINTS) {
                    return refusal;
                }
                match rundir::list_checkpoints(dir) {
                    Ok(files) => Answer::json(&files),
                    Err(e) => Answer::text(500, format!("{e:#}")),
                }
            }
            _ => Answer::text(404, format!("runs have no {what:?}")),
        }
    }

    /// `path`'s real location (links resolved) when it is inside the results folder, None
    /// when it does not exist, a refusal when it leads outside.
    fn inside(&self, path: &Path, shown: &str) -> Result<Option<PathBuf>, Answer> {
        match std::fs::canonicalize(path) {
            Ok(real) if real.starts_with(self.runs.root()) => Ok(Some(real)),
            Ok(_) => Err(Answer::text(
                403,
                format!("{shown} leads outside the results folder"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Answer::text(404, format!("{shown}: {e}"))),
        }
    }

    /// A regular file inside the results folder, symbolic links resolved.
    fn file(&self, parts: &[&str]) -> Answer {
        let asked = parts
            .iter()
            .fold(self.runs.root().to_path_buf(), |p, s| p.join(s));
        let shown = parts.join("/");
        let real = match self.inside(&asked, &shown) {
            Ok(Some(real)) => real,
            Ok(None) => return Answer::text(404, format!("no file {shown}")),
            Err(refusal) => return refusal,
        };
        if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
            return Answer::text(404, format!("{shown} is not a file"));
        }
        // O_NOFOLLOW: a link swapped in since the check is refused, not followed. O_NONBLOCK:
        // a FIFO swapped in does not hang the worker.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&real)
            .and_then(|f| Ok((f.metadata()?, f)));
        match opened {
            Ok((meta, file)) if meta.is_file() => {
                let (content_type, download) = content_type(&real);
                Answer {
                    status: 200,
                    content_type,
                    body: Body::File(file, meta.len()),
                    download,
                }
            }
            _ => Answer::text(404, format!("{shown} could not be opened")),
        }
    }
}

/// How a file is served: text and pictures inline, anything else (HTML or SVG a run folder
/// might hold included, which could run script on this page's origin) as a download.
fn content_type(path: &Path) -> (&'static str, bool) {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => ("image/png", false),
        Some("gif") => ("image/gif", false),
        Some("jpg" | "jpeg") => ("image/jpeg", false),
        Some("json") => (JSON, false),
        Some("txt" | "log" | "out" | "md" | "jsonl" | "ron" | "csv" | "slurm") => (TEXT, false),
        _ => ("application/octet-stream", true),
    }
}

/// `/a/b%20c` → `["a", "b c"]`; `/` → `[]`.
fn parse_path(path: &str) -> Result<Vec<String>, &'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("the path must start with /");
    };
    if rest.is_empty() {
        return Ok(vec![]);
    }
    rest.split('/')
        .map(|raw| {
            let bytes = percent_decode(raw).ok_or("a bad %-escape in the path")?;
            let part = String::from_utf8(bytes).map_err(|_| "the path is not UTF-8")?;
            if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\', '\0']) {
                return Err(
                    "refused: the path has an empty, `.` or `..` part, or an encoded separator",
                );
            }
            Ok(part)
        })
        .collect()
}

fn param<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .filter_map(|(k, v)| {
            let decode = |s: &str| String::from_utf8(percent_decode(s)?).ok();
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// `%2e%2E` → `..`; None for a `%` not followed by two hex digits.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn response(answer: Answer) -> Response {
    let mut headers = vec![
        ("Content-Type", answer.content_type),
        // Every answer is live data: never from a cache.
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        // The page's address may hold the token: never pass it on in a Referer.
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
        ),
    ];
    if answer.status == 401 {
        headers.push(("WWW-Authenticate", "Bearer"));
    }
    if answer.download {
        headers.push(("Content-Disposition", "attachment"));
    }
    Response {
        status: answer.status,
        headers,
        body: answer.body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_a_segment_at_a_time_and_escapes_are_refused() {
        assert_eq!(parse_path("/").unwrap(), Vec::<String>::new());
        assert_eq!(parse_path("/api/runs").unwrap(), ["api", "runs"]);
        assert_eq!(
            parse_path("/files/a%20b/c.txt").unwrap(),
            ["files", "a b", "c.txt"]
        );
        for bad in [
            "/files/../x",
            "/files/%2e%2e/x",
            "/files/%2E%2e/x",
            "/files/a%2f..%2fx",
            "/files/a%5c..%5cx",
            "/files//etc/passwd",
            "/files/%2fetc%2fpasswd",
            "/files/./x",
            "/files/a%00",
            "/files/%zz",
            "relative",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            parse_query("token=a%2Bb&lines=5&flag"),
            [
                ("token".to_string(), "a+b".to_string()),
                ("lines".into(), "5".into()),
                ("flag".into(), "".into())
            ]
        );
    }

    #[test]
    fn only_text_and_pictures_are_shown_inline() {
        assert_eq!(content_type(Path::new("a/run.log")), (TEXT, false));
        assert_eq!(
            content_type(Path::new("training_curves.PNG")),
            ("image/png", false)
        );
        assert!(content_type(Path::new("evil.html")).1);
        assert!(content_type(Path::new("evil.svg")).1);
        assert!(content_type(Path::new("epoch-0001.safetensors")).1);
    }
}
