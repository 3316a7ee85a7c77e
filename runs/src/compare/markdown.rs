//! The comparison as Markdown: the results table, the plan's checklist, the curves, the
//! confusion matrices, the gate's decisions and the folders that could not be read.
//!
//! Every string read from a run folder (names, plugins, phases, classes, the gate's reasons,
//! the robustness file's shifts, descriptions and data) may come from someone else: it goes in
//! through [`text`] or [`code`], so it shows as itself and cannot add links, images, HTML or
//! table cells.

use super::recipe::{self, Recipe};
use super::report::{Checked, Criterion, Report, RunReport};
use crate::format::{bytes, percent1, seconds, thousands};
use crate::rundir::metrics::FinalMetrics;
use crate::rundir::progress::RunState;
use crate::rundir::robustness::Robustness;
use std::fmt::Write as _;

/// `s` as Markdown text that renders as itself: the characters that could open a link or an
/// image (`[`), code, emphasis, a heading or a table cell are backslash-escaped, and `<` where
/// it could open HTML or an autolink (before a letter, `/`, `!` or `?`); line breaks become
/// spaces.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let opens_html = c == '<'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(*n));
        match c {
            '\\' | '`' | '*' | '~' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' if opens_html => out.push_str("\\<"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a Markdown code span in running text (not in a table, where `|` would end the cell):
/// fenced by more backticks than any run inside it (CommonMark), line breaks as spaces.
fn code(s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest_run = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

pub fn render(report: &Report) -> String {
    let mut md = String::from("# Backbone comparison\n\n");
    results_table(&mut md, report);
    seed_table(&mut md, report);
    recipes(&mut md, report);
    checklist(&mut md, report);
    if let Some(png) = &report.curves_png {
        md += "\n## Training curves\n\n";
        let _ = writeln!(md, "![validation curves of every run]({png})");
    }
    confusion_matrices(&mut md, report);
    gate_decisions(&mut md, report);
    robustness(&mut md, report);
    unreadable(&mut md, report);
    md
}

/// One row per run: its latest finished phase's numbers next to the baselines.
fn results_table(md: &mut String, report: &Report) {
    let classes = &report.classes;
    let _ = writeln!(
        md,
        "{} runs. Accuracy and MSE are on the test split after each run's latest finished phase \
         (`full` when it ran, else `validation`); MSE is the prediction error of the ball's \
         future 3-D position. Baselines: predicting the training set's mean position, \
         extrapolating the true last two positions at constant velocity, and the curve-fit \
         limit (the true class's curve fitted to the true input positions: about as low as \
         a model can get).\n",
        report.runs.len()
    );
    *md += "| run | plugin | phase | epochs | accuracy |";
    for c in classes {
        let _ = write!(md, " {} |", text(c));
    }
    *md += " MSE | mean-position MSE | constant-velocity MSE | curve-fit limit MSE | training time | videos/s | parameters | checkpoint |\n";
    *md += &"|---".repeat(13 + classes.len());
    *md += "|\n";
    for run in &report.runs {
        let _ = write!(md, "| {} |", text(&run.name));
        match &run.metrics {
            Some(m) => result_cells(md, m, classes.len()),
            None => pending_cells(md, run, classes.len()),
        }
    }
    for run in &report.runs {
        if let Some(d) = run.metrics.as_ref().and_then(|m| m.data.as_ref()) {
            if d.procedural {
                let _ = writeln!(
                    md,
                    "\n{} trained on data rendered on the fly ({}): {} distinct training videos.",
                    text(&run.name),
                    code(&d.source),
                    thousands(d.training_videos as i64)
                );
            }
        }
    }
    if let Some(chance) = report
        .runs
        .iter()
        .find_map(|r| r.metrics.as_ref().map(|m| m.baselines.chance_accuracy))
    {
        let _ = writeln!(md, "\nChance accuracy: {}.", percent1(chance));
    }
    *md += "\nIn brackets, the accuracy's 95 % interval (Wilson) over the run's test videos: \
            two runs whose intervals overlap may differ by chance. The seed matters as much: to \
            rank backbones, give the sweep `seeds: [..]` (the \"Over seeds\" section pools them).\n";
}

/// The runs' training configs: the fields that differ as a table, one row per run, then the
/// fields every run shares; nothing when no run has a checkpoint to read one from.
fn recipes(md: &mut String, report: &Report) {
    let known: Vec<&Recipe> = report
        .runs
        .iter()
        .filter_map(|r| r.recipe.as_ref())
        .collect();
    if known.is_empty() {
        return;
    }
    let (differing, shared) = recipe::compare(&known);
    let unknown: Vec<String> = report
        .runs
        .iter()
        .filter(|r| r.recipe.is_none())
        .map(|r| text(&r.name))
        .collect();
    *md += "\n## Recipes\n\n";
    *md += "Each run's training config, as its newest checkpoint records it.";
    if differing.is_empty() {
        *md += match (known.len(), unknown.is_empty()) {
            (1, _) => " The one run with a readable checkpoint trained with",
            (_, true) => " Every run trained with the same one",
            (_, false) => " Every run with a readable checkpoint trained with the same one",
        };
    } else {
        let _ = writeln!(
            md,
            " The runs differ in {} of its fields: their numbers compare these as well as the \
             backbones.\n",
            differing.len()
        );
        *md += "| run |";
        for field in &differing {
            let _ = write!(md, " {} |", text(field));
        }
        let _ = writeln!(md, "\n{}|", "|---".repeat(differing.len() + 1));
        for run in &report.runs {
            let _ = write!(md, "| {} |", text(&run.name));
            for field in &differing {
                let value = run.recipe.as_ref().map(|r| r.get(field));
                let _ = write!(md, " {} |", text(&recipe::shown(value.flatten())));
            }
            *md += "\n";
        }
        *md += "\nThe same in every run";
    }
    let fields: Vec<String> = shared
        .iter()
        .map(|(name, value)| format!("{} {}", code(name), text(&recipe::shown(Some(value)))))
        .collect();
    let _ = writeln!(md, ": {}.", fields.join(", "));
    if !unknown.is_empty() {
        let _ = writeln!(
            md,
            "\nNo readable checkpoint to read a recipe from: {}.",
            unknown.join(", ")
        );
    }
}

/// Setups run with several seeds: mean ± sd [95 % interval], then which differences hold.
fn seed_table(md: &mut String, report: &Report) {
    if report.seed_groups.is_empty() {
        return;
    }
    *md += "\n## Over seeds\n\nRuns that differ only in their seed, pooled: mean ± standard \
            deviation over the seeds, in brackets the 95 % interval of the mean (Student t).\n\n";
    *md += "| setup | plugin | phase | seeds | accuracy | MSE |\n|---|---|---|---|---|---|\n";
    for g in &report.seed_groups {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1}% ± {:.1} [{:.1}–{:.1}] | {:.4} ± {:.4} [{:.4}–{:.4}] |",
            text(&super::seeds::label(g)),
            text(&g.plugin),
            text(&g.phase),
            g.seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * g.accuracy.mean,
            100.0 * g.accuracy.sd,
            100.0 * g.accuracy.low,
            100.0 * g.accuracy.high,
            g.mse.mean,
            g.mse.sd,
            g.mse.low,
            g.mse.high
        );
    }
    if report.seed_differences.is_empty() {
        return;
    }
    *md += "\nDifferences of the means (first − second) with their 95 % interval (Welch): \
            **supported** when the interval leaves out zero, else these seeds cannot say which \
            is better.\n\n";
    for d in &report.seed_differences {
        let (scale, unit, digits) = match d.metric.as_str() {
            "accuracy" => (100.0, " points", 1),
            _ => (1.0, "", 4),
        };
        let _ = writeln!(
            md,
            "- {} − {}, {}: {:+.*}{unit} [{:+.*}, {:+.*}]: {}",
            text(&d.first),
            text(&d.second),
            text(&d.metric),
            digits,
            scale * d.difference,
            digits,
            scale * d.low,
            digits,
            scale * d.high,
            if d.supported {
                "**supported**"
            } else {
                "not supported by these seeds"
            }
        );
    }
}

