//! `trajhost plugin check`'s conformance kit, in-process: on the defaults and a small config.
trajhost_plugin_api::conformance_test!(template::build, "(channels: 8, feature_dim: 16)");
