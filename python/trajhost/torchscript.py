"""PyTorch video networks as trajhost backbones, through the `torchscript` plugin.

    import trajhost.torchscript as ts
    ts.save(ts.video_backbone("r3d_18"), "r3d18.pt")     # torchvision, random init
    ts.save(my_module, "mine.pt", feature_dim=64)        # any (B, T, C, H, W) -> (B, T, 64) module
    # trajhost train --plugin torchscript --backbone '(module: "r3d18.pt")' --data ... --out ...

Any `nn.Module` mapping `(B, T, C, H, W)` standardised pixels to `(B, T, D)` works: `save` adds
the `feature_dim()` method the plugin asks for and turns buffers (BatchNorm's running
statistics) into parameters that need no gradient, because TorchScript lists only parameters to
the plugin; that way trajhost checkpoints them and a resumed run continues exactly.
"""

import torch
import torch.nn as nn


class PerFrame(nn.Module):
    """A clip network's convolutional body `(B, C, T, H, W) -> (B, D, T', H', W')` as a
    backbone: features averaged over space, each of the T frames taking its time step's
    (step `t * T' // T`, as the built-ins restore time)."""

    def __init__(self, body: nn.Module, dim: int):
        super().__init__()
        self.body = body
        self.dim = dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        t = video.shape[1]
        x = self.body(video.permute(0, 2, 1, 3, 4))
        x = x.mean(dim=(3, 4)).transpose(1, 2)
        index = torch.div(torch.arange(t, device=x.device) * x.shape[1], t, rounding_mode="floor")
        return x.index_select(1, index)

    @torch.jit.export
    def feature_dim(self) -> int:
        return self.dim


def video_backbone(name: str) -> PerFrame:
    """A `torchvision.models.video` network (r3d_18, mc3_18, r2plus1d_18, s3d; random init, no
    download) without its pooling and classifier, as a per-frame backbone."""
    import torchvision

    net = getattr(torchvision.models.video, name)(weights=None)
    heads = {"avgpool", "fc", "classifier", "dropout"}
    body = nn.Sequential(*[m for n, m in net.named_children() if n not in heads])
    body.eval()  # the width probe: one clip, no batch statistics
    with torch.no_grad():
        dim = body(torch.zeros(1, 3, 16, 64, 64)).shape[1]
    return PerFrame(body.train(), dim)


class Features(nn.Module):
    """A module that already maps `(B, T, C, H, W)` to `(B, T, D)`, with the `feature_dim()`
    method the plugin asks for."""

    def __init__(self, net: nn.Module, dim: int):
        super().__init__()
        self.net = net
        self.dim = dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)

    @torch.jit.export
    def feature_dim(self) -> int:
        return self.dim


def save(module: nn.Module, path: str, feature_dim: int = None) -> None:
    """Scripts `module` and writes it for the `torchscript` plugin (see the module's doc).
    `feature_dim`: D, for a module without a `feature_dim()` method of its own (it is wrapped
    in `Features`)."""
    if feature_dim is not None:
        module = Features(module, feature_dim)
    elif not callable(getattr(module, "feature_dim", None)):
        raise ValueError("give feature_dim=D, or a module with a feature_dim() method decorated with @torch.jit.export")
    for m in module.modules():
        for name, buffer in list(m._buffers.items()):
            if buffer is not None:
                del m._buffers[name]
                m.register_parameter(name, nn.Parameter(buffer, requires_grad=False))
    torch.jit.script(module).save(path)
