//! The conformance kit on in-process backbones, each with one fault: the verdicts, and the
//! report. Its own test binary: the kit seeds libtorch's global generator (see `GENERATOR`).

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};
use trajhost_plugin_api::devkit::conformance::{check_backbone, Report, Verdict};
use trajhost_plugin_api::{devkit::assert_conformance, Backbone, BackboneError};

/// Per-frame mean colour through one linear layer, with the fault its config names.
struct Probe {
    vs: VarStore,
    proj: nn::Linear,
    hidden: Tensor,
    fault: String,
}

impl Probe {
    fn build(config: &str, device: Device) -> Result<Self, BackboneError> {
        let vs = VarStore::new(device);
        let proj = nn::linear(vs.root() / "proj", 3, 4, Default::default());
        let hidden = Tensor::ones([1], (Kind::Float, device)).set_requires_grad(true);
        Ok(Probe {
            vs,
            proj,
            hidden,
            fault: config.to_string(),
        })
    }
}

impl Backbone for Probe {
    fn feature_dim(&self) -> i64 {
        4
    }
    fn forward(&mut self, video: &Tensor, _train: bool) -> Result<Tensor, BackboneError> {
        let colour = video.f_mean_dim([3, 4].as_slice(), false, Kind::Float)?;
        let out = self.proj.forward(&colour);
        Ok(match self.fault.as_str() {
            "hidden" => out * &self.hidden,
            "flat" => out.mean_dim(1, false, Kind::Float),
            "panic" => panic!("probe panics"),
            _ => out,
        })
    }
    fn var_store(&self) -> &VarStore {
        &self.vs
    }
}

fn verdicts(report: &Report) -> Vec<(&str, &str)> {
    report
        .outcomes
        .iter()
        .map(|o| {
            let kind = match o.verdict {
                Verdict::Passed(_) => "ok",
                Verdict::Failed(_) => "FAIL",
                Verdict::Skipped(_) => "skip",
            };
            (o.name, kind)
        })
        .collect()
}

#[test]
fn a_well_behaved_backbone_passes_all_nine_checks() {
    let report = check_backbone("probe", Probe::build, "");
    assert!(report.passed(), "{}", report.render());
    assert_eq!(report.outcomes.len(), 9);
    assert!(report.render().ends_with("all 9 checks passed\n"));
    assert_conformance("probe", Probe::build, "");
}

#[test]
fn a_trainable_tensor_outside_the_store_fails_only_its_check() {
    let report = check_backbone("probe", Probe::build, "hidden");
    let failed: Vec<_> = verdicts(&report)
        .into_iter()
        .filter(|(_, v)| *v != "ok")
        .collect();
    assert_eq!(failed, [("hidden parameters", "FAIL")]);
}

#[test]
fn a_wrong_output_shape_is_reported_once_and_the_rest_skipped() {
    let report = check_backbone("probe", Probe::build, "flat");
    let rendered = report.render();
    assert!(!report.passed());
    assert_eq!(rendered.matches("returned features of shape").count(), 1);
    assert_eq!(verdicts(&report)[1], ("output shape", "FAIL"));
    assert!(verdicts(&report)[2..].iter().all(|(_, v)| *v == "skip"));
    assert!(
        rendered.ends_with("1 of 9 checks failed, 7 skipped\n"),
        "{rendered}"
    );
}

#[test]
fn a_panic_is_a_failed_check_not_a_crash() {
    let report = check_backbone("probe", Probe::build, "panic");
    assert_eq!(verdicts(&report)[1], ("output shape", "FAIL"));
    assert!(
        report.render().contains("probe panics"),
        "{}",
        report.render()
    );
}

// What a plugin's tests/conformance.rs holds.
trajhost_plugin_api::conformance_test!(Probe::build);
