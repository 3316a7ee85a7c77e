//! The benchmark's tables and the sentences about them, rendered from `bench/results.json`
//! alone: `trajhost-bench report` prints them, `trajhost-bench docs` writes them into
//! docs/bench.md and the README's speed section between `<!-- bench:begin NAME -->` and
//! `<!-- bench:end NAME -->`, and a test fails when those blocks differ from what the JSON gives,
//! so the documented numbers cannot drift from the measured ones.
//!
//! Every training and inference row's headline is trajhost against the **best peer of that
//! row** (the PyTorch side with the highest median block), as the median of the interleaved
//! pairs' ratios with their min–max; the ratio against PyTorch eager with default malloc follows
//! on its own, labelled line. A lead is claimed only where every pair shows it.

use crate::boundary::{Overhead, BOUND_PCT};
use crate::pairs::{median, Ratios};
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::fmt::Write;

/// The peer that keeps PyTorch's default allocator (the "as shipped" comparison).
pub const DEFAULT_MALLOC_PEER: &str = "eager";

/// One side's timed blocks (videos/s; a failed block reads 0).
fn blocks(side: &Value) -> Vec<f64> {
    side["blocks"]
        .as_array()
        .map(|b| b.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect())
        .unwrap_or_default()
}

fn median_block(side: &Value) -> Option<f64> {
    let b: Vec<f64> = blocks(side).into_iter().filter(|&x| x > 0.0).collect();
    (!b.is_empty()).then(|| median(&b))
}

/// A training or inference row of a schema-2 results file.
pub struct Row<'a> {
    pub sides: &'a serde_json::Map<String, Value>,
}

impl<'a> Row<'a> {
    pub fn of(row: &'a Value) -> Option<Row<'a>> {
        Some(Row {
            sides: row["sides"].as_object()?,
        })
    }

    fn trajhost(&self) -> &Value {
        &self.sides["trajhost"]
    }

    /// The peer with the highest median block, among those that ran.
    pub fn best_peer(&self) -> Option<&'a str> {
        self.sides
            .iter()
            .filter(|(name, _)| name.as_str() != "trajhost")
            .filter_map(|(name, side)| Some((name.as_str(), median_block(side)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, _)| name)
    }

    /// trajhost's blocks against `peer`'s, pair by pair.
    pub fn against(&self, peer: &str) -> Ratios {
        Ratios::of(&blocks(self.trajhost()), &blocks(&self.sides[peer]))
    }

    pub fn vs_best(&self) -> Option<(&'a str, Ratios)> {
        let peer = self.best_peer()?;
        Some((peer, self.against(peer)))
    }
}

/// The peers' column order (`run_bench.py`'s `PEERS`); others follow by name.
const PEER_ORDER: [&str; 4] = ["eager", "eager_tuned", "compile", "compile_max_autotune"];

/// The peers' keys and column labels, from the file's meta.
fn peers(r: &Value) -> Vec<(String, String)> {
    let mut peers: Vec<(String, String)> = r["meta"]["peers"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.clone(), v["label"].as_str().unwrap_or(k).to_string()))
                .collect()
        })
        .unwrap_or_default();
    let rank = |k: &str| {
        PEER_ORDER
            .iter()
            .position(|p| *p == k)
            .unwrap_or(PEER_ORDER.len())
    };
    peers.sort_by(|a, b| (rank(&a.0), &a.0).cmp(&(rank(&b.0), &b.0)));
    peers
}

fn is_current(r: &Value) -> bool {
    r["meta"]["schema"].as_i64() == Some(2) && r["models"].is_object()
}

fn label(what: &str) -> &'static str {
    if what == "train" {
        "training"
    } else {
        "inference"
    }
}

/// Where the measurement came from, in one sentence.
fn provenance(r: &Value) -> String {
    let m = &r["meta"];
    let s = &m["settings"];
    format!(
        "{}, {} threads, `OMP_WAIT_POLICY` {}, torch {}; {} interleaved pairs of {}-step blocks per row, batch {}{}",
        stamp(m),
        m["threads"],
        m["omp_wait_policy"].as_str().unwrap_or("?"),
        m["torch"].as_str().unwrap_or("?"),
        s["pairs"],
        s["block_steps"],
        s["batch"],
        quick_mode_warning(m),
    )
}

