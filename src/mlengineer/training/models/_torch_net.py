"""The network of the mlp family; this module imports torch, so only ``mlp.py`` imports it, lazily."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["TabularMLP"]


class TabularMLP(nn.Module):
    """Numbers and one embedding per categorical column, concatenated, through ReLU layers."""

    def __init__(self, n_num: int, cards: list[int], n_out: int, *, hidden: int, layers: int,
                 dropout: float) -> None:
        super().__init__()
        # one extra row per embedding for missing or unseen codes
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, min(16, int(round(1.6 * (c + 1) ** 0.56))))
                                        for c in cards)
        width = n_num + sum(int(min(16, round(1.6 * (c + 1) ** 0.56))) for c in cards)
        blocks: list[Any] = []
        for i in range(layers):
            out = hidden if i == 0 else max(hidden // 2, 32)
            blocks += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        blocks.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*blocks)

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        parts = [num] + [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.body(torch.cat(parts, dim=1))


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