/// `99.4% [98.7–99.7]`: the accuracy over `n` videos and its 95 % Wilson score interval.
fn accuracy_with_interval(accuracy: f64, n: u64) -> String {
    match wilson_interval(accuracy, n) {
        Some((low, high)) => format!(
            "{} [{:.1}–{:.1}]",
            percent1(accuracy),
            100.0 * low,
            100.0 * high
        ),
        None => percent1(accuracy),
    }
}

/// The 95 % Wilson score interval of a proportion `p` seen over `n` trials (None for none):
/// unlike p ± 1.96·√(p(1−p)/n) it stays inside [0, 1] and is not empty at 100 %.
fn wilson_interval(p: f64, n: u64) -> Option<(f64, f64)> {
    if n == 0 || !p.is_finite() {
        return None;
    }
    let (n, z) = (n as f64, 1.959_964);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

fn result_cells(md: &mut String, m: &FinalMetrics, classes: usize) {
    let _ = write!(
        md,
        " {} | {} | {}{} | {} |",
        text(&m.plugin),
        text(&m.phase),
        m.epochs_trained,
        m.stop_reason.table_note(),
        accuracy_with_interval(m.test.accuracy, m.test.samples)
    );
    for a in m.test.per_class_accuracy.iter().take(classes) {
        let _ = write!(md, " {} |", percent1(*a));
    }
    let b = &m.baselines;
    let _ = writeln!(
        md,
        " {:.4} | {:.4} | {:.4} | {} | {} | {:.1} | {} | {} |",
        m.test.mse,
        b.mean_position_mse,
        b.constant_velocity_mse,
        b.curve_fit_mse
            .map_or("—".to_string(), |limit| format!("{limit:.5}")),
        seconds(m.wall_seconds),
        m.train_videos_per_second,
        thousands(m.parameter_count),
        bytes(m.checkpoint_bytes)
    );
}

/// A run without finished results: where it stands instead.
fn pending_cells(md: &mut String, run: &RunReport, classes: usize) {
    let state = match run.state {
        RunState::Waiting => "not started",
        other => other.as_str(),
    };
    let _ = write!(
        md,
        " — | {state}, no results yet | {} recorded | — |",
        run.epochs_recorded
    );
    *md += &" — |".repeat(classes + 8);
    *md += "\n";
}

fn checklist(md: &mut String, report: &Report) {
    *md += "\n## Success checklist (the original plan)\n\n";
    *md +=
        "Measured on each run's test split after the validation phase and after the full run.\n\n";
    *md += "| run |";
    let names: Vec<&str> = report
        .runs
        .first()
        .map(|r| r.checklist.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    for n in &names {
        let _ = write!(md, " {n} |");
    }
    *md += " gate |\n";
    *md += &"|---".repeat(names.len() + 2);
    *md += "|\n";
    for run in &report.runs {
        let _ = write!(md, "| {} |", text(&run.name));
        for c in &run.checklist {
            let _ = write!(md, " {} |", mark(c));
        }
        let gate = match &run.gate {
            Some(g) if g.passed => "passed",
            Some(_) => "stopped",
            None => "—",
        };
        let _ = writeln!(md, " {gate} |");
    }
}

fn mark(c: &Criterion) -> String {
    let show = |v: f64| match c.checked {
        Checked::Accuracy => percent1(v),
        Checked::Mse => format!("{v:.4}"),
    };
    match (c.passed, c.measured) {
        (Some(true), Some(v)) => format!("✅ {}", show(v)),
        (Some(false), Some(v)) => format!("❌ {}", show(v)),
        _ => "— not run".into(),
    }
}

fn confusion_matrices(md: &mut String, report: &Report) {
    let classes = &report.classes;
    *md += "\n## Confusion matrices (test split; rows: true class, columns: predicted)\n";
    for run in &report.runs {
        let Some(m) = &run.metrics else { continue };
        let _ = writeln!(md, "\n### {}\n", text(&run.name));
        *md += "| true \\ predicted |";
        for c in classes {
            let _ = write!(md, " {} |", text(c));
        }
        *md += "\n";
        *md += &"|---".repeat(classes.len() + 1);
        *md += "|\n";
        for (class, row) in classes.iter().zip(&m.test.confusion) {
            let _ = write!(md, "| {} |", text(class));
            for n in row.iter().take(classes.len()) {
                let _ = write!(md, " {n} |");
            }
            *md += "\n";
        }
    }
}

fn gate_decisions(md: &mut String, report: &Report) {
    if report.runs.iter().all(|r| r.gate.is_none()) {
        return;
    }
    *md += "\n## Gate decisions (validation → full run)\n";
    for run in &report.runs {
        let Some(g) = &run.gate else { continue };
        let _ = writeln!(
            md,
            "\n### {}: {}\n",
            text(&run.name),
            if g.passed {
                "passed, continues to the full run"
            } else {
                "stopped after validation"
            }
        );
        for r in &g.reasons {
            let _ = writeln!(md, "- {}", text(r));
        }
    }
}

/// Which data the runs' sets shift: one source, or each run's where they differ (then the
/// columns do not compare like for like).
fn drawn_from(runs: &[(&str, &Robustness)]) -> String {
    let mut sources: Vec<Option<&str>> = runs.iter().map(|(_, r)| r.data.as_deref()).collect();
    sources.dedup();
    match sources.as_slice() {
        [None] => String::new(), // files from before the field
        [Some(one)] => format!(", drawn from {}", code(one)),
        _ => {
            let each: Vec<String> = runs
                .iter()
                .map(|(name, r)| {
                    format!("{}: {}", text(name), code(r.data.as_deref().unwrap_or("?")))
                })
                .collect();
            format!(
                " — **the runs' sets come from different data**, so a column is not like for like ({})",
                each.join(", ")
            )
        }
    }
}

/// Accuracy and MSE on each shifted test set (`eval --shifts`), for the runs that have them:
/// the shifts of the training look, then the held-out styles (the transfer test) apart.
fn robustness(md: &mut String, report: &Report) {
    let runs: Vec<(&str, &Robustness)> = report
        .runs
        .iter()
        .filter_map(|r| r.robustness.as_ref().map(|b| (r.name.as_str(), b)))
        .collect();
    let Some((_, first)) = runs.first() else {
        return;
    };
    for held_out in [false, true] {
        let columns: Vec<&str> = first
            .rows
            .iter()
            .filter(|r| r.held_out == held_out)
            .map(|r| r.shift.as_str())
            .collect();
        if columns.is_empty() {
            continue;
        }
        *md += match held_out {
            false => "\n## Robustness (accuracy / MSE on shifted test sets)\n\n",
            true => "\n## Held-out styles (accuracy / MSE on looks no training range covers)\n\n",
        };
        let described: Vec<String> = first
            .rows
            .iter()
            .filter(|r| r.held_out == held_out && r.shift != "none")
            .map(|r| format!("{} = {}", code(&r.shift), text(&r.description)))
            .collect();
        let _ = writeln!(
            md,
            "Each set has {} new videos (`trajhost eval --shifts`){}{}. {}.\n",
            first.samples,
            drawn_from(&runs),
            if held_out {
                ""
            } else {
                "; `none` is the training distribution"
            },
            described.join("; ")
        );
        *md += "| run |";
        for column in &columns {
            let _ = write!(md, " {} |", text(column));
        }
        *md += "\n";
        *md += &"|---".repeat(columns.len() + 1);
        *md += "|\n";
        for (name, r) in &runs {
            let how = if r.mirror_averaged {
                " (mirror-averaged)"
            } else {
                ""
            };
            let _ = write!(md, "| {}{how} |", text(name));
            for column in &columns {
                match r.rows.iter().find(|row| row.shift == *column) {
                    Some(row) => {
                        let _ = write!(md, " {} / {:.4} |", percent1(row.accuracy), row.mse);
                    }
                    None => *md += " - |",
                }
            }
            *md += "\n";
        }
    }
}

fn unreadable(md: &mut String, report: &Report) {
    if report.unreadable.is_empty() {
        return;
    }
    *md += "\n## Unreadable run folders\n\n";
    *md += "Left out of the tables above:\n\n";
    for u in &report.unreadable {
        let _ = writeln!(
            md,
            "- {} ({}): {}",
            text(&u.name),
            code(&u.path.display().to_string()),
            text(&u.reason)
        );
    }
}

#[cfg(test)]
mod interval_tests {
    use super::wilson_interval;

    /// Reference values (Wilson 1927; e.g. statsmodels' proportion_confint(method="wilson")).
    #[test]
    fn wilson_intervals_match_the_textbook() {
        let (low, high) = wilson_interval(0.5, 100).unwrap();
        assert!(
            (low - 0.4038).abs() < 1e-4 && (high - 0.5962).abs() < 1e-4,
            "{low} {high}"
        );
        let (low, high) = wilson_interval(1.0, 1013).unwrap();
        assert!((low - 0.99622).abs() < 1e-4 && high == 1.0, "{low} {high}");
        assert_eq!(wilson_interval(0.5, 0), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(data: Option<&str>) -> Robustness {
        Robustness {
            run: "r".into(),
            checkpoint: "c".into(),
            epoch: 1,
            samples: 8,
            seed: 0,
            data: data.map(Into::into),
            mirror_averaged: false,
            fovea_passes: None,
            rows: vec![],
        }
    }

    /// Every character of `markup` in `escaped` is escaped: an odd run of backslashes before it.
    fn all_escaped(escaped: &str, markup: &[char]) -> bool {
        let chars: Vec<char> = escaped.chars().collect();
        chars.iter().enumerate().all(|(i, c)| {
            let backslashes = chars[..i].iter().rev().take_while(|&&b| b == '\\').count();
            !markup.contains(c) || backslashes % 2 == 1
        })
    }

    #[test]
    fn strings_from_run_folders_cannot_add_markup() {
        let hostile = "a|b ![x](http://e/p.png) <img src=x> `c` *d* ~e~ \\| # h\n- item";
        let escaped = text(hostile);
        assert!(!escaped.contains('\n'), "{escaped}");
        assert!(
            all_escaped(&escaped, &['|', '[', ']', '<', '`', '*', '~', '#']),
            "{escaped}"
        );
        assert_eq!(text("magvit-seed7 (lens 35°)"), "magvit-seed7 (lens 35°)");
        assert_eq!(
            text("accuracy 84.0% > 70.0%, MSE < 0.1"),
            "accuracy 84.0% > 70.0%, MSE < 0.1"
        );

        assert_eq!(code("/data/a"), "`/data/a`");
        assert_eq!(code("a`b|c"), "``a`b|c``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("l1\nl2"), "`l1 l2`");
        let mixed = drawn_from(&[("x|y", &table(Some("/d/a"))), ("z", &table(Some("/d/b`")))]);
        assert!(mixed.contains("x\\|y: `/d/a`, z: `` /d/b` ``"), "{mixed}");
    }

    fn run(name: &str, recipe: Option<Recipe>) -> RunReport {
        RunReport {
            name: name.into(),
            state: RunState::Finished,
            metrics: None,
            checklist: vec![],
            gate: None,
            robustness: None,
            epochs_recorded: 0,
            recipe,
        }
    }

    fn report(runs: Vec<RunReport>) -> Report {
        Report {
            classes: vec![],
            checklist: Default::default(),
            runs,
            unreadable: vec![],
            curves_png: None,
            seed_groups: vec![],
            seed_differences: vec![],
        }
    }

    /// A comparison says where the runs' recipes differ, run by run, and what they share; the
    /// values come from run folders, so they cannot add markup either.
    #[test]
    fn recipes_that_differ_are_shown_run_by_run() {
        let recipe = |mirror: bool, backbone: &str| -> Recipe {
            [
                ("lr", serde_json::json!(0.002)),
                ("mirror_average", serde_json::json!(mirror)),
                ("backbone", serde_json::json!(backbone)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        };
        let mut md = String::new();
        recipes(
            &mut md,
            &report(vec![
                run("a", Some(recipe(true, "(preset: \"cpu\")"))),
                run("b", Some(recipe(false, "(preset: \"cpu\")"))),
                run("c", None),
            ]),
        );
        assert!(md.contains("differ in 1 of its fields"), "{md}");
        assert!(md.contains("| run | mirror_average |"), "{md}");
        assert!(
            md.contains("| a | true |\n| b | false |\n| c | — |"),
            "{md}"
        );
        assert!(md.contains("The same in every run: `backbone` (preset: \"cpu\"), `lr` 0.002."));
        assert!(
            md.contains("No readable checkpoint to read a recipe from: c."),
            "{md}"
        );

        let mut md = String::new();
        let hostile = "|![x](http://e/p.png)";
        recipes(
            &mut md,
            &report(vec![
                run("a", Some(recipe(true, hostile))),
                run("b", Some(recipe(true, hostile))),
            ]),
        );
        assert!(
            md.contains("Every run trained with the same one: `backbone` \\|!\\[x\\]"),
            "{md}"
        );
        assert!(!md.contains("| run |"), "{md}");

        let mut md = String::new();
        let mirrored = Some(recipe(true, "(preset: \"cpu\")"));
        recipes(&mut md, &report(vec![run("a", mirrored), run("b", None)]));
        assert!(
            md.contains("The one run with a readable checkpoint trained with: `backbone`"),
            "{md}"
        );

        let mut md = String::new();
        recipes(&mut md, &report(vec![run("a", None)]));
        assert_eq!(md, "", "nothing without a recipe to show");
    }

    #[test]
    fn shifted_sets_of_different_data_are_said_not_to_compare() {
        let (a, b) = (table(Some("/d/a")), table(Some("/d/b")));
        assert_eq!(drawn_from(&[("x", &a), ("y", &a)]), ", drawn from `/d/a`");
        let old = table(None);
        assert_eq!(drawn_from(&[("x", &old), ("y", &old)]), "");
        let mixed = drawn_from(&[("x", &a), ("y", &b), ("z", &old)]);
        assert!(mixed.contains("different data"), "{mixed}");
        assert!(mixed.contains("x: `/d/a`, y: `/d/b`, z: `?`"), "{mixed}");
    }
}
