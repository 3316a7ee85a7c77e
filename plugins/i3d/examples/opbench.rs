use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};
use trajhost_plugin_api::layers::conv3d;
fn time(name: &str, f: &mut dyn FnMut()) {
    f();
    let s = Instant::now();
    for _ in 0..3 {
        f();
    }
    println!(
        "{name:50} {:.1} ms",
        s.elapsed().as_secs_f64() * 1000.0 / 3.0
    );
}
fn main() {
    tch::set_num_threads(std::env::var("NT").map(|s| s.parse().unwrap()).unwrap_or(2));
    let vs = nn::VarStore::new(Device::Cpu);
    let r = vs.root();
    let h4 = Tensor::rand([32, 24, 32, 4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let c1 = conv3d(&r / "d", 24, 16, [1, 1, 1], [1, 1, 1], [0, 0, 0], false);
    let g = Tensor::rand([32, 16, 32, 4, 4], (Kind::Float, Device::Cpu));
    time("conv 24->16 1x1x1 @4 fwd", &mut || {
        let _ = h4.apply(&c1);
    });
    time("mul-sum-backward only", &mut || {
        h4.g_mul(&h4).sum(Kind::Float).backward();
    });
    time("conv 24->16 1x1x1 @4 fwd+bwd sum", &mut || {
        h4.apply(&c1).sum(Kind::Float).backward();
    });
    time("conv 24->16 1x1x1 @4 fwd+bwd dense", &mut || {
        h4.apply(&c1).g_mul(&g).sum(Kind::Float).backward();
    });
    let h4n = h4.detach();
    time(
        "conv 24->16 1x1x1 @4 fwd+bwd dense noinputgrad",
        &mut || {
            h4n.apply(&c1).g_mul(&g).sum(Kind::Float).backward();
        },
    );
    let h2 = h4
        .detach()
        .reshape([32, 24, 32 * 4, 4])
        .set_requires_grad(true);
    let c2 = nn::conv2d(&r / "e", 24, 16, 1, Default::default());
    let g2 = g.reshape([32, 16, 128, 4]);
    time("conv2d 1x1 same fwd+bwd dense", &mut || {
        h2.apply(&c2).g_mul(&g2).sum(Kind::Float).backward();
    });
    let h5 = h4
        .detach()
        .permute([0, 2, 3, 4, 1])
        .contiguous()
        .set_requires_grad(true);
    let l = nn::linear(&r / "l", 24, 16, Default::default());
    let g5 = g.permute([0, 2, 3, 4, 1]).contiguous();
    time("linear same fwd+bwd dense", &mut || {
        h5.apply(&l).g_mul(&g5).sum(Kind::Float).backward();
    });
    let h8b = Tensor::rand([32, 8, 32, 8, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let c3 = conv3d(&r / "f", 8, 24, [3, 3, 3], [1, 1, 1], [1, 1, 1], false);
    let g3 = Tensor::rand([32, 24, 32, 8, 8], (Kind::Float, Device::Cpu));
    time("conv 8->24 3x3x3 @8 fwd+bwd dense", &mut || {
        h8b.apply(&c3).g_mul(&g3).sum(Kind::Float).backward();
    });
    let h8d = h8b
        .detach()
        .reshape([32, 8, 32 * 8, 8])
        .set_requires_grad(true);
    let c4 = nn::conv2d(
        &r / "g",
        8,
        24,
        3,
        nn::ConvConfig {
            padding: 1,
            ..Default::default()
        },
    );
    let g4 = g3.reshape([32, 24, 256, 8]);
    time("conv2d 8->24 3x3 similar size fwd+bwd dense", &mut || {
        h8d.apply(&c4).g_mul(&g4).sum(Kind::Float).backward();
    });
}
