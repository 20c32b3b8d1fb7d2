#!/usr/bin/env python3
"""Reference outputs and gradients for kd-core's spatial ops, from PyTorch (float64).

For each configuration: F.conv2d's output, and the gradients of sum(output * probe) with respect
to input, weight and bias (probe: a fixed random tensor, so every output element matters).

Run:  python3 kd-core/tests/reference/gen_spatial.py   (needs torch; writes spatial.json beside it)
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).with_name("spatial.json")


def arr(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


# (name, batch, in_channels, height, width, out_channels, kernel, stride, padding, dilation, groups)
CONV = [
    ("k1_s1_p0", 2, 3, 5, 4, 4, 1, 1, 0, 1, 1),
    ("k3_s1_p1", 2, 3, 6, 5, 4, 3, 1, 1, 1, 1),
    ("k3_s2_p1", 3, 2, 7, 6, 5, 3, 2, 1, 1, 1),
    ("k5_s1_p2", 1, 2, 6, 7, 3, 5, 1, 2, 1, 1),
    ("k5_s2_p0", 2, 1, 9, 11, 2, 5, 2, 0, 1, 1),
    ("k3_s1_p0_dilation2", 2, 2, 8, 7, 3, 3, 1, 0, 2, 1),
    ("k3_s2_p2_dilation2", 1, 3, 9, 8, 2, 3, 2, 2, 2, 1),
    ("k3_s1_p1_groups2", 2, 4, 5, 6, 6, 3, 1, 1, 1, 2),
    ("k1_s2_p0_groups4_depthwise", 2, 4, 6, 5, 4, 1, 2, 0, 1, 4),
    ("k5_s1_p2_lenet", 4, 1, 12, 12, 6, 5, 1, 2, 1, 1),
]

cases = {}
for name, b, c, h, w, o, k, s, p, d, g in CONV:
    x = torch.randn(b, c, h, w, requires_grad=True)
    weight = (torch.randn(o, c // g, k, k) * 0.5).requires_grad_(True)
    bias = torch.randn(o, requires_grad=True)
    out = F.conv2d(x, weight, bias, stride=s, padding=p, dilation=d, groups=g)
    probe = torch.randn_like(out)
    gx, gw, gb = torch.autograd.grad((out * probe).sum(), [x, weight, bias])
    cases[name] = {
        "geometry": {"kernel": k, "stride": s, "padding": p, "dilation": d, "groups": g},
        "input": arr(x), "weight": arr(weight), "bias": arr(bias), "probe": arr(probe),
        "output": arr(out), "grad_input": arr(gx), "grad_weight": arr(gw), "grad_bias": arr(gb),
    }

# (name, batch, in_channels, height, width, out_channels, kernel, stride, padding, dilation, groups, output_padding)
CONV_T = [
    ("k3_s1_p0", 2, 3, 4, 5, 2, 3, 1, 0, 1, 1, 0),
    ("k4_s2_p1_convreg", 2, 3, 4, 4, 5, 4, 2, 1, 1, 1, 0),
    ("k3_s2_p1_outpad1", 1, 2, 3, 5, 3, 3, 2, 1, 1, 1, 1),
    ("k5_s2_p2_dilation2", 2, 2, 4, 3, 2, 5, 2, 2, 2, 1, 0),
    ("k3_s1_p1_groups2", 3, 4, 5, 4, 6, 3, 1, 1, 1, 2, 0),
]
conv_t = {}
for name, b, c, h, w, o, k, s, p, d, g, op in CONV_T:
    x = torch.randn(b, c, h, w, requires_grad=True)
    weight = (torch.randn(c, o // g, k, k) * 0.5).requires_grad_(True)
    bias = torch.randn(o, requires_grad=True)
    out = F.conv_transpose2d(x, weight, bias, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    probe = torch.randn_like(out)
    gx, gw, gb = torch.autograd.grad((out * probe).sum(), [x, weight, bias])
    conv_t[name] = {
        "geometry": {"kernel": k, "stride": s, "padding": p, "dilation": d, "groups": g, "output_padding": op},
        "input": arr(x), "weight": arr(weight), "bias": arr(bias), "probe": arr(probe),
        "output": arr(out), "grad_input": arr(gx), "grad_weight": arr(gw), "grad_bias": arr(gb),
    }

# (name, batch, channels, height, width, kernel, stride, padding, dilation, integer_valued_for_ties)
POOL = [
    ("k2_s2", 2, 3, 6, 8, 2, 2, 0, 1, False),
    ("k3_s2_p1", 1, 2, 7, 5, 3, 2, 1, 1, False),
    ("k3_s1_p1", 2, 2, 5, 6, 3, 1, 1, 1, False),
    ("k5_s3_p2", 2, 1, 11, 9, 5, 3, 2, 1, False),
    ("k2_s2_ties", 2, 2, 6, 6, 2, 2, 0, 1, True),
    ("k3_s1_ties_overlapping", 1, 2, 5, 5, 3, 1, 0, 1, True),
    ("k3_s1_dilation2", 2, 1, 7, 8, 3, 1, 0, 2, False),
]
pools = {}
for name, b, c, h, w, k, s, p, d, ties in POOL:
    if ties:
        x = torch.randint(-2, 3, (b, c, h, w)).double().requires_grad_(True)
    else:
        x = torch.randn(b, c, h, w, requires_grad=True)
    entry = {"geometry": {"kernel": k, "stride": s, "padding": p, "dilation": d}, "input": arr(x)}
    kinds = [("max", lambda t: F.max_pool2d(t, k, s, p, dilation=d))]
    if d == 1:
        kinds.append(("avg", lambda t: F.avg_pool2d(t, k, s, p)))
    for kind, op in kinds:
        out = op(x)
        probe = torch.randn_like(out)
        (gx,) = torch.autograd.grad((out * probe).sum(), [x])
        entry[kind] = {"output": arr(out), "probe": arr(probe), "grad_input": arr(gx)}
    pools[name] = entry

ADAPTIVE = [("7x7_to_3x3", 2, 3, 7, 7, 3, 3), ("8x6_to_4x4", 1, 2, 8, 6, 4, 4), ("5x9_to_2x4", 2, 1, 5, 9, 2, 4), ("4x4_to_4x4", 1, 2, 4, 4, 4, 4)]
adaptive = {}
for name, b, c, h, w, oh, ow in ADAPTIVE:
    x = torch.randn(b, c, h, w, requires_grad=True)
    out = F.adaptive_avg_pool2d(x, (oh, ow))
    probe = torch.randn_like(out)
    (gx,) = torch.autograd.grad((out * probe).sum(), [x])
    adaptive[name] = {"size": [oh, ow], "input": arr(x), "output": arr(out), "probe": arr(probe), "grad_input": arr(gx)}

OUT.write_text(json.dumps({"generator": "gen_spatial.py", "torch": torch.__version__, "conv2d": cases,
                           "conv_transpose2d": conv_t, "pool2d": pools, "adaptive_avg_pool2d": adaptive}, indent=1) + "\n")
print(f"wrote {len(cases)} conv2d, {len(conv_t)} conv_transpose2d, {len(pools)} pool2d, {len(adaptive)} adaptive cases to {OUT}")
