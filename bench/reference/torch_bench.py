#!/usr/bin/env python3
"""PyTorch reference for the deflow benchmark (bench/workloads.ts): the SAME workloads,
shapes and layer math, written independently in PyTorch, timed the same way (median of
repeated runs after warm-up). Prints JSON on stdout (and a table on stderr).

  /usr/bin/python3 bench/reference/torch_bench.py [--quick] [--threads 2]
      [--device cpu|cuda] [--only a,b] [--reps N] [--warmup N] [--out file.json]

One cheap round of one workload: `--only trainStep.default --warmup 1 --reps 3` (start-up,
import and the workload's setup are never inside a timing; warm-up runs once per process).

`--serve` keeps every prepared workload alive and answers JSON requests, one per stdin line,
each with one stdout line `@@bench {...}` (the protocol of `bench/run.ts --serve`):
{"op":"info"}, {"op":"setup","workload":w}, {"op":"run","workload":w,"metric":m,"reps":n,
"threads":t} (returns "samples" in ms; a change of thread count first spins up the new
thread pool outside the timing), {"op":"dispose","workload":w}, {"op":"quit"}.
`bench/compare.ts` drives it, interleaved with the tfjs side, in rounds.

Layer math (NCHW here, NHWC in tfjs; results are identical up to layout):
- ActNorm: y = (x + b) * exp(logs), logdet = H*W*sum(logs).
- LU 1x1 conv: W = P (L*strictLower + I)(U*strictUpper + diag(sign*exp(logS))), applied
  with F.conv2d and a 1x1 weight; logdet = H*W*sum(logS).
- Conditioner: conv3x3 (no bias) -> ActNorm -> ReLU -> conv1x1 (no bias) -> ActNorm ->
  ReLU -> conv3x3 (bias, zero init) * exp(3*logs); output interleaved (even shift, odd
  raw scale), s = sigmoid(raw + 2) + 1e-3.
- Coupling / injector are timed in the ENCODING direction used in training:
  z2 <- z2/s - t (coupling, conditioner on [z1, h]); z <- z/s - t (injector, on h).
- Latent shift: log N(z; mu, A), A = I + M M^T, with torch.linalg.inv / slogdet on the
  tape (tfjs computes them in float64 outside the tape; same cost class, tiny C).
- RRDB encoder (ESRGAN): nf/nb/gc, LeakyReLU 0.2, residual scale 0.2, concatenated block
  features [last, blocks...].
- Full DeFlow training step (levels 3, squeeze, 2 transitions, K steps, split at level 1
  with a learned prior, per-latent shifts, bicubic conditioning, bits/dim loss, Adam).
  ActNorms keep their identity initialisation (the data-dependent init does not change
  the cost). Sampling: encode, add mu + M n per latent, decode (exact inverses).
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- layers


class ActNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, c, 1, 1))

    def encode(self, x):
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * torch.exp(self.logs), hw * self.logs.sum() * torch.ones(x.shape[0], device=x.device)

    def decode(self, y):
        hw = y.shape[2] * y.shape[3]
        return y * torch.exp(-self.logs) - self.bias, -hw * self.logs.sum() * torch.ones(y.shape[0], device=y.device)


class InvConv1x1(nn.Module):
    """LU-parametrised 1x1 convolution, initialised from the LU of a random rotation."""

    def __init__(self, c, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))
        p, l, u = torch.linalg.lu(q)
        s = torch.diagonal(u)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign", torch.sign(s).float())
        self.register_buffer("lmask", torch.tril(torch.ones(c, c), -1))
        self.register_buffer("eye", torch.eye(c))
        self.lower = nn.Parameter(l.float())
        self.upper = nn.Parameter(torch.triu(u, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())
        self.inverse = None

    def weight(self):
        l = self.lower * self.lmask + self.eye
        u = self.upper * self.lmask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.perm @ l @ u

    def encode(self, x):
        c = x.shape[1]
        w = self.weight().view(c, c, 1, 1)
        hw = x.shape[2] * x.shape[3]
        return F.conv2d(x, w), hw * self.log_s.sum() * torch.ones(x.shape[0], device=x.device)

    def prepare_inverse(self):
        with torch.no_grad():
            self.inverse = torch.linalg.inv(self.weight().double()).float()

    def decode(self, y):
        c = y.shape[1]
        hw = y.shape[2] * y.shape[3]
        return F.conv2d(y, self.inverse.view(c, c, 1, 1)), -hw * self.log_s.sum() * torch.ones(y.shape[0], device=y.device)


class ConvNet(nn.Module):
    """DeFlow/SRFlow conditioner: conv3x3-AN-ReLU-conv1x1-AN-ReLU-conv3x3(zero)*exp(3 logs)."""

    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(hidden, hidden, 1, bias=False)
        self.conv3 = nn.Conv2d(hidden, cout, 3, padding=1, bias=True)
        nn.init.normal_(self.conv1.weight, 0, 0.05)
        nn.init.normal_(self.conv2.weight, 0, 0.05)
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)
        self.an1 = ActNorm(hidden)
        self.an2 = ActNorm(hidden)
        self.logs = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x):
        h = F.relu(self.an1.encode(self.conv1(x))[0])
        h = F.relu(self.an2.encode(self.conv2(h))[0])
        return self.conv3(h) * torch.exp(3 * self.logs)


def shift_scale(out, eps=1e-3):
    t = out[:, 0::2]
    s = torch.sigmoid(out[:, 1::2] + 2) + eps
    return t, s


class Coupling(nn.Module):
    def __init__(self, c, cond, hidden):
        super().__init__()
        self.k1 = c // 2
        self.net = ConvNet(self.k1 + cond, hidden, 2 * (c - self.k1))

    def encode(self, x, h):  # inverse of the generation map: z2 <- z2/s - t
        z1, z2 = x[:, : self.k1], x[:, self.k1 :]
        t, s = shift_scale(self.net(torch.cat([z1, h], 1)))
        return torch.cat([z1, z2 / s - t], 1), -torch.log(s).sum((1, 2, 3))

    def decode(self, y, h):  # generation map: z2 <- (z2 + t) * s
        z1, z2 = y[:, : self.k1], y[:, self.k1 :]
        t, s = shift_scale(self.net(torch.cat([z1, h], 1)))
        return torch.cat([z1, (z2 + t) * s], 1), torch.log(s).sum((1, 2, 3))


class Injector(nn.Module):
    def __init__(self, c, cond, hidden):
        super().__init__()
        self.net = ConvNet(cond, hidden, 2 * c)

    def encode(self, x, h):
        t, s = shift_scale(self.net(h))
        return x / s - t, -torch.log(s).sum((1, 2, 3))

    def decode(self, y, h):
        t, s = shift_scale(self.net(h))
        return (y + t) * s, torch.log(s).sum((1, 2, 3))


class LatentShift(nn.Module):
    def __init__(self, c, scale=0.1, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mu = nn.Parameter(torch.zeros(c))
        self.m = nn.Parameter(scale * (torch.eye(c) + 0.1 * torch.randn(c, c, generator=g)))

    def log_prob_degraded(self, z):  # z NCHW
        n, c, hh, ww = z.shape
        a = torch.eye(c, device=z.device) + self.m @ self.m.T
        a_inv = torch.linalg.inv(a)
        logdet = torch.linalg.slogdet(a)[1]
        d = (z - self.mu.view(1, c, 1, 1)).permute(0, 2, 3, 1).reshape(-1, c)
        quad = ((d @ a_inv) * d).reshape(n, -1).sum(1)
        return -0.5 * quad - 0.5 * hh * ww * (logdet + c * math.log(2 * math.pi))

    def sample(self, shape, gen=None):
        n, c, hh, ww = shape
        noise = torch.randn(n * hh * ww, c, device=self.m.device, generator=gen)
        u = noise @ self.m.T + self.mu
        return u.reshape(n, hh, ww, c).permute(0, 3, 1, 2)


def log_prob_clean(z):
    n = z.shape[0]
    d = z[0].numel()
    return -0.5 * z.reshape(n, -1).pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)


# ---------------------------------------------------------------- RRDB encoder


class RDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, padding=1) for i in range(5)]
        )
        for cv in self.convs:
            nn.init.kaiming_normal_(cv.weight)
            cv.weight.data *= 0.1
            nn.init.zeros_(cv.bias)

    def forward(self, x):
        feats = [x]
        for i, cv in enumerate(self.convs):
            o = cv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(o, 0.2))
        return o * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdbs = nn.Sequential(RDB(nf, gc), RDB(nf, gc), RDB(nf, gc))

    def forward(self, x):
        return self.rdbs(x) * 0.2 + x


def default_feature_blocks(nb):
    if nb < 4:
        return list(range(nb))
    out = []
    for i in range(4):
        b = 1 + round(i * (nb - 2) / 3)
        if b not in out:
            out.append(b)
    return out


class Encoder(nn.Module):
    def __init__(self, nf, nb, gc, cin=3):
        super().__init__()
        self.conv_first = nn.Conv2d(cin, nf, 3, padding=1)
        self.blocks = nn.ModuleList([RRDB(nf, gc) for _ in range(nb)])
        self.trunk = nn.Conv2d(nf, nf, 3, padding=1)
        self.feature_blocks = default_feature_blocks(nb)
        self.out_channels = nf * (1 + len(self.feature_blocks))

    def forward(self, x):
        fea = self.conv_first(x)
        saved = {}
        for i, b in enumerate(self.blocks):
            fea = b(fea)
            if i in self.feature_blocks:
                saved[i] = fea
        last = fea + self.trunk(fea)
        return torch.cat([last] + [saved[i] for i in self.feature_blocks], 1)


# ---------------------------------------------------------------- DeFlow network


def squeeze(x):  # channel order c*4 + i*2 + j
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * 4, h // 2, w // 2)


def unsqueeze(x):
    n, c4, h, w = x.shape
    c = c4 // 4
    x = x.view(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c, h * 2, w * 2)


class FlowStep(nn.Module):
    def __init__(self, c, cond, hidden, seed):
        super().__init__()
        self.an = ActNorm(c)
        self.conv = InvConv1x1(c, seed)
        self.coupling = Coupling(c, cond, hidden)
        self.injector = Injector(c, cond, hidden)

    def encode(self, x, h):
        ld = 0
        for f in (self.an.encode, self.conv.encode):
            x, d = f(x)
            ld = ld + d
        x, d = self.coupling.encode(x, h)
        ld = ld + d
        x, d = self.injector.encode(x, h)
        return x, ld + d

    def decode(self, y, h):
        y, ld = self.injector.decode(y, h)
        y, d = self.coupling.decode(y, h)
        ld = ld + d
        for f in (self.conv.decode, self.an.decode):
            y, d = f(y)
            ld = ld + d
        return y, ld


class Transition(nn.Module):
    def __init__(self, c, seed):
        super().__init__()
        self.an = ActNorm(c)
        self.conv = InvConv1x1(c, seed)

    def encode(self, x, h=None):
        x, a = self.an.encode(x)
        x, b = self.conv.encode(x)
        return x, a + b

    def decode(self, y, h=None):
        y, a = self.conv.decode(y)
        y, b = self.an.decode(y)
        return y, a + b


class Split(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.kept = c // 2
        self.prior = nn.Conv2d(self.kept, 2 * (c - self.kept), 3, padding=1)
        nn.init.zeros_(self.prior.weight)
        nn.init.zeros_(self.prior.bias)

    def encode(self, x):
        z1, z2 = x[:, : self.kept], x[:, self.kept :]
        o = self.prior(z1)
        mean, logs = o[:, 0::2], o[:, 1::2]
        return z1, (z2 - mean) * torch.exp(-logs), -logs.sum((1, 2, 3))

    def decode(self, z1, eps):
        o = self.prior(z1)
        mean, logs = o[:, 0::2], o[:, 1::2]
        return torch.cat([z1, eps * torch.exp(logs) + mean], 1), logs.sum((1, 2, 3))


def bicubic_resize(x, size):
    if tuple(x.shape[2:]) == tuple(size):
        return x.clone()
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


class DeFlow(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg["nf"], cfg["nb"], cfg["gc"], cfg["image_channels"])
        cc = self.encoder.out_channels
        self.levels = nn.ModuleList()
        self.splits = {}
        c = cfg["image_channels"]
        latent_c = []
        seed = 0
        for lvl in range(1, cfg["levels"] + 1):
            c *= 4
            mods = nn.ModuleList()
            for _ in range(cfg["transition_steps"]):
                seed += 1
                mods.append(Transition(c, seed))
            for _ in range(cfg["steps"]):
                seed += 1
                mods.append(FlowStep(c, cc, cfg["hidden"], seed))
            level = nn.Module()
            level.steps = mods
            level.split = Split(c) if lvl in cfg["split_levels"] else None
            self.levels.append(level)
            if level.split is not None:
                latent_c.append(c - c // 2)
                c = c // 2
        latent_c.append(c)
        self.shifts = nn.ModuleList([LatentShift(k, cfg["shift_init"], i) for i, k in enumerate(latent_c)])

    def condition_input(self, x, seed):
        k = self.cfg["condition_factor"]
        size = (x.shape[2] // k, x.shape[3] // k)
        down = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
        g = torch.Generator(device=x.device).manual_seed(seed)
        return down + self.cfg["condition_noise"] * torch.randn(down.shape, device=x.device, generator=g)

    def features(self, cond, height, width):
        f = self.encoder(cond)
        return [bicubic_resize(f, (height >> l, width >> l)) for l in range(1, self.cfg["levels"] + 1)]

    def encode(self, x, feats):
        latents, ld = [], 0
        for lvl, level in enumerate(self.levels):
            x = squeeze(x)
            for s in level.steps:
                x, d = s.encode(x, feats[lvl])
                ld = ld + d
            if level.split is not None:
                x, z, d = level.split.encode(x)
                ld = ld + d
                latents.append(z)
        latents.append(x)
        return latents, ld

    def decode(self, latents, feats):
        x = latents[-1]
        k = len(latents) - 2
        for lvl in range(len(self.levels) - 1, -1, -1):
            level = self.levels[lvl]
            if level.split is not None:
                x, _ = level.split.decode(x, latents[k])
                k -= 1
            for s in reversed(level.steps):
                x, _ = s.decode(x, feats[lvl])
            x = unsqueeze(x)
        return x

    def loss(self, x, cond, mask):
        feats = self.features(cond, x.shape[2], x.shape[3])
        latents, ld = self.encode(x, feats)
        clean = sum(log_prob_clean(z) for z in latents) + ld
        degr = sum(s.log_prob_degraded(z) for s, z in zip(self.shifts, latents)) + ld
        ll = degr * mask + clean * (1 - mask)
        dims = x[0].numel()
        bpd = (dims * math.log(self.cfg["bins"]) - ll) / (dims * math.log(2))
        return bpd.mean()


DEFAULT_CONFIG = dict(
    levels=3, steps=4, transition_steps=2, split_levels=[1], hidden=32, condition_factor=4,
    condition_noise=0.03, nf=16, nb=2, gc=8, bins=32, shift_init=0.1, image_channels=3,
)
PAPER_CONFIG = dict(DEFAULT_CONFIG, steps=16, hidden=64, nf=64, nb=23, gc=32)

# ---------------------------------------------------------------- workloads

N, H, W, C, HID, CC = 8, 32, 32, 12, 64, 32
LAYER_SHAPE = f"{N}×{H}×{W}×{C}"


def flow_loss(y, ld):
    return y.pow(2).mean() + ld.mean()


class Bench:
    def __init__(self, device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def layer(self, module, make_inputs, fn):
        module = module.to(self.device)
        inputs = [t.to(self.device) for t in make_inputs()]
        params = [p for p in module.parameters() if p.requires_grad]

        def fwd():
            with torch.no_grad():
                loss = fn(module, *inputs)
            loss.item()

        xs = [t.clone().requires_grad_(True) for t in inputs]

        def fwd_bwd():
            loss = fn(module, *xs)
            grads = torch.autograd.grad(loss, params + xs)
            grads[-1].sum().item()

        return {"fwd": fwd, "fwdBwd": fwd_bwd}


def workloads(b, device):
    g = torch.Generator().manual_seed(0)

    def randn(*s):
        return torch.randn(*s, generator=g)

    def actnorm():
        m = ActNorm(C)
        with torch.no_grad():
            m.bias.normal_(0, 0.1)
            m.logs.normal_(0, 0.1)
        return b.layer(m, lambda: [randn(N, C, H, W)], lambda mod, x: flow_loss(*mod.encode(x)))

    def invconv():
        return b.layer(InvConv1x1(C, 5), lambda: [randn(N, C, H, W)], lambda mod, x: flow_loss(*mod.encode(x)))

    def coupling():
        return b.layer(Coupling(C, CC, HID), lambda: [randn(N, C, H, W), randn(N, CC, H, W)],
                       lambda mod, x, h: flow_loss(*mod.encode(x, h)))

    def injector():
        return b.layer(Injector(C, CC, HID), lambda: [randn(N, C, H, W), randn(N, CC, H, W)],
                       lambda mod, x, h: flow_loss(*mod.encode(x, h)))

    def shift():
        return b.layer(LatentShift(C, 0.5, 13), lambda: [randn(N, C, H, W)],
                       lambda mod, z: mod.log_prob_degraded(z).mean())

    def encoder(nf, nb, gc, shape):
        return lambda: b.layer(Encoder(nf, nb, gc), lambda: [torch.rand(*shape, generator=g)],
                               lambda mod, x: mod(x).pow(2).mean())

    def train(cfg):
        def make():
            torch.manual_seed(3)
            net = DeFlow(cfg).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)
            x = torch.rand(2, 3, 32, 32, generator=g).to(device)
            mask = torch.tensor([0.0, 1.0], device=device)
            it = [0]

            def step():
                it[0] += 1
                xq = x + (torch.rand(x.shape, device=device) - 0.5) / cfg["bins"]
                cond = net.condition_input(xq, 200 + it[0])
                opt.zero_grad(set_to_none=True)
                loss = net.loss(xq, cond, mask)
                loss.backward()
                opt.step()
                loss.item()

            return {"step": step}

        return make

    def sample():
        torch.manual_seed(3)
        net = DeFlow(DEFAULT_CONFIG).to(device)
        for m in net.modules():
            if isinstance(m, InvConv1x1):
                m.prepare_inverse()
        x = torch.rand(1, 3, 64, 64, generator=g).to(device)
        it = [0]

        def run():
            it[0] += 1
            with torch.no_grad():
                cond = net.condition_input(x, it[0])
                feats = net.features(cond, 64, 64)
                latents, _ = net.encode(x, feats)
                shifted = [z + s.sample(z.shape) for s, z in zip(net.shifts, latents)]
                y = net.decode(shifted, feats).clamp(0, 1)
            y.sum().item()

        return {"sample": run}

    return [
        ("actNorm", LAYER_SHAPE, False, actnorm),
        ("invConv1x1", LAYER_SHAPE, False, invconv),
        ("affineCoupling", f"{LAYER_SHAPE} cond {CC} hidden {HID}", False, coupling),
        ("affineInjector", f"{LAYER_SHAPE} cond {CC} hidden {HID}", False, injector),
        ("latentShift.logProbDegraded", LAYER_SHAPE, False, shift),
        ("rrdbEncoder.default", f"{N}×{H}×{W}×3 nf16 nb2 gc8", False, encoder(16, 2, 8, (N, 3, H, W))),
        ("rrdbEncoder.paper", "1×16×16×3 nf64 nb23 gc32", True, encoder(64, 23, 32, (1, 3, 16, 16))),
        ("trainStep.default", "2×32×32×3", False, train(DEFAULT_CONFIG)),
        ("trainStep.paper", "2×32×32×3", True, train(PAPER_CONFIG)),
        ("degrade.default", "1×64×64×3", False, sample),
    ]


def time_reps(b, fn, reps):
    ts = []
    for _ in range(reps):
        b.sync()
        t0 = time.perf_counter()
        fn()
        b.sync()
        ts.append((time.perf_counter() - t0) * 1000)
    return ts


def set_threads(n, device):
    """Set the intra-op thread count and run a small parallel op so the pool exists."""
    if n and n != torch.get_num_threads():
        torch.set_num_threads(n)
        a = torch.randn(256, 256)
        for _ in range(3):
            (a @ a).sum().item()
            F.conv2d(a.view(1, 1, 256, 256), torch.ones(4, 1, 3, 3)).sum().item()


def serve(args, b, device):
    table = {name: (shape, make) for name, shape, _, make in workloads(b, device)}
    prepared = {}

    def reply(o):
        sys.stdout.write("@@bench " + json.dumps(o) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError:
            reply({"error": f"bad request {line[:80]}"})
            continue
        op = req.get("op")
        name = req.get("workload", "")
        try:
            if op == "quit":
                reply({"ok": True})
                break
            elif op == "info":
                reply({"backend": f"torch-{device.type}", "torch": torch.__version__,
                       "threads": torch.get_num_threads(),
                       "device": str(device) if device.type == "cpu"
                       else torch.cuda.get_device_name(device),
                       "workloads": list(table)})
            elif op == "setup":
                if name not in table:
                    raise ValueError(f"unknown workload {name}")
                if name not in prepared:
                    prepared[name] = table[name][1]()
                reply({"shape": table[name][0], "metrics": list(prepared[name])})
            elif op == "run":
                fn = prepared.get(name, {}).get(req.get("metric"))
                if fn is None:
                    raise ValueError(f"not set up: {name} {req.get('metric')}")
                set_threads(req.get("threads"), device)
                reply({"samples": time_reps(b, fn, max(1, int(req.get("reps", 1)))),
                       "threads": torch.get_num_threads()})
            elif op == "dispose":
                prepared.pop(name, None)
                reply({"ok": True})
            else:
                raise ValueError(f"unknown op {op}")
        except Exception as e:  # noqa: BLE001 - reported to the driver
            reply({"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--out", default="")
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    b = Bench(device)
    if args.serve:
        serve(args, b, device)
        return
    only = [s for s in args.only.split(",") if s]
    rows = []
    for name, shape, heavy, make in workloads(b, device):
        if only and not any(o in name for o in only):
            continue
        warmup, reps = (1, 3) if heavy else (2, 10)
        if args.quick:
            warmup, reps = (1, 2) if heavy else (1, 5)
        if device.type == "cuda":
            warmup, reps = (3, 20)
        warmup = args.warmup if args.warmup is not None else warmup
        reps = args.reps if args.reps is not None else reps
        t_start = time.perf_counter()
        runs = make()
        ms, mins, samples = {}, {}, {}
        for metric in ("fwd", "fwdBwd", "step", "sample"):
            fn = runs.get(metric)
            if fn is None:
                continue
            for _ in range(warmup):
                fn()
            ts = time_reps(b, fn, reps)
            ms[metric] = statistics.median(ts)
            mins[metric] = min(ts)
            samples[metric] = ts
        row = {"workload": name, "backend": f"torch-{device.type}", "shape": shape, "ms": ms,
               "min": mins, "samples": samples, "reps": reps}
        if "sample" in ms:
            row["mpPerS"] = (64 * 64 / 1e6) / (ms["sample"] / 1000)
        rows.append(row)
        print(f"torch: {name} done in {time.perf_counter() - t_start:.1f} s "
              + " ".join(f"{k}={v:.1f}ms" for k, v in ms.items()), file=sys.stderr)
    out = {
        "tool": "deflow bench (PyTorch reference)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "quick": args.quick,
        "rows": rows,
    }
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
