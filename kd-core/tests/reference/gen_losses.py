#!/usr/bin/env python3
"""Reference values and gradients for kd-core's losses, from PyTorch (float64).

Each loss is transcribed from the reference implementation its Rust module names
(RepDistiller, mdistiller, torchdistill, lenscloth/RKD, bhheo/AB_distillation,
szagoruyko/attention-transfer), independently of the Rust code. Gradients come from
torch.autograd; the gradient-based attention-transfer case uses exact double backward
(create_graph=True), which dfdx lacks.

Run:  python3 kd-core/tests/reference/gen_losses.py   (needs torch; writes losses.json beside it)
The inputs are seeded and differ from the test vectors in methods.md.
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(20261128)
torch.set_default_dtype(torch.float64)
OUT = pathlib.Path(__file__).with_name("losses.json")
cases = {}


def arr(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


def record(name, value, inputs, grads_of, settings=None):
    """value: scalar tensor; inputs: name -> tensor; grads_of: names of inputs to differentiate."""
    leaves = [inputs[k] for k in grads_of]
    grads = torch.autograd.grad(value, leaves, allow_unused=False)
    cases[name] = {
        "settings": settings or {},
        "inputs": {k: arr(v) for k, v in inputs.items()},
        "value": float(value.detach()),
        "grads": {k: arr(g) for k, g in zip(grads_of, grads)},
    }


# ---- logit KD (RepDistiller DistillKL / mdistiller kd_loss) -------------------------------
def kd_soft(y_s, y_t, T):
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction="sum") * T**2 / y_s.shape[0]


for T in (1.0, 4.0, 20.0):
    s, t = leaf(4, 5, scale=3.0), torch.randn(4, 5) * 3.0
    record(f"kd_T{int(T)}", kd_soft(s, t, T), {"student_logits": s, "teacher_logits": t}, ["student_logits"], {"temperature": T})

# magnitude-100 logits: teacher probabilities underflow to exactly 0 at T = 1
for T in (1.0, 20.0):
    s = leaf(3, 6, scale=100.0)
    t = torch.randn(3, 6) * 100.0
    record(f"kd_extreme_T{int(T)}", kd_soft(s, t, T), {"student_logits": s, "teacher_logits": t}, ["student_logits"], {"temperature": T})

s, t = leaf(4, 5, scale=2.0), torch.randn(4, 5) * 2.0
y = torch.tensor([1, 4, 0, 2])
ce = F.cross_entropy(s, y)
record("ce", ce, {"student_logits": s}, ["student_logits"], {"targets": y.tolist()})
total = 0.1 * F.cross_entropy(s, y) + 0.9 * kd_soft(s, t, 4.0)
record("kd_with_ce", total, {"student_logits": s, "teacher_logits": t}, ["student_logits"], {"targets": y.tolist(), "temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9})

# ---- FitNet (RepDistiller HintLoss = nn.MSELoss; 1x1 ConvReg as nn.Conv2d(k=1)) -------------
fs, ft = leaf(3, 4, 3, 2), torch.randn(3, 4, 3, 2)
record("hint", F.mse_loss(fs, ft), {"student_feat": fs, "teacher_feat": ft}, ["student_feat"])

x = leaf(2, 3, 4, 5)
w = leaf(6, 3)
b = leaf(6)
probe = torch.randn(2, 6, 4, 5)
out = F.conv2d(x, w.reshape(6, 3, 1, 1), b)
record("conv1x1", (out * probe).sum(), {"input": x, "weight": w, "bias": b, "probe": probe}, ["input", "weight", "bias"])
cases["conv1x1"]["output"] = arr(out)

# ---- NST (RepDistiller NSTLoss; linear and Gaussian kernels in the same shape) ---------------
def nst(f_s, f_t, kernel):
    f_s = F.normalize(f_s.reshape(f_s.shape[0], f_s.shape[1], -1), dim=2)
    f_t = F.normalize(f_t.reshape(f_t.shape[0], f_t.shape[1], -1), dim=2)

    def k(a, b):
        dot = torch.einsum("bih,bjh->bij", a, b)
        if kernel == "poly":
            return dot.pow(2)
        if kernel == "linear":
            return dot
        sq = torch.cdist(a, b).pow(2)
        return torch.exp(-sq / 2.0)  # sigma = 1

    return k(f_t, f_t).mean().detach() + k(f_s, f_s).mean() - 2 * k(f_s, f_t).mean()


for kernel in ("poly", "linear", "gaussian"):
    fs, ft = leaf(2, 3, 3, 4), torch.randn(2, 5, 3, 4)
    record(f"nst_{kernel}", nst(fs, ft, kernel), {"student_feat": fs, "teacher_feat": ft}, ["student_feat"], {"kernel": kernel})

# ---- attention transfer (szagoruyko utils.at_loss; torchdistill ATLoss mode='paper') ---------
def at(x, p):
    return F.normalize(x.abs().pow(p).mean(1).reshape(x.shape[0], -1))


for p in (2.0, 1.5):
    fs, ft = leaf(3, 4, 4, 3), torch.randn(3, 6, 4, 3)
    record(f"at_code_p{p}", (at(fs, p) - at(ft, p)).pow(2).mean(), {"student_feat": fs, "teacher_feat": ft}, ["student_feat"], {"p": p})
fs, ft = leaf(3, 4, 4, 3), torch.randn(3, 6, 4, 3)
paper = torch.norm(at(fs, 2) - at(ft, 2), dim=1).sum() / fs.shape[0]
record("at_paper", paper, {"student_feat": fs, "teacher_feat": ft}, ["student_feat"], {"p": 2.0})

# ---- activation boundaries (bhheo criterion_alternative_L2, / batch) ------------------------
s, t = leaf(3, 4, 2, 2, scale=1.5), torch.randn(3, 4, 2, 2)
m = 1.0
ab = ((s + m).pow(2) * ((s > -m) & (t <= 0)).double() + (s - m).pow(2) * ((s <= m) & (t > 0)).double()).sum() / s.shape[0]
record("ab", ab, {"student_feat": s, "teacher_feat": t}, ["student_feat"], {"margin": m})

# ---- FSP (paper: squared Frobenius / B; RepDistiller: mean) ---------------------------------
def fsp_matrix(a, b):
    return torch.einsum("bihw,bjhw->bij", a, b) / (a.shape[2] * a.shape[3])


s1, s2 = leaf(2, 3, 3, 3), leaf(2, 4, 3, 3)
t1, t2 = torch.randn(2, 3, 3, 3), torch.randn(2, 4, 3, 3)
gs, gt = fsp_matrix(s1, s2), fsp_matrix(t1, t2)
inputs = {"student_first": s1, "student_second": s2, "teacher_first": t1, "teacher_second": t2}
record("fsp_paper", (gs - gt).pow(2).sum() / s1.shape[0], inputs, ["student_first", "student_second"])
gs, gt = fsp_matrix(s1, s2), fsp_matrix(t1, t2)
record("fsp_repdistiller", (gs - gt).pow(2).mean(), inputs, ["student_first", "student_second"])

# ---- RKD (lenscloth/RKD metric/loss.py) ----------------------------------------------------
def pdist(e, squared=False, eps=1e-12):
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    if not squared:
        res = res.sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def rkd_distance(student, teacher):
    with torch.no_grad():
        t_d = pdist(teacher)
        t_d = t_d / t_d[t_d > 0].mean()
    d = pdist(student)
    d = d / d[d > 0].mean()
    return F.smooth_l1_loss(d, t_d, reduction="mean")


def rkd_angle(student, teacher):
    with torch.no_grad():
        td = teacher.unsqueeze(0) - teacher.unsqueeze(1)
        norm_td = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    sd = student.unsqueeze(0) - student.unsqueeze(1)
    norm_sd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    return F.smooth_l1_loss(s_angle, t_angle, reduction="mean")


es, et = leaf(5, 4), torch.randn(5, 7)
record("rkd_distance", rkd_distance(es, et), {"student_embed": es, "teacher_embed": et}, ["student_embed"])
es, et = leaf(5, 4), torch.randn(5, 7)
record("rkd_angle", rkd_angle(es, et), {"student_embed": es, "teacher_embed": et}, ["student_embed"])

# ---- similarity-preserving (RepDistiller Similarity) ----------------------------------------
def sp(f_s, f_t):
    bsz = f_s.shape[0]
    f_s = f_s.view(bsz, -1)
    f_t = f_t.view(bsz, -1)
    G_s = F.normalize(f_s @ f_s.t())
    G_t = F.normalize(f_t @ f_t.t())
    return (G_t - G_s).pow(2).view(-1, 1).sum(0)[0] / (bsz * bsz)


fs, ft = leaf(4, 3, 2, 2), torch.randn(4, 5, 2, 2)
record("sp", sp(fs, ft), {"student_feat": fs, "teacher_feat": ft}, ["student_feat"])

# ---- deep mutual learning (Zoo dml.py: CE + batchmean KL to detached peers) ------------------
s = leaf(4, 5, scale=2.0)
peers = [torch.randn(4, 5) * 2.0, torch.randn(4, 5) * 2.0]
y = torch.tensor([0, 3, 3, 1])
kl = sum(F.kl_div(F.log_softmax(s, 1), F.softmax(p, 1), reduction="batchmean") for p in peers) / len(peers)
record("dml", F.cross_entropy(s, y) + kl, {"student_logits": s, "peer0": peers[0], "peer1": peers[1]}, ["student_logits"], {"targets": y.tolist()})

# ---- be your own teacher (paper form, plain squared L2 per sample, batch mean) --------------
alpha, T, lam = 0.3, 3.0, 0.5
s, t = leaf(4, 5, scale=2.0), torch.randn(4, 5) * 2.0
fs, ft = leaf(4, 6), torch.randn(4, 6)
y = torch.tensor([2, 0, 4, 1])
byot = (1 - alpha) * F.cross_entropy(s, y) + alpha * kd_soft(s, t, T) + lam * (fs - ft).pow(2).sum(1).mean()
record("byot", byot, {"student_logits": s, "teacher_logits": t, "student_feat": fs, "teacher_feat": ft}, ["student_logits", "student_feat"],
       {"targets": y.tolist(), "alpha": alpha, "temperature": T, "feature_weight": lam})

# ---- DKD (mdistiller distillers/DKD.py) -----------------------------------------------------
def dkd(logits_student, logits_teacher, target, alpha, beta, temperature):
    gt_mask = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(logits_student).scatter_(1, target.unsqueeze(1), 0).bool()
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)

    def cat_mask(t, mask1, mask2):
        t1 = (t * mask1).sum(dim=1, keepdims=True)
        t2 = (t * mask2).sum(1, keepdims=True)
        return torch.cat([t1, t2], dim=1)

    pred_student = cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd = F.kl_div(log_pred_student, pred_teacher, reduction="sum") * temperature**2 / target.shape[0]
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd = F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum") * temperature**2 / target.shape[0]
    return alpha * tckd + beta * nckd


s, t = leaf(4, 5, scale=2.0), torch.randn(4, 5) * 2.0
y = torch.tensor([3, 1, 0, 4])
record("dkd", dkd(s, t, y, 1.0, 8.0, 4.0), {"student_logits": s, "teacher_logits": t}, ["student_logits"],
       {"targets": y.tolist(), "alpha": 1.0, "beta": 8.0, "temperature": 4.0})

# ---- gradient-based attention transfer: exact double backward ------------------------------
def mlp(params, x):
    w1, b1, w2, b2 = params
    return torch.tanh(x @ w1.t() + b1) @ w2.t() + b2


student = [leaf(6, 4, scale=0.7), leaf(6, scale=0.3), leaf(3, 6, scale=0.7), leaf(3, scale=0.3)]
teacher = [torch.randn(6, 4), torch.randn(6), torch.randn(3, 6), torch.randn(3)]
x = torch.randn(5, 4).requires_grad_(True)
y = torch.tensor([0, 2, 1, 2, 0])
(j_t,) = torch.autograd.grad(F.cross_entropy(mlp(teacher, x), y), x)
(j_s,) = torch.autograd.grad(F.cross_entropy(mlp(student, x), y), x, create_graph=True)
gat = 0.5 * (j_s - j_t.detach()).pow(2).sum()
names = ["w1", "b1", "w2", "b2"]
record("gradient_at", gat,
       {**{f"student_{n}": p for n, p in zip(names, student)}, **{f"teacher_{n}": p for n, p in zip(names, teacher)}, "input": x.detach(),
        "teacher_input_grad": j_t, "student_input_grad": j_s.detach()},
       [f"student_{n}" for n in names], {"targets": y.tolist()})

# ---- divergences beyond forward KL (TRL generalized_jsd_loss, batchmean), times T^2 ----------
def reverse_kl(y_s, y_t, T):
    log_s, log_t = F.log_softmax(y_s / T, dim=-1), F.log_softmax(y_t / T, dim=-1)
    return F.kl_div(log_t, log_s, reduction="sum", log_target=True) * T**2 / y_s.shape[0]


def jsd(y_s, y_t, T, beta):
    """TRL's generalized_jsd_loss: beta weighs the teacher in the mixture; 0 and 1 are the KLs."""
    log_s, log_t = F.log_softmax(y_s / T, dim=-1), F.log_softmax(y_t / T, dim=-1)
    if beta == 0:
        value = F.kl_div(log_s, log_t, reduction="sum", log_target=True)
    elif beta == 1:
        value = F.kl_div(log_t, log_s, reduction="sum", log_target=True)
    else:
        b = torch.tensor(beta)
        log_m = torch.logsumexp(torch.stack([log_s + torch.log(1 - b), log_t + torch.log(b)]), dim=0)
        kl_teacher = F.kl_div(log_m, log_t, reduction="sum", log_target=True)
        kl_student = F.kl_div(log_m, log_s, reduction="sum", log_target=True)
        value = beta * kl_teacher + (1 - beta) * kl_student
    return value * T**2 / y_s.shape[0]


