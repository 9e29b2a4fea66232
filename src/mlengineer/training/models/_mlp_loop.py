"""The mlp family's epochs, kept so that a fit can go on where it stopped (``MLPModel.resume``).

A network the plan stopped at its cap on epochs while its validation loss still fell (jungle chess: best at
epoch 33 of 36 in 9 planned seconds; alone, 90 epochs in 30 s gave 0.073 validation log loss against 0.141)
goes on from its last epoch with its optimiser's state, its batches' and its dropout's random streams: the same
epochs fitted in one go or in two give the same network. Only the search's leader keeps its loop
(``FitContext.keep_training``; ``continuation.release`` drops the others').
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from .base import Deadline

#: after this many epochs without a better validation loss the step shrinks (a plateau), and after the
#: last the fit stops
PLATEAU_EPOCHS = (5, 10)
STOP_EPOCHS = 14
#: what a plateau multiplies the step by (a refit on all rows replays it at the same epochs)
PLATEAU_STEP = 0.3


class EpochLoop:
    """A network's training state between epochs: the network and its optimiser, the rows as tensors, the random
    streams, and early stopping's record (the best epoch and its weights, the epochs since, the step's drops).

    ``replay``: a refit on all rows (no validation rows) shrinks the step at these epochs, as the validated fit
    did. ``train`` and ``valid`` end with the rows' weights (None: each row counts once)."""

    def __init__(self, torch: Any, net: Any, opt: Any, loss: Any, train: tuple[Any, Any, Any, Any],
                 valid: tuple[Any, Any, Any, Any] | None, *, regression: bool, batch: int, rng: np.random.Generator,
                 replay: list[int] | None, dropout: Any) -> None:
        self.torch, self.net, self.opt, self.loss = torch, net, opt, loss
        self.num, self.cat, self.target, self.weight = train
        self.valid, self.regression, self.batch, self.rng = valid, regression, batch, rng
        self.replay, self.dropout = replay, dropout
        self.epoch, self.best_epoch, self.stale = 0, 0, 0
        self.best_loss, self.best_state = math.inf, None
        self.drops: list[int] = []
        self.last_state: dict[str, Any] | None = None  # the weights at the last epoch, where they are not the best

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping ended the fit (its patience ran out): going on would stop at once."""
        return self.stale >= STOP_EPOCHS

    def run(self, epochs: int, deadline: Deadline) -> None:
        """Up to ``epochs`` more epochs, stopped early on the validation rows (where there are any) and at the
        ``deadline``; the network is left at its best epoch's weights, ready to predict."""
        from ._torch_net import member_loss, validation_loss

        torch, net, opt, n = self.torch, self.net, self.opt, len(self.num)
        if self.last_state is not None:  # going on: from the last epoch's weights, not the best one's
            net.load_state_dict(self.last_state)
        net.seed_dropout(self.dropout)
        end = self.epoch + epochs
        while self.epoch < end and not self.stopped_early:
            self.epoch += 1
            net.train()
            order = torch.from_numpy(self.rng.permutation(n))
            for s in range(0, n, self.batch):
                idx = order[s:s + self.batch]
                if len(idx) < 2:
                    continue
                loss = member_loss(self.loss, net(self.num[idx], self.cat[idx]), self.target[idx], self.regression)
                w = self.weight
                # a batch of rows that all weigh 0 moves nothing (rather than dividing by 0)
                loss = (loss * w[idx]).sum() / w[idx].sum().clamp_min(1e-12) if w is not None else loss.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if deadline.passed():
                    break
            if self.replay is not None and self.epoch in self.replay:
                opt.lr *= PLATEAU_STEP
            if self.valid is not None:
                vnum, vcat, vtarget, vweight = self.valid
                net.eval()
                with torch.inference_mode():
                    v = validation_loss(self.loss, net(vnum, vcat), vtarget, self.regression, vweight)
                if v < self.best_loss - 1e-6:
                    self.best_loss, self.best_state = v, copy.deepcopy(net.state_dict())
                    self.best_epoch, self.stale = self.epoch, 0
                else:
                    self.stale += 1
                    if self.stale in PLATEAU_EPOCHS:  # a plateau: take smaller steps before giving up
                        self.drops.append(self.epoch)
                        opt.lr *= PLATEAU_STEP
            if deadline.passed():
                break
        self.last_state = None
        if self.best_state is not None:
            if self.best_epoch != self.epoch:
                self.last_state = copy.deepcopy(net.state_dict())
            net.load_state_dict(self.best_state)
        net.eval()
        net.seed_dropout(None)  # the trained network keeps no generator: it pickles as before