/// The command, the time and the commit a measurement's `meta` records.
fn stamp(meta: &Value) -> String {
    let field = |name: &str| meta[name].as_str().unwrap_or("?").to_string();
    format!(
        "`{}`, {} UTC, commit {}",
        field("command"),
        field("date").replace('T', " "),
        field("commit")
    )
}

/// The warning a quick (harness-check) measurement carries wherever its numbers are shown.
fn quick_mode_warning(meta: &Value) -> &'static str {
    if meta["quick"].as_bool() == Some(true) {
        " — **QUICK MODE: a harness check, the numbers mean nothing**"
    } else {
        ""
    }
}

/// Whether a row shows a lead: only where every pair does.
fn lead(r: Ratios) -> &'static str {
    if r.pairs == 0 {
        "no pairs"
    } else if r.min > 1.0 {
        "ahead in every pair"
    } else if r.max < 1.0 {
        "behind in every pair"
    } else {
        "no consistent lead"
    }
}

/// A table's header and rule: `first`, then trajhost and every peer (numbers), then `extra`.
fn sides_header(first: &str, peers: &[(String, String)], extra: &[&str]) -> String {
    let mut header = format!("| {first} | trajhost |");
    let mut rule = "| --- | ---: |".to_string();
    for (_, label) in peers {
        header += &format!(" {label} |");
        rule += " ---: |";
    }
    for column in extra {
        header += &format!(" {column} |");
        rule += " --- |";
    }
    format!("{header}\n{rule}")
}

/// The throughput table: one column per side (median block, videos/s), the headline ratio
/// against the row's best peer and the default-malloc ratio.
fn throughput_table(r: &Value) -> Result<String> {
    let peers = peers(r);
    let mut out = String::new();
    let ratios = [
        "**trajhost / best peer** (median of pairs, min–max)",
        "trajhost / PyTorch eager with default malloc (not like for like)",
    ];
    writeln!(out, "{}", sides_header("row", &peers, &ratios))?;
    let models = r["models"]
        .as_object()
        .ok_or_else(|| anyhow!("no models"))?;
    for (name, m) in models {
        for what in ["train", "infer"] {
            let row = Row::of(&m[what]).ok_or_else(|| anyhow!("{name}.{what}: no sides"))?;
            let cell = |side: &Value| match (median_block(side), side["error"].as_str()) {
                (_, Some(e)) => format!("— ({})", first_line(e)),
                (Some(v), None) => format!("{v:.1}"),
                (None, None) => "—".into(),
            };
            let mut line = format!("| {name} {} | {} |", label(what), cell(row.trajhost()));
            for (peer, _) in &peers {
                let side = row.sides.get(peer).unwrap_or(&Value::Null);
                write!(line, " {} |", cell(side))?;
            }
            match row.vs_best() {
                Some((peer, ratios)) => write!(
                    line,
                    " **{}** vs {peer}: {} |",
                    ratios.describe(),
                    lead(ratios)
                )?,
                None => line.push_str(" — (no peer ran) |"),
            }
            let default = if row.sides.contains_key(DEFAULT_MALLOC_PEER) {
                row.against(DEFAULT_MALLOC_PEER).describe()
            } else {
                "—".into()
            };
            writeln!(line, " {default} |")?;
            out.push_str(&line);
        }
    }
    Ok(out)
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let line = line.replace('|', "/");
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line
    }
}

/// `trajhost train` for one epoch against the best peer's median block.
fn cli_table(r: &Value) -> Result<String> {
    let mut out = String::new();
    for (name, m) in r["models"].as_object().into_iter().flatten() {
        let Some(cli) = m.get("cli_train") else {
            continue;
        };
        if out.is_empty() {
            writeln!(out, "| `trajhost train`, 1 epoch incl. its first steps | videos/s (best of its runs) | best peer's median block | ratio |\n| --- | ---: | ---: | ---: |")?;
        }
        let row = Row::of(&m["train"]);
        let best = row.as_ref().and_then(|row| {
            let peer = row.best_peer()?;
            Some((peer, median_block(&row.sides[peer])?))
        });
        match (cli["videos_per_s"].as_f64(), best) {
            (Some(c), Some((peer, p))) => {
                writeln!(out, "| {name} | {c:.1} | {p:.1} ({peer}) | {:.2}× |", c / p)?
            }
            _ => writeln!(
                out,
                "| {name} | — ({}) | | |",
                first_line(cli["error"].as_str().unwrap_or("not measured"))
            )?,
        }
    }
    Ok(out)
}

