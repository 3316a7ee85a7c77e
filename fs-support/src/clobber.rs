//! One rule for every output flag: a command never writes over one of its own inputs, into a
//! folder it reads (a dataset, a run folder), or twice to the same file.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A path a command reads or writes, with the flag or argument that named it.
pub type Named<'a> = (&'a str, &'a Path);

/// Refuses, naming both, an output that is an input, lies inside an input folder, or is another
/// output. Character devices and FIFOs (`/dev/null`, a pipe) are written in place, never
/// replaced, so they may appear more than once.
pub fn refuse_outputs_over_inputs(outputs: &[Named], inputs: &[Named]) -> Result<()> {
    let inputs: Vec<(&str, &Path, PathBuf)> = inputs
        .iter()
        .filter_map(|&(flag, path)| real_location(path).map(|real| (flag, path, real)))
        .collect();
    let mut earlier: Vec<(&str, &Path, PathBuf)> = Vec::new();
    for &(flag, path) in outputs {
        if matches!(crate::target(path), Ok(crate::Target::Stream)) {
            continue;
        }
        let Some(real) = real_location(path) else {
            continue;
        };
        let shown = path.display();
        for (in_flag, in_path, in_real) in &inputs {
            let what = if &real == in_real {
                "is"
            } else if real.starts_with(in_real) {
                "is inside"
            } else {
                continue;
            };
            bail!(
                "{flag} {shown} {what} {in_flag} {}, which this command reads: writing there would destroy its input; choose another path",
                in_path.display()
            );
        }
        if let Some((other, other_path, _)) = earlier.iter().find(|(_, _, r)| *r == real) {
            bail!(
                "{flag} {shown} and {other} {} are the same file: the second write would replace the first; give each its own path",
                other_path.display()
            );
        }
        earlier.push((flag, path, real));
    }
    Ok(())
}

/// Where writing `path` lands: its real path (links resolved) when it exists, else the real
/// path of its deepest existing folder with the rest of it appended (`..` taken lexically; a
/// writer that creates folders makes them there). None when nothing of it can be resolved.
fn real_location(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut rest = Vec::new();
    for existing in absolute.ancestors() {
        if let Ok(mut real) = std::fs::canonicalize(existing) {
            for part in rest.iter().rev() {
                match part {
                    std::path::Component::ParentDir => {
                        real.pop();
                    }
                    std::path::Component::Normal(name) => real.push(name),
                    _ => {}
                }
            }
            return Some(real);
        }
        rest.extend(existing.components().next_back());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_on_an_input_inside_an_input_folder_or_on_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("manifest.json"), "{}").unwrap();
        let clip = dir.path().join("clip.gif");
        std::fs::write(&clip, "GIF").unwrap();
        let link = dir.path().join("link.gif");
        std::os::unix::fs::symlink(&clip, &link).unwrap();
        let inputs = [("--data", data.as_path()), ("VIDEO", clip.as_path())];
        let refused = |outputs: &[Named]| {
            refuse_outputs_over_inputs(outputs, &inputs)
                .unwrap_err()
                .to_string()
        };
        let manifest = data.join("manifest.json");
        let err = refused(&[("--out", &manifest)]);
        assert!(
            err.contains("--out") && err.contains("is inside --data"),
            "{err}"
        );
        let new_inside = data.join("sub/../new.json");
        assert!(refused(&[("--out", &new_inside)]).contains("is inside --data"));
        assert!(refused(&[("--overlay", &clip)]).contains("is VIDEO"));
        assert!(refused(&[("--overlay", &link)]).contains("is VIDEO"));
        let out = dir.path().join("x.json");
        let err = refused(&[("--out", &out), ("--predictions", &out)]);
        assert!(
            err.contains("--predictions") && err.contains("same file"),
            "{err}"
        );

        let other = dir.path().join("y.json");
        let null = Path::new("/dev/null");
        refuse_outputs_over_inputs(
            &[
                ("--out", &out),
                ("--predictions", &other),
                ("--a", null),
                ("--b", null),
            ],
            &inputs,
        )
        .unwrap();
    }
}