def tvd(y_s, y_t, T):
    p_s, p_t = F.softmax(y_s / T, dim=-1), F.softmax(y_t / T, dim=-1)
    return 0.5 * (p_s - p_t).abs().sum() * T**2 / y_s.shape[0]


for T in (1.0, 4.0):
    s, t = leaf(4, 6, scale=3.0), torch.randn(4, 6) * 3.0
    record(f"reverse_kl_T{int(T)}", reverse_kl(s, t, T), {"student_logits": s, "teacher_logits": t}, ["student_logits"],
           {"temperature": T})
    s, t = leaf(4, 6, scale=3.0), torch.randn(4, 6) * 3.0
    record(f"tvd_T{int(T)}", tvd(s, t, T), {"student_logits": s, "teacher_logits": t}, ["student_logits"], {"temperature": T})
for beta in (0.1, 0.5, 0.9):
    s, t = leaf(4, 6, scale=3.0), torch.randn(4, 6) * 3.0
    record(f"jsd_beta{int(beta * 10)}", jsd(s, t, 2.0, beta), {"student_logits": s, "teacher_logits": t}, ["student_logits"],
           {"temperature": 2.0, "beta": beta})
# magnitude-100 logits: probabilities underflow at T = 1
s, t = leaf(3, 6, scale=100.0), torch.randn(3, 6) * 100.0
record("jsd_extreme", jsd(s, t, 1.0, 0.5), {"student_logits": s, "teacher_logits": t}, ["student_logits"],
       {"temperature": 1.0, "beta": 0.5})


# ---- DIST (hunto/DIST_KD losses/dist_kd.py; torchdistill DISTLoss) --------------------------
def pearson(a, b, eps=1e-8):
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist(z_s, z_t, beta, gamma, tau):
    y_s, y_t = (z_s / tau).softmax(dim=1), (z_t / tau).softmax(dim=1)
    inter = tau**2 * (1 - pearson(y_s, y_t).mean())
    intra = tau**2 * (1 - pearson(y_s.t(), y_t.t()).mean())
    return beta * inter + gamma * intra


for name, (beta, gamma, tau) in {"dist": (1.0, 1.0, 1.0), "dist_weighted_T4": (2.0, 0.5, 4.0)}.items():
    s, t = leaf(6, 5, scale=2.0), torch.randn(6, 5) * 2.0
    record(name, dist(s, t, beta, gamma, tau), {"student_logits": s, "teacher_logits": t}, ["student_logits"],
           {"beta": beta, "gamma": gamma, "temperature": tau})

OUT.write_text(json.dumps({"generator": "gen_losses.py", "torch": torch.__version__, "cases": cases}, indent=1) + "\n")
print(f"wrote {len(cases)} cases to {OUT}")
