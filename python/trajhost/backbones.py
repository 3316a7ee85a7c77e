"""The four trajhost backbones in PyTorch, for any configuration their plugins accept.

Each module mirrors its Rust plugin (`plugins/<name>/src/lib.rs`) layer for layer: the same
kernel sizes, strides, paddings, norms (and their epsilons), biases, activations, pooling and
the same way of keeping one feature per input frame. Parameter and buffer names are the plugins'
variable-store paths, so a checkpoint written by `trajhost export` loads with `strict=True`
(tested per backbone against `trajhost eval`), and the parameter counts are equal (checked by the
bench crate's parity test).

Input: `(B, T, C, H, W)` float, standardised as the host does (`trajhost.data.standardise`);
output: `(B, T, D)` per-frame features.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(kernel, stride):
    """The plugins' "same" padding: (k - s + 1) / 2, at least 0 (integer division)."""
    return max(0, kernel - stride + 1) // 2


def repeat_time(x, t, stride):
    """`(B, T', D)` → `(B, T, D)`: frame `t` takes step `t // stride` (clamped)."""
    steps = x.shape[1]
    if steps == t:
        return x
    index = torch.clamp(torch.arange(t, device=x.device) // stride, max=steps - 1)
    return x.index_select(1, index)


# --------------------------------------------------------------------------------------- I3D

I3D_STAGES = [
    [("mixed_3b", [64, 96, 128, 16, 32, 32]), ("mixed_3c", [128, 128, 192, 32, 96, 64])],
    [
        ("mixed_4b", [192, 96, 208, 16, 48, 64]),
        ("mixed_4c", [160, 112, 224, 24, 64, 64]),
        ("mixed_4d", [128, 128, 256, 24, 64, 64]),
        ("mixed_4e", [112, 144, 288, 32, 64, 64]),
        ("mixed_4f", [256, 160, 320, 32, 128, 128]),
    ],
    [("mixed_5b", [256, 160, 320, 32, 128, 128]), ("mixed_5c", [384, 192, 384, 48, 128, 128])],
]

I3D_CPU = dict(width=8, blocks=[1, 1, 1], stem_kernel=[3, 8, 8], stem_stride=8, temporal_strides=False)
I3D_REFERENCE = dict(width=64, blocks=[2, 5, 2], stem_kernel=[7, 7, 7], stem_stride=2, temporal_strides=True)


class Unit3D(nn.Module):
    """Conv3d (no bias) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, c_in, c_out, kernel, stride):
        super().__init__()
        pad = tuple(same_pad(kernel[i], stride[i]) for i in range(3))
        self.conv3d = nn.Conv3d(c_in, c_out, tuple(kernel), tuple(stride), pad, bias=False)
        self.bn = nn.BatchNorm3d(c_out, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv3d(x)))


class Mixed(nn.Module):
    def __init__(self, c_in, c):
        super().__init__()
        one, three = [1, 1, 1], [3, 3, 3]
        self.b0 = Unit3D(c_in, c[0], one, one)
        self.b1a = Unit3D(c_in, c[1], one, one)
        self.b1b = Unit3D(c[1], c[2], three, one)
        self.b2a = Unit3D(c_in, c[3], one, one)
        self.b2b = Unit3D(c[3], c[4], three, one)
        self.b3b = Unit3D(c_in, c[5], one, one)
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x):
        b0 = self.b0(x)
        b1 = self.b1b(self.b1a(x))
        b2 = self.b2b(self.b2a(x))
        b3 = self.b3b(F.max_pool3d(x, 3, 1, 1))
        return torch.cat([b0, b1, b2, b3], 1)


class Pool(nn.Module):
    def __init__(self, kernel, stride, padding, ceil):
        super().__init__()
        self.args = (tuple(kernel), tuple(stride), tuple(padding), 1, ceil)

    def forward(self, x):
        return F.max_pool3d(x, *self.args)


class I3D(nn.Module):
    def __init__(self, width=8, blocks=(1, 1, 1), stem_kernel=(3, 8, 8), stem_stride=8, temporal_strides=False):
        super().__init__()
        scale = lambda c: max(1, (c * width + 32) // 64)  # noqa: E731 (Rust: integer division)
        ts = 2 if temporal_strides else 1
        s = stem_stride
        stem = scale(64)
        # Registered in forward order under the plugin's (pytorch-i3d's) names.
        self.add_module("conv3d_1a", Unit3D(3, stem, list(stem_kernel), [ts, s, s]))
        self.add_module("max_pool_2a", Pool([1, 3, 3], [1, 2, 2], [0, 1, 1], False))
        self.add_module("conv3d_2b", Unit3D(stem, stem, [1, 1, 1], [1, 1, 1]))
        w = scale(192)
        self.add_module("conv3d_2c", Unit3D(stem, w, [3, 3, 3], [1, 1, 1]))
        pools = [
            ("max_pool_3a", Pool([1, 3, 3], [1, 2, 2], [0, 1, 1], False)),
            ("max_pool_4a", Pool([3, 3, 3], [ts, 2, 2], [1, 1, 1], False)),
            ("max_pool_5a", Pool([ts, 2, 2], [ts, 2, 2], [0, 0, 0], True)),
        ]
        for stage, specs in enumerate(I3D_STAGES):
            self.add_module(*pools[stage])
            for name, spec in specs[len(specs) - blocks[stage]:]:
                block = Mixed(w, [scale(c) for c in spec])
                w = block.out_channels
                self.add_module(name, block)
        self.feature_dim = w
        self.time_stride = ts ** 3

    def forward(self, video):
        t = video.shape[1]
        x = video.permute(0, 2, 1, 3, 4)
        for layer in self.children():
            x = layer(x)
        x = x.mean(dim=(3, 4)).permute(0, 2, 1)
        return repeat_time(x, t, self.time_stride)


# ---------------------------------------------------------------------------------- SlowFast

SLOWFAST_CPU = dict(width=8, alpha=4, beta_inv=4, depths=[1, 1, 1, 1], fusion_kernel=5, stem_kernel=4, stem_stride=4)
SLOWFAST_REFERENCE = dict(width=64, alpha=8, beta_inv=8, depths=[3, 4, 6, 3], fusion_kernel=5, stem_kernel=7, stem_stride=2)


class ConvBn(nn.Module):
    """Conv3d (no bias) → BatchNorm (eps 1e-5); the caller applies ReLU."""

    def __init__(self, c_in, c_out, kernel, stride, padding=None):
        super().__init__()
        pad = padding if padding is not None else tuple(same_pad(kernel[i], stride[i]) for i in range(3))
        self.conv = nn.Conv3d(c_in, c_out, tuple(kernel), tuple(stride), tuple(pad), bias=False)
        self.bn = nn.BatchNorm3d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


def conv3d_as_temporal_taps(x, weight, stride, padding):
    """A `taps×k×k` conv (temporal stride 1, padding taps // 2) as one `1×k×k` conv with
    `taps · C_out` outputs whose taps are summed shifted in time, in the plugins' order
    (`plugin-api/src/layers.rs`, `conv3d_as_temporal_taps`): the same weights and result."""
    c_out, c_in, taps, kh, kw = weight.shape
    per_tap = weight.permute(2, 0, 1, 3, 4).reshape(taps * c_out, c_in, 1, kh, kw)
    z = F.conv3d(x, per_tap, None, (1, stride, stride), (0, padding, padding))
    b, _, t, h, w = z.shape
    total = None
    for tap, zt in enumerate(z.view(b, taps, c_out, t, h, w).unbind(1)):
        shift = tap - taps // 2  # output frame i reads input frame i + shift
        if shift != 0 and abs(shift) >= t:
            continue
        if shift < 0:
            zt = F.pad(zt.narrow(2, 0, t + shift), (0, 0, 0, 0, -shift, 0))
        elif shift > 0:
            zt = F.pad(zt.narrow(2, shift, t - shift), (0, 0, 0, 0, 0, shift))
        total = zt if total is None else total + zt
    return total


class FastStem(ConvBn):
    """SlowFast's Fast stem: its `5×k×k` conv computed as temporal taps, as the plugin does."""

    def __init__(self, c_out, kernel, stride):
        super().__init__(3, c_out, [5, kernel, kernel], [1, stride, stride])
        self.stride, self.padding = stride, same_pad(kernel, stride)

    def forward(self, x):
        return self.bn(conv3d_as_temporal_taps(x, self.conv.weight, self.stride, self.padding))


class Bottleneck(nn.Module):
    def __init__(self, c_in, inner, c_out, t, stride):
        super().__init__()
        self.a = ConvBn(c_in, inner, [t, 1, 1], [1, 1, 1])
        self.b = ConvBn(inner, inner, [1, 3, 3], [1, stride, stride])
        self.c = ConvBn(inner, c_out, [1, 1, 1], [1, 1, 1])
        self.shortcut = ConvBn(c_in, c_out, [1, 1, 1], [1, stride, stride]) if (c_in != c_out or stride != 1) else None

    def forward(self, x):
        h = F.relu(self.a(x))
        h = F.relu(self.b(h))
        h = self.c(h)
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(h + skip)


class Fuse(ConvBn):
    """Fast → Slow lateral: `k×1×1` conv with temporal stride α, BN, ReLU, concatenated."""

    def __init__(self, fast, kernel, alpha):
        super().__init__(fast, 2 * fast, [kernel, 1, 1], [alpha, 1, 1], padding=(kernel // 2, 0, 0))

    def forward(self, slow, fast):
        return torch.cat([slow, F.relu(super().forward(fast))], 1)


class SlowFast(nn.Module):
    def __init__(self, width=8, alpha=4, beta_inv=4, depths=(1, 1, 1, 1), fusion_kernel=5, stem_kernel=4, stem_stride=4):
        super().__init__()
        k, s = stem_kernel, stem_stride
        fast_width = width // beta_inv
        self.alpha = alpha
        self.slow_stem = ConvBn(3, width, [1, k, k], [alpha, s, s])  # reads frames 0, α, 2α, …
        self.fast_stem = FastStem(fast_width, k, s)
        fuse = [Fuse(fast_width, fusion_kernel, alpha)]
        slow_in, fast_in = width + 2 * fast_width, fast_width
        self.stages = len(depths)
        for i, depth in enumerate(depths):
            stage = i + 2
            inner = width << i
            fast_inner = max(1, inner // beta_inv)
            stride = 1 if i == 0 else 2
            slow_t = 3 if stage >= 4 else 1
            slow, fast = [], []
            for j in range(depth):
                st = stride if j == 0 else 1
                slow.append(Bottleneck(slow_in, inner, 4 * inner, slow_t, st))
                fast.append(Bottleneck(fast_in, fast_inner, 4 * fast_inner, 3, st))
                slow_in, fast_in = 4 * inner, 4 * fast_inner
            self.add_module(f"slow_res{stage}", nn.Sequential(*slow))
            self.add_module(f"fast_res{stage}", nn.Sequential(*fast))
            if stage < 5:
                fuse.append(Fuse(fast_in, fusion_kernel, alpha))
                slow_in += 2 * fast_in
        self.fuse = nn.ModuleList(fuse)
        self.feature_dim = slow_in + fast_in

    def forward(self, video):
        t = video.shape[1]
        video = video.permute(0, 2, 1, 3, 4)
        pool = lambda x: F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))  # noqa: E731
        fast = pool(F.relu(self.fast_stem(video)))
        slow = pool(F.relu(self.slow_stem(video)))
        slow = self.fuse[0](slow, fast)
        for i in range(self.stages):
            slow = getattr(self, f"slow_res{i + 2}")(slow)
            fast = getattr(self, f"fast_res{i + 2}")(fast)
            if i + 1 < len(self.fuse):
                slow = self.fuse[i + 1](slow, fast)
        slow = slow.mean(dim=(3, 4)).permute(0, 2, 1)
        fast = fast.mean(dim=(3, 4)).permute(0, 2, 1)
        index = torch.clamp(torch.arange(t, device=slow.device) // self.alpha, max=slow.shape[1] - 1)
        return torch.cat([slow.index_select(1, index), fast], 2)


# ------------------------------------------------------------------------------- Transformer

TRANSFORMER_CPU = dict(dim=48, depth=2, heads=2, mlp_ratio=2, patch_size=16, image_size=64, max_frames=64)
TRANSFORMER_REFERENCE = dict(dim=768, depth=12, heads=12, mlp_ratio=4, patch_size=16, image_size=64, max_frames=64)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.heads = heads

    def forward(self, x):
        n, l, d = x.shape
        qkv = self.qkv(x)
        if qkv.is_cuda:
            q, k, v = qkv.reshape(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            y = F.scaled_dot_product_attention(q, k, v).permute(0, 2, 1, 3).reshape(n, l, d)
        else:
            # As the plugin on the CPU: the attention written out one head at a time, each head's
            # q, k, v a view that bmm reads in place (faster there than the fused kernel, and
            # than the heads batched, which need copies); one unbind, whose backward stacks.
            h, head_dim = self.heads, d // self.heads
            parts = qkv.reshape(n, l, 3 * h, head_dim).unbind(2)
            y = torch.cat([
                (torch.bmm(parts[i], parts[h + i].transpose(1, 2)) * head_dim ** -0.5).softmax(-1)
                @ parts[2 * h + i] for i in range(h)], -1)
        return self.proj(y)


class Block(nn.Module):
    """Divided space–time attention: temporal attention (+ temporal_fc), spatial, MLP."""

    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.temporal_norm = nn.LayerNorm(dim, eps=1e-6)
        self.temporal_attn = Attention(dim, heads)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.mlp_fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x):
        b, t, n, d = x.shape
        xt = x.permute(0, 2, 1, 3).reshape(b * n, t, d)
        xt = xt + self.temporal_fc(self.temporal_attn(self.temporal_norm(xt)))
        xs = xt.reshape(b, n, t, d).permute(0, 2, 1, 3).reshape(b * t, n, d)
        xs = xs + self.attn(self.norm1(xs))
        xs = xs + self.mlp_fc2(F.gelu(self.mlp_fc1(self.norm2(xs))))
        return xs.reshape(b, t, n, d)


class Transformer(nn.Module):
    def __init__(self, dim=48, depth=2, heads=2, mlp_ratio=2, patch_size=16, image_size=64, max_frames=64):
        super().__init__()
        grid = image_size // patch_size
        self.dim = dim
        self.patch_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.pos_embed_space = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.pos_embed_time = nn.Parameter(torch.randn(max_frames, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.readout = nn.Linear(grid * grid * dim, dim)
        self.feature_dim = dim

    def forward(self, video):
        b, t, ch, h, w = video.shape
        x = self.patch_embed(video.reshape(b * t, ch, h, w))
        x = x.flatten(2, 3).transpose(1, 2)
        n = x.shape[1]
        x = x.reshape(b, t, n, self.dim)
        x = x + self.pos_embed_space + self.pos_embed_time[:t].unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return self.readout(self.norm(x).flatten(2))


# ------------------------------------------------------------------------------------ MAGVIT

MAGVIT_CPU = dict(filters=12, channel_multipliers=[1, 2], res_blocks=1, temporal_downsample=[False], embedding_dim=32, groups=4, stem_stride=8, causal=False)
MAGVIT_REFERENCE = dict(filters=64, channel_multipliers=[1, 2, 2, 4], res_blocks=2, temporal_downsample=[False, True, True], embedding_dim=256, groups=32, stem_stride=1, causal=False)


class Conv(nn.Conv3d):
    """Conv3d whose temporal padding is applied in forward (TF SAME or causal), as the plugin."""

    def __init__(self, c_in, c_out, kernel, stride, space_pad, causal, bias, pad_inside=False):
        super().__init__(c_in, c_out, tuple(kernel), tuple(stride), (0, space_pad, space_pad), bias=bias)
        self.kernel_t, self.stride_t, self.causal = kernel[0], stride[0], causal
        # The stem leaves equal padding on both sides of time to the convolution, as the plugin.
        self.pad_inside = pad_inside

    def forward(self, x):
        k, s = self.kernel_t, self.stride_t
        if self.causal:
            before, after = k - 1, 0
        else:
            t = x.shape[2]
            out = (t + s - 1) // s
            total = max(0, (out - 1) * s + k - t)
            before, after = total // 2, total - total // 2
        if self.pad_inside and before == after:
            return F.conv3d(x, self.weight, self.bias, self.stride, (before,) + self.padding[1:])
        if before or after:
            x = F.pad(x, (0, 0, 0, 0, before, after))
        return super().forward(x)


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, groups, causal):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-6)
        self.conv1 = Conv(c_in, c_out, [3] * 3, [1] * 3, 1, causal, False)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-6)
        self.conv2 = Conv(c_out, c_out, [3] * 3, [1] * 3, 1, causal, False)
        self.shortcut = Conv(c_in, c_out, [1] * 3, [1] * 3, 0, causal, False) if c_in != c_out else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class Magvit(nn.Module):
    def __init__(self, filters=12, channel_multipliers=(1, 2), res_blocks=1, temporal_downsample=(False,), embedding_dim=32, groups=4, stem_stride=8, causal=False):
        super().__init__()
        s = stem_stride
        k = max(s, 3)
        pad = (k - 1) // 2 if s == 1 else 0
        width = filters
        self.conv_in = Conv(3, width, [3, k, k], [1, s, s], pad, causal, False, pad_inside=True)
        blocks = []
        self.time_stride = 1
        levels = len(channel_multipliers)
        for level, m in enumerate(channel_multipliers):
            out = filters * m
            for _ in range(res_blocks):
                blocks.append(ResBlock(width, out, groups, causal))
                width = out
            if level + 1 < levels:
                t = 2 if temporal_downsample[level] else 1
                self.time_stride *= t
                blocks.append(Conv(width, width, [4, 4, 4], [t, 2, 2], 1, causal, False))
        for _ in range(res_blocks):
            blocks.append(ResBlock(width, width, groups, causal))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = nn.GroupNorm(groups, width, eps=1e-6)
        self.conv_out = Conv(width, embedding_dim, [1] * 3, [1] * 3, 0, causal, True)
        self.feature_dim = embedding_dim

    def forward(self, video):
        t = video.shape[1]
        x = self.conv_in(video.permute(0, 2, 1, 3, 4))
        x = self.blocks(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        x = x.mean(dim=(3, 4)).permute(0, 2, 1)
        return repeat_time(x, t, self.time_stride)


# Each plugin's presets, under its own field names (`Config::cpu()`, `Config::reference()`).
PRESETS = {
    "i3d": dict(cpu=I3D_CPU, reference=I3D_REFERENCE),
    "slowfast": dict(cpu=SLOWFAST_CPU, reference=SLOWFAST_REFERENCE),
    "transformer": dict(cpu=TRANSFORMER_CPU, reference=TRANSFORMER_REFERENCE),
    "magvit": dict(cpu=MAGVIT_CPU, reference=MAGVIT_REFERENCE),
}
BACKBONES = {"i3d": I3D, "slowfast": SlowFast, "transformer": Transformer, "magvit": Magvit}
# Plugin fields that do not change the network (its weights come from the checkpoint).
IGNORED_FIELDS = {"pretrained"}


def build_backbone(name, config=None):
    """The backbone `name` with the plugin configuration `config`: a dict holding `preset`
    ("cpu", the default, or "reference") and any fields overriding it, as `trajhost export`
    writes it; None is the `cpu` preset."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; this package has {sorted(BACKBONES)}")
    config = dict(config or {})
    preset = config.pop("preset", "cpu")
    if preset not in PRESETS[name]:
        raise ValueError(f"{name}: unknown preset {preset!r}; expected one of {sorted(PRESETS[name])}")
    fields = dict(PRESETS[name][preset])
    for key, value in config.items():
        if key in IGNORED_FIELDS:
            continue
        if key not in fields:
            raise ValueError(f"{name}: unknown field {key!r}; expected one of {sorted(fields)}")
        fields[key] = value
    return BACKBONES[name](**fields)
