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
        width = n_num + sum(e.embedding_dim for e in self.embeddings)
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
