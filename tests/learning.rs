//! The training recipe learns: a fixed small run of a real backbone must beat chance by a clear
//! margin and beat the mean-position baseline, so a regression in the heads, the losses, the
//! input normalisation or the optimiser fails CI instead of hiding behind snapshots.
//!
//! MAGVIT's `cpu` preset is the canary: before the recipe of issue 12 it sat at chance for
//! several epochs while I3D learned.

mod common;

use common::{generated, plugin, workspace};
use tch::Device;
use trajhost::train::{self, TrainConfig, TrainOptions, TrainOutcome};

#[test]
fn a_real_backbone_learns_to_classify_and_predict_in_a_few_hundred_steps() {
    tch::set_num_threads(2);
    let data = generated(&trajhost_dataset::DataConfig {
        samples: LEARNING_SAMPLES,
        checkpoint_interval: LEARNING_SAMPLES,
        ..trajhost_dataset::DataConfig::default_config()
    });

    let text = std::fs::read_to_string(workspace().join("configs/demo.ron")).unwrap();
    let mut config = TrainConfig::parse(&text, "demo.ron").unwrap();
    config.epochs = LEARNING_EPOCHS;
    config.early_stopping = None;
    let run = tempfile::tempdir().unwrap();
    let outcome = train::train(TrainOptions {
        plugin: plugin("magvit"),
        data: data.path().to_path_buf(),
        config,
        out: run.path().to_path_buf(),
        resume: None,
        overwrite: false,
        device: Device::Cpu,
        stop_after_steps: None,
        accept_plugin_change: false,
    })
    .unwrap();
    let TrainOutcome::Finished { final_metrics } = outcome else {
        panic!("the run finishes")
    };
    let m: trajhost::rundir::metrics::FinalMetrics =
        serde_json::from_slice(&std::fs::read(final_metrics).unwrap()).unwrap();
    let (accuracy, mse) = (m.test.accuracy, m.test.mse);
    let mean_position = m.baselines.mean_position_mse;
    eprintln!("learning run: test accuracy {accuracy:.3}, MSE {mse:.4} (mean-position baseline {mean_position:.4})");
    assert!(
        accuracy >= MIN_ACCURACY,
        "test accuracy {accuracy:.3} < {MIN_ACCURACY} (chance 0.25)"
    );
    assert!(
        mse <= 0.5 * mean_position,
        "test MSE {mse:.4} is not below half the mean-position baseline {mean_position:.4}"
    );
}

const LEARNING_SAMPLES: usize = 800;
const LEARNING_EPOCHS: usize = 6;
const MIN_ACCURACY: f64 = 0.6;
