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

OUT.write_text(json.dumps({"generator": "gen_spatial.py", "torch": torch.__version__, "conv2d": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} conv2d cases to {OUT}")