fn boundary_table(r: &Value) -> Result<String> {
    let mut out = String::new();
    let Some(boundary) = r["boundary"].as_object() else {
        return Ok(out);
    };
    writeln!(out, "| plugin boundary, batch of {} | through the plugin, median ms | linked in-process, median ms | overhead: ratio of the medians (spread of the rounds): verdict |\n| --- | ---: | ---: | --- |", r["meta"]["settings"]["boundary_batch"])?;
    for (name, b) in boundary {
        for mode in ["infer", "train"] {
            match Overhead::from_json(&b[mode]["overhead"]) {
                Some(o) => writeln!(
                    out,
                    "| {name} {} | {:.1} | {:.1} | {} |",
                    label(mode),
                    o.plugin_median_s * 1e3,
                    o.linked_median_s * 1e3,
                    o.describe(BOUND_PCT)
                )?,
                None => writeln!(
                    out,
                    "| {name} {} | — | — | to be re-measured |",
                    label(mode)
                )?,
            }
        }
        let c = &b["small_call_us"];
        if let (Some(p), Some(l)) = (c["plugin"].as_f64(), c["linked"].as_f64()) {
            writeln!(
                out,
                "| {name}, one small call (1 video × 2 frames) | {:.3} | {:.3} | {:+.0} µs per call |",
                p / 1e3,
                l / 1e3,
                p - l
            )?;
        }
    }
    Ok(out)
}

fn datagen_table(r: &Value) -> Result<String> {
    let g = &r["datagen"];
    let v = |k: &str| g[k]["videos_per_s"].as_f64().unwrap_or(f64::NAN);
    let (tr, tr1, nr, te) = (
        v("trajhost_render"),
        v("trajhost_render_1worker"),
        v("numpy_render"),
        v("trajhost_generate"),
    );
    let threads = &r["meta"]["threads"];
    let mut out = String::new();
    writeln!(out, "| data generation | trajhost, videos/s | numpy, videos/s | ratio |\n| --- | ---: | ---: | ---: |")?;
    writeln!(
        out,
        "| render, {threads} workers vs numpy | {tr:.0} | {nr:.1} | {:.1}× |",
        tr / nr
    )?;
    writeln!(
        out,
        "| render, 1 worker vs numpy | {tr1:.0} | {nr:.1} | {:.1}× |",
        tr1 / nr
    )?;
    writeln!(out, "| `trajhost data generate` end to end incl. hashing and shard writing, {threads} workers (numpy: render only; not like for like) | {te:.0} | {nr:.1} | {:.1}× |", te / nr)?;
    Ok(out)
}

