"""The network of the mlp family; this module imports torch, so only ``mlp.py`` imports it, lazily."""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn

__all__ = ["AdamW", "SeededDropout", "TabularMLP", "member_loss", "new_network", "validation_loss"]

#: held while a network draws its first weights from torch's one global random stream
_GLOBAL_STREAM = threading.Lock()
#: added to the seed for the dropout masks' stream, so that it does not replay the first weights' draws
DROPOUT_STREAM = 104_729


class SeededDropout(nn.Dropout):
    """Dropout that draws its masks from the fit's own generator (``generator``; torch's global stream where
    none is set). The search fits a candidate's folds side by side in threads: with one global stream they
    would take its draws in turns the scheduler decides, and a seeded run would not repeat."""

    generator: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.generator is None or not 0.0 < self.p < 1.0:
            return super().forward(x)
        keep = 1.0 - self.p
        return x * torch.empty_like(x).bernoulli_(keep, generator=self.generator) / keep


def new_network(seed: int, *args: Any, **kwargs: Any) -> TabularMLP:
    """A ``TabularMLP`` whose first weights are those of ``seed``, whatever other threads draw meanwhile (the
    global stream held and restored after), its dropout on a generator of its own from the same seed."""
    with _GLOBAL_STREAM, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TabularMLP(*args, **kwargs)
    net.seed_dropout(torch.Generator().manual_seed(seed + DROPOUT_STREAM))
    return net


class TabularMLP(nn.Module):
    """Numbers and one embedding per categorical column, concatenated, through ReLU layers.

    With ``members`` k > 1 it is k networks in one, as TabM-mini (Gorishniy et al., 2024) builds them: each
    member multiplies the input by its own vector (random signs at the start, learned), then every member goes
    through the same hidden layers, and each has its own output layer. The members learn on the same batches,
    each its own loss; their mean is the answer. ``forward`` returns (rows, k, outputs) then, (rows, outputs)
    for one member."""

    members: int = 1  # a network pickled before members existed has one

    def __init__(self, n_num: int, cards: list[int], n_out: int, *, hidden: int, layers: int,
                 dropout: float, members: int = 1) -> None:
        super().__init__()
        # one extra row per embedding for missing or unseen codes
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, min(16, int(round(1.6 * (c + 1) ** 0.56))))
                                        for c in cards)
        width = n_num + sum(int(min(16, round(1.6 * (c + 1) ** 0.56))) for c in cards)
        self.members = members
        if members > 1:
            self.adapter = nn.Parameter(torch.randint(0, 2, (members, width)).float() * 2 - 1)
        blocks: list[Any] = []
        for i in range(layers):
            out = hidden if i == 0 else max(hidden // 2, 32)
            blocks += [nn.Linear(width, out), nn.ReLU(), SeededDropout(dropout)]
            width = out
        if members > 1:  # k output layers, each initialised as nn.Linear initialises one
            bound = 1 / width ** 0.5
            self.head_weight = nn.Parameter(torch.empty(members, width, n_out).uniform_(-bound, bound))
            self.head_bias = nn.Parameter(torch.empty(members, 1, n_out).uniform_(-bound, bound))
        else:
            blocks.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*blocks)

    def seed_dropout(self, generator: Any) -> None:
        """The generator the dropout layers draw from (None: torch's global stream; the trained network
        keeps none, so it pickles as before)."""
        for m in self.body:
            if isinstance(m, SeededDropout):
                m.generator = generator

    def dropout_generator(self) -> Any:
        """The generator the dropout layers draw from (``seed_dropout``), None where they have none."""
        return next((m.generator for m in self.body if isinstance(m, SeededDropout)), None)

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        parts = [num] + [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
        x = torch.cat(parts, dim=1)
        if self.members == 1:
            return self.body(x)
        h = self.body(x[None] * self.adapter[:, None, :])  # (k, rows, width): Linear acts on the last axis
        return (torch.bmm(h, self.head_weight) + self.head_bias).transpose(0, 1)


class AdamW:
    """AdamW (decoupled weight decay), the update of ``torch.optim.AdamW``.

    Written out because ``torch.optim`` imports torch's compiler stack on first use: seconds of a small
    time budget (7 s on a busy 2-core machine), before the first step.
    """

    def __init__(self, params: Any, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)


def member_loss(loss_fn: Any, out: Any, target: Any, regression: bool) -> Any:
    """Each row's training loss: with several members (out: rows, members, outputs) each member's own loss,
    averaged over the members, so that each learns as if alone."""
    if out.dim() == 2:
        return loss_fn(out[:, 0] if regression else out, target)
    rows, k = out.shape[:2]
    if regression:
        return loss_fn(out[..., 0], target[:, None].expand(rows, k)).mean(dim=1)
    return loss_fn(out.reshape(rows * k, -1), target.repeat_interleave(k)).reshape(rows, k).mean(dim=1)


def validation_loss(loss_fn: Any, out: Any, target: Any, regression: bool, weight: Any = None) -> float:
    """The validation loss of what the network answers: with several members, of their mean (probabilities
    for classes), as ``predict_raw`` answers; with ``weight``, each row's loss counts for its weight."""
    if out.dim() == 2:
        rows = loss_fn(out[:, 0] if regression else out, target)
    elif regression:
        rows = loss_fn(out[..., 0].mean(dim=1), target)
    else:
        p = torch.softmax(out, dim=-1).mean(dim=1)
        rows = -torch.log(p.gather(1, target[:, None]).clamp_min(1e-15))[:, 0]
    return float(rows.mean() if weight is None else (rows * weight).sum() / weight.sum().clamp_min(1e-12))
