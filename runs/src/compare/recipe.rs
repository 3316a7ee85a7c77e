//! Each run's training recipe — the config its newest readable checkpoint records — and which
//! of its fields differ between the runs compared: two runs' numbers compare their backbones
//! only where their recipes agree (a mirror-averaged run against a plain one compares the
//! mirror too).

use crate::config::TrainConfig;
use crate::rundir::{list_checkpoints, read_json, CHECKPOINTS};
use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The newest checkpoints tried for a recipe: a run keeps a few (`keep_checkpoints`), and a
/// folder of someone else's with thousands of damaged ones costs no more than this many reads
/// (the dashboard reads them on every poll).
const TRIED: usize = 8;

/// A config as field name → value, in name order.
pub type Recipe = BTreeMap<String, Value>;

/// The part of a checkpoint's JSON this reads.
#[derive(Deserialize)]
struct CheckpointConfig {
    config: TrainConfig,
}

/// The config of the run's newest readable `epoch-N.json` checkpoint (None without one), read
/// through [`TrainConfig`], so that only its own fields, with their own types, come out of a
/// file that may be someone else's. A newer checkpoint that cannot be read is passed over, as
/// `--resume auto` passes over it (of the newest [`TRIED`]); when none can be read, the newest
/// one's error.
pub fn read(dir: &Path) -> Result<Option<Recipe>> {
    let mut by_epoch: Vec<(u64, String)> = list_checkpoints(dir)?
        .into_iter()
        .filter_map(|f| {
            let epoch = f.name.strip_prefix("epoch-")?.strip_suffix(".json")?;
            Some((epoch.parse::<u64>().ok()?, f.name))
        })
        .collect();
    by_epoch.sort_unstable_by(|a, b| b.cmp(a));
    let mut newest_error = None;
    for (_, name) in by_epoch.into_iter().take(TRIED) {
        match read_config(&dir.join(CHECKPOINTS).join(name)) {
            Ok(Some(recipe)) => return Ok(Some(recipe)),
            Ok(None) => {}
            Err(e) => {
                newest_error.get_or_insert(e);
            }
        }
    }
    newest_error.map_or(Ok(None), Err)
}

/// One checkpoint's config as a recipe (None where the file went away).
fn read_config(path: &Path) -> Result<Option<Recipe>> {
    let Some(checkpoint) = read_json::<CheckpointConfig>(path)? else {
        return Ok(None);
    };
    let Value::Object(fields) = serde_json::to_value(checkpoint.config)
        .with_context(|| format!("the config in {}", path.display()))?
    else {
        unreachable!("a struct serialises to an object");
    };
    Ok(Some(fields.into_iter().collect()))
}

/// The fields whose values are not the same in every recipe (a field a recipe lacks counts as
/// differing), and the fields every recipe has with one value.
pub fn compare(recipes: &[&Recipe]) -> (Vec<String>, Recipe) {
    let mut differing = Vec::new();
    let mut shared = Recipe::new();
    let names: std::collections::BTreeSet<&String> =
        recipes.iter().flat_map(|r| r.keys()).collect();
    for name in names {
        let first = recipes[0].get(name);
        if first.is_some() && recipes.iter().all(|r| r.get(name) == first) {
            shared.insert(name.clone(), first.cloned().unwrap_or(Value::Null));
        } else {
            differing.push(name.clone());
        }
    }
    (differing, shared)
}

/// A value as a config shows it: strings bare, `None` for an absent option.
pub fn shown(value: Option<&Value>) -> String {
    match value {
        None => "—".into(),
        Some(Value::Null) => "None".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recipe(pairs: &[(&str, Value)]) -> Recipe {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn fields_that_differ_are_told_from_those_all_share() {
        let a = recipe(&[("lr", json!(0.002)), ("mirror_average", json!(true))]);
        let b = recipe(&[("lr", json!(0.002)), ("mirror_average", json!(false))]);
        let c = recipe(&[("lr", json!(0.002))]);
        let (differing, shared) = compare(&[&a, &b]);
        assert_eq!(differing, ["mirror_average"]);
        assert_eq!(shared, recipe(&[("lr", json!(0.002))]));
        assert_eq!(compare(&[&a, &c]).0, ["mirror_average"], "one lacks it");
        assert_eq!(
            compare(&[&c, &a]).0,
            ["mirror_average"],
            "the first lacks it"
        );
        assert!(compare(&[&a, &a]).0.is_empty());
        assert_eq!(shown(Some(&json!("fovea"))), "fovea");
        assert_eq!(shown(Some(&Value::Null)), "None");
        assert_eq!(shown(Some(&json!(15.0))), "15.0");
        assert_eq!(shown(None), "—");
    }

    #[test]
    fn the_newest_readable_checkpoints_config_is_the_recipe() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None, "no checkpoints yet");
        let checkpoints = dir.path().join(CHECKPOINTS);
        std::fs::create_dir(&checkpoints).unwrap();
        let config = |lr: f64| {
            let validation = include_str!("../../../configs/validation.ron");
            let ron = validation.replace("lr: 1e-3", &format!("lr: {lr}"));
            serde_json::to_value(TrainConfig::parse(&ron, "v.ron").unwrap()).unwrap()
        };
        let write = |name: &str, body: Value| {
            std::fs::write(checkpoints.join(name), body.to_string()).unwrap()
        };
        write(
            "epoch-0009.json",
            json!({"config": config(0.001), "epoch": 9}),
        );
        write(
            "epoch-0010.json",
            json!({"config": config(0.002), "epoch": 10}),
        );
        write("best.json", json!({"config": config(0.003)}));
        let recipe = read(dir.path()).unwrap().unwrap();
        assert_eq!(recipe["lr"], json!(0.002));
        assert!(recipe.contains_key("mirror_average"));
        // A newer checkpoint whose config has a field of the wrong type, or lacks its fields,
        // is passed over; when no checkpoint reads, the error names the newest (compare then
        // shows the recipe as unknown).
        write("epoch-0011.json", json!({"config": {"lr": "<script>"}}));
        write("epoch-0012.json", json!({"epoch": 12}));
        assert_eq!(read(dir.path()).unwrap().unwrap()["lr"], json!(0.002));
        for older in ["epoch-0009.json", "epoch-0010.json"] {
            write(older, json!({"config": {}}));
        }
        let err = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(err.contains("epoch-0012.json"), "{err}");
        // Only the newest few are tried: a readable checkpoint behind eight damaged ones is not
        // reached.
        write("epoch-0001.json", json!({"config": config(0.001)}));
        for epoch in 2..=8 {
            write(&format!("epoch-{epoch:04}.json"), json!({"config": {}}));
        }
        for newest in ["epoch-0012.json", "epoch-0011.json", "epoch-0010.json"] {
            std::fs::remove_file(checkpoints.join(newest)).unwrap();
        }
        assert!(
            read(dir.path()).is_err(),
            "eight damaged ones lie before it"
        );
        std::fs::remove_file(checkpoints.join("epoch-0009.json")).unwrap();
        let recipe = read(dir.path()).unwrap().unwrap();
        assert_eq!(recipe["lr"], json!(0.001), "the eighth newest is tried");
    }
}