/// Peak resident memory and minor page faults per step of every side's process.
fn memory_table(r: &Value) -> Result<String> {
    let peers = peers(r);
    let mut out = String::new();
    let first = "peak RSS, MiB / minor faults per step";
    writeln!(out, "{}", sides_header(first, &peers, &[]))?;
    for (name, m) in r["models"].as_object().into_iter().flatten() {
        for what in ["train", "infer"] {
            let Some(row) = Row::of(&m[what]) else {
                continue;
            };
            let cell = |side: Option<&Value>| match side {
                Some(s) if s["peak_rss_kib"].is_number() => format!(
                    "{:.0} / {:.0}",
                    s["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
                    s["minor_faults_per_step"].as_f64().unwrap_or(f64::NAN)
                ),
                _ => "—".into(),
            };
            let mut line = format!(
                "| {name} {} | {} |",
                label(what),
                cell(row.sides.get("trajhost"))
            );
            for (peer, _) in &peers {
                write!(line, " {} |", cell(row.sides.get(peer)))?;
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(out)
}

/// Seconds until validation accuracy ≥ 90 % and MSE ≤ 0.05, per backbone.
fn time_to_accuracy_table(r: &Value) -> Result<String> {
    let t = &r["time_to_accuracy"];
    let Some(rows) = t["backbones"].as_object() else {
        return Ok(
            "Time to accuracy: not measured yet (`scripts/bench --time-to-accuracy`).\n".into(),
        );
    };
    let m = &t["meta"];
    let mut out = String::new();
    writeln!(
        out,
        "Time to accuracy: {}; `trajhost train` with {} on {} generated videos, at most {} min or {} epochs per backbone; seconds of training and validation (metrics.jsonl's `elapsed_seconds`) until validation first reaches the bar{}.\n",
        stamp(m),
        m["config"].as_str().unwrap_or("?"),
        m["samples"],
        m["minutes"],
        m["epochs"],
        quick_mode_warning(m),
    )?;
    writeln!(out, "| backbone | accuracy ≥ 90 % | MSE ≤ 0.05 | epochs run | best accuracy / MSE |\n| --- | ---: | ---: | ---: | --- |")?;
    for (name, row) in rows {
        if let Some(e) = row["error"].as_str() {
            writeln!(out, "| {name} | — ({}) | | | |", first_line(e))?;
            continue;
        }
        let reached = |v: &Value| match v["elapsed_s"].as_f64() {
            Some(s) => format!("{s:.0} s (epoch {})", v["epoch"]),
            None => "not reached".into(),
        };
        let epochs = row["epochs"].as_array().cloned().unwrap_or_default();
        let best = |k: &str, max: bool| {
            let vals = epochs.iter().filter_map(|e| e[k].as_f64());
            if max {
                vals.fold(f64::NAN, f64::max)
            } else {
                vals.fold(f64::NAN, f64::min)
            }
        };
        writeln!(
            out,
            "| {name} | {} | {} | {} | {:.1} % / {:.4} |",
            reached(&row["accuracy_90"]),
            reached(&row["mse_0_05"]),
            epochs.len(),
            100.0 * best("val_accuracy", true),
            best("val_mse", false)
        )?;
    }
    Ok(out)
}

/// What the rows say, in sentences computed from them (so no claim outlives its numbers).
fn summary(r: &Value) -> Result<String> {
    let mut out = String::new();
    for what in ["train", "infer"] {
        let mut ratios = vec![];
        let mut leads = vec![];
        for (name, m) in r["models"].as_object().into_iter().flatten() {
            if let Some((peer, x)) = Row::of(&m[what]).and_then(|row| row.vs_best()) {
                if x.pairs > 0 {
                    ratios.push(x.median);
                    leads.push(format!("{name} {} vs {peer} ({})", x.describe(), lead(x)));
                }
            }
        }
        if ratios.is_empty() {
            continue;
        }
        let (lo, hi) = (
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        writeln!(
            out,
            "* **{} against the best peer of each row: {lo:.2}–{hi:.2}×** (medians of pairs): {}.",
            label(what),
            leads.join("; ")
        )?;
    }
    Ok(out)
}

/// The block for docs/bench.md: provenance, every table, and what they say.
pub fn bench_block(r: &Value) -> Result<String> {
    if !is_current(r) {
        return Ok(stale(r));
    }
    let mut sections = vec![summary(r)?, throughput_table(r)?];
    let cli = cli_table(r)?;
    if !cli.is_empty() {
        sections.push(cli);
    }
    sections.extend([
        boundary_table(r)?,
        datagen_table(r)?,
        memory_table(r)?,
        time_to_accuracy_table(r)?,
    ]);
    let measured = provenance(r);
    Ok(format!(
        "Measured with {measured}.\n\n{}",
        sections.join("\n")
    ))
}

/// The block for the README's speed section: the headline ratios and time to accuracy.
pub fn readme_block(r: &Value) -> Result<String> {
    if !is_current(r) {
        return Ok(stale(r));
    }
    let sections = [
        summary(r)?,
        throughput_table(r)?,
        time_to_accuracy_table(r)?,
    ];
    Ok(format!(
        "From `bench/results.json` ({}; all of it in [docs/bench.md](docs/bench.md)):\n\n{}",
        provenance(r),
        sections.join("\n")
    ))
}

/// What a results file from before the like-for-like harness renders to: no numbers, since its
/// only PyTorch column was eager with default malloc.
fn stale(r: &Value) -> String {
    let mut out = format!(
        "**To be re-measured.** The committed `bench/results.json` ({}, `{}`) predates the like-for-like harness: its only PyTorch column is eager with default malloc, and issue 14 found most of that margin to be the glibc allocator settings trajhost applies to itself (with the same settings given to PyTorch, and with torch.compile, the lead mostly disappeared). Its ratios are therefore not shown. `scripts/bench --threads 2` on an idle machine re-measures and rewrites this block.\n",
        r["meta"]["date"].as_str().unwrap_or("undated"),
        r["meta"]["command"].as_str().unwrap_or("?"),
    );
    if r["time_to_accuracy"].is_object() {
        out.push('\n');
        out.push_str(&time_to_accuracy_table(r).unwrap_or_default());
    }
    out
}

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- bench:begin {name} (generated from bench/results.json by `trajhost-bench docs`; do not edit) -->"),
        format!("<!-- bench:end {name} -->"),
    )
}

/// `doc` with the text between NAME's markers replaced by `block`.
pub fn splice(doc: &str, name: &str, block: &str) -> Result<String> {
    let (begin, end) = markers(name);
    let Some(a) = doc.find(&begin) else {
        bail!("no `{begin}` marker");
    };
    let Some(b) = doc[a..].find(&end).map(|b| a + b) else {
        bail!("no `{end}` after `{begin}`");
    };
    Ok(format!(
        "{}{begin}\n{}{}{}",
        &doc[..a],
        block.trim_end_matches('\n').to_string() + "\n",
        end,
        &doc[b + end.len()..]
    ))
}

/// The documents the blocks go into, relative to the workspace root: (path, marker, renderer).
pub type Render = fn(&Value) -> Result<String>;

/// Rewrites every document's block from `results` under `root`; with `check`, changes nothing
/// and fails naming the documents that differ.
pub fn write_docs(root: &std::path::Path, results: &Value, check: bool) -> Result<()> {
    let mut stale = vec![];
    for (path, name, render) in DOCUMENTS {
        let file = root.join(path);
        let doc = std::fs::read_to_string(&file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let new = splice(&doc, name, &render(results)?).map_err(|e| anyhow!("{path}: {e}"))?;
        if new != doc {
            if check {
                stale.push(path);
            } else {
                crate::write_file(&file, &new)?;
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} not rendered from bench/results.json: run `target/release/trajhost-bench docs`",
            stale.join(", ")
        );
    }
    Ok(())
}
pub const DOCUMENTS: [(&str, &str, Render); 2] = [
    ("docs/bench.md", "results", bench_block),
    ("README.md", "speed", readme_block),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn side(blocks: &[f64]) -> Value {
        json!({"blocks": blocks, "peak_rss_kib": 1024 * 1000, "minor_faults_per_step": 0.0})
    }

    fn results() -> Value {
        let row = json!({"sides": {
            "trajhost": side(&[110.0, 100.0, 120.0, 105.0, 110.0]),
            "eager": side(&[60.0, 55.0, 65.0, 57.0, 60.0]),
            "eager_tuned": side(&[100.0, 95.0, 100.0, 100.0, 100.0]),
            "compile": {"blocks": [], "error": "did not start: no C++ compiler (g++) on PATH"},
        }});
        json!({
            "meta": {"schema": 2, "command": "scripts/bench --threads 2", "date": "2026-11-27T10:00:00+00:00",
                     "commit": "abc1234", "threads": 2, "omp_wait_policy": "(unset)", "torch": "2.13.0",
                     "quick": false, "settings": {"pairs": 5, "block_steps": 10, "batch": 32, "boundary_batch": 32},
                     "peers": {"eager": {"label": "eager, default malloc"}, "eager_tuned": {"label": "eager, tuned"},
                               "compile": {"label": "compile"}}},
            "models": {"magvit": {"train": row.clone(), "infer": row}},
            "datagen": {"trajhost_render": {"videos_per_s": 9000.0}, "trajhost_render_1worker": {"videos_per_s": 4500.0},
                        "numpy_render": {"videos_per_s": 180.0}, "trajhost_generate": {"videos_per_s": 1400.0}},
            "boundary": {"magvit": {"train": {"overhead": {"linked_median_s": 0.1254, "plugin_median_s": 0.1314, "pct": 4.78, "noise_pct": 0.3}},
                                    "infer": {"overhead": {"linked_median_s": 0.046, "plugin_median_s": 0.0462, "pct": 0.43, "noise_pct": 0.5}},
                                    "small_call_us": {"plugin": 562.0, "linked": 561.0}}},
        })
    }

    #[test]
    fn the_headline_is_against_the_best_peer_that_ran() {
        let r = results();
        let row = Row::of(&r["models"]["magvit"]["train"]).unwrap();
        assert_eq!(row.best_peer(), Some("eager_tuned"));
        let (_, x) = row.vs_best().unwrap();
        assert_eq!(x.pairs, 5);
        assert!((x.median - 1.1).abs() < 1e-12, "{x:?}");
        assert!((x.min - 1.05).abs() < 1e-12 && (x.max - 1.2).abs() < 1e-12);
        let default = row.against("eager");
        assert!(default.median > 1.8);
    }

    #[test]
    fn the_tables_show_both_ratios_the_reason_a_peer_is_missing_and_the_boundary_verdict() {
        let text = bench_block(&results()).unwrap();
        assert!(
            text.contains("| row | trajhost | eager, default malloc | eager, tuned | compile |"),
            "peer columns in PEERS order: {text}"
        );
        assert!(
            text.contains("**1.10× (1.05–1.20×, 5 pairs)** vs eager_tuned: ahead in every pair"),
            "{text}"
        );
        assert!(
            text.contains("| 1.83× (1.82–1.85×, 5 pairs) |"),
            "default-malloc ratio: {text}"
        );
        assert!(text.contains("— (did not start: no C++ compiler (g++) on PATH)"));
        assert!(text.contains("| 131.4 | 125.4 | +4.78 % (rounds ±0.30 %): not met (< 2 %) |"));
        assert!(text.contains("**training against the best peer of each row: 1.10–1.10×**"));
        assert!(text.contains("Time to accuracy: not measured yet"));
    }

    #[test]
    fn no_lead_is_claimed_unless_every_pair_shows_it() {
        let mixed = Ratios::of(&[1.1, 0.95, 1.2], &[1.0, 1.0, 1.0]);
        assert_eq!(lead(mixed), "no consistent lead");
        assert_eq!(
            lead(Ratios::of(&[1.01, 1.02], &[1.0, 1.0])),
            "ahead in every pair"
        );
        assert_eq!(lead(Ratios::of(&[0.9], &[1.0])), "behind in every pair");
    }

    #[test]
    fn an_old_results_file_renders_as_to_be_re_measured() {
        let old = json!({"meta": {"date": "2026-11-26", "command": "scripts/bench --threads 2"},
                         "models": {"i3d": {"train": {"trajhost": {}, "pytorch": {}}}}});
        for render in [bench_block, readme_block] {
            let text = render(&old).unwrap();
            assert!(text.starts_with("**To be re-measured.**"), "{text}");
            assert!(!text.contains('×'), "no ratio may be shown: {text}");
        }
    }

    #[test]
    fn time_to_accuracy_shows_when_each_bar_was_first_reached() {
        let mut r = results();
        r["time_to_accuracy"] = json!({
            "meta": {"command": "scripts/bench --time-to-accuracy", "date": "2026-11-27T11:00:00+00:00", "commit": "abc",
                     "config": "configs/time-to-accuracy.ron", "samples": 4000, "minutes": 4.0, "epochs": 100},
            "backbones": {"i3d": {"accuracy_90": {"epoch": 2, "elapsed_s": 61.4, "value": 0.93},
                                  "mse_0_05": null,
                                  "epochs": [{"epoch": 1, "elapsed_s": 30.0, "val_accuracy": 0.6, "val_mse": 0.09},
                                             {"epoch": 2, "elapsed_s": 61.4, "val_accuracy": 0.93, "val_mse": 0.06}]}}});
        let text = readme_block(&r).unwrap();
        assert!(
            text.contains("| i3d | 61 s (epoch 2) | not reached | 2 | 93.0 % / 0.0600 |"),
            "{text}"
        );
    }

    #[test]
    fn splicing_replaces_only_the_marked_block_and_is_idempotent() {
        let (begin, end) = markers("speed");
        let doc = format!("# t\n\nbefore\n{begin}\nold numbers\n{end}\nafter\n");
        let once = splice(&doc, "speed", "new numbers\n").unwrap();
        assert_eq!(
            once,
            format!("# t\n\nbefore\n{begin}\nnew numbers\n{end}\nafter\n")
        );
        assert_eq!(splice(&once, "speed", "new numbers").unwrap(), once);
        assert!(splice("no markers", "speed", "x").is_err());
    }
}
