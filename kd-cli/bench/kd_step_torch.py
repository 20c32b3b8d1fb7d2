"""PyTorch CPU times of `kd bench`'s workloads, like for like (same layers, batch, losses,
optimiser and thread count), printed as one JSON object. `kd bench` runs this when
`import torch` works; run it alone with `python3 kd-cli/bench/kd_step_torch.py [--quick]`.
"""

import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

THREADS = int(os.environ.get("KD_BENCH_THREADS", "2"))
torch.set_num_threads(THREADS)
QUICK = "--quick" in sys.argv
WARMUP, STEPS = (1, 3) if QUICK else (5, 30)


def median_ms(step):
    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(STEPS):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def kd_with_ce(student_logits, teacher_logits, targets, temperature, ce_weight=0.1, kd_weight=0.9):
    """0.1·CE + 0.9·T²·KL(p_t‖p_s), batch-mean: kd_core::loss::kd_with_ce_loss."""
    kl = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return ce_weight * F.cross_entropy(student_logits, targets) + kd_weight * temperature**2 * kl


def mlp(widths):
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def hinton(batch=128):
    teacher = mlp([784, 1200, 1200, 10]).eval()
    student = mlp([784, 800, 800, 10])
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(batch, 784)
    y = torch.arange(batch) % 10
    with torch.no_grad():
        cached = teacher(x)

    def kd_step():
        with torch.no_grad():
            teacher_logits = teacher(x)
        loss = kd_with_ce(student(x), teacher_logits, y, 20.0)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    def cached_step():
        loss = kd_with_ce(student(x), cached, y, 20.0)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    return median_ms(kd_step), median_ms(cached_step)


def attention_map(f):
    """Activation attention, authors' code: normalised mean over channels of f²."""
    return F.normalize(f.pow(2).mean(1).view(f.size(0), -1))


def at_loss(s, t):
    if s.shape[2] != t.shape[2]:
        raise ValueError("same sizes in this workload")
    return (attention_map(s) - attention_map(t)).pow(2).mean()


class CnnStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(1568, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(F.relu(c1), 2))
        h = F.max_pool2d(F.relu(c2), 2).flatten(1)
        return c1, c2, self.head(F.relu(self.fc(h)))


class CnnTeacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1a = nn.Conv2d(1, 16, 3, padding=1)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.conv2a = nn.Conv2d(16, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(1568, 128)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        c1 = self.conv1(F.relu(self.conv1a(x)))
        c2 = self.conv2(F.relu(self.conv2a(F.max_pool2d(F.relu(c1), 2))))
        h = F.max_pool2d(F.relu(c2), 2).flatten(1)
        return c1, c2, self.head(F.relu(self.fc(h)))


def cnn(batch=64):
    teacher = CnnTeacher().eval()
    student = CnnStudent()
    adapters = nn.ModuleList([nn.Conv2d(16, 16, 1), nn.Conv2d(32, 32, 1)])
    opt = torch.optim.SGD(list(student.parameters()) + list(adapters.parameters()), lr=0.05, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.arange(batch) % 10

    def step():
        with torch.no_grad():
            t1, t2, teacher_logits = teacher(x)
        s1, s2, logits = student(x)
        loss = kd_with_ce(logits, teacher_logits, y, 4.0)
        loss = loss + 100.0 * (F.mse_loss(adapters[0](s1), t1) + F.mse_loss(adapters[1](s2), t2))
        loss = loss + 1000.0 * (at_loss(s1, t1) + at_loss(s2, t2))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    return median_ms(step)


def main():
    torch.manual_seed(0)
    kd_step, cached_step = hinton()
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "hinton_kd_step_ms": kd_step,
                "hinton_cached_kd_step_ms": cached_step,
                "cnn_fitnet_at_step_ms": cnn(),
            }
        )
    )


if __name__ == "__main__":
    main()
