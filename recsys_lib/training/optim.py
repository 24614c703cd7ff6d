"""AdamW for a network whose embedding tables take row-sparse gradients (a step touches a few
rows) and whose other layers take dense ones, at a cost per step that does not grow with the tables."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch


class RowAdam(torch.optim.Optimizer):
    """:class:`torch.optim.AdamW` for every parameter, where a row-sparse parameter pays only for the
    rows a step touches.

    AdamW keeps moving a row that a step does not touch: its moments decay and the weights follow
    the fading momentum (and weight decay). Lazy Adam (:class:`torch.optim.SparseAdam`, TensorFlow's
    LazyAdam) skips such rows, so a rare row moves about a tenth as far per gradient as under AdamW;
    measured on GRU4Rec that cost a little validation NDCG@10 on every seed. Here a row records the
    step it was last brought up to; when it is touched again (or :meth:`catch_up` is called for it,
    which a model does for the rows a step is about to read, and for every row before evaluating)
    the steps it missed are applied in closed form (:func:`_catch_up`), then the step's own update.
    Rows a model reads before its forward pass thus hold what AdamW's would, up to the rounding of
    the closed form, eps where it and the gradient's scale are alike, and, under a learning-rate
    schedule, the rate of a row's last step taken for the whole gap.

    Row-sparse gradients are sparse COO tensors (``nn.Embedding(sparse=True)``, or ones a model
    builds with :func:`row_gradient`); repeated rows are summed first. Per parameter and step it
    gathers the touched rows of the weights and two moments once, updates them and writes them back,
    where SparseAdam masks, coalesces and adds sparse tensors several times (``benchmarks/mf_step.py``).
    Dense gradients take AdamW's update op for op. A parameter must take one kind of gradient
    throughout.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not (0.0 <= betas[0] < 1.0 and 0.0 < betas[1] < 1.0):
            raise ValueError(
                f"RowAdam needs lr > 0, eps > 0, weight_decay >= 0, beta1 in [0, 1) and beta2 in (0, 1); "
                f"got {lr}, {eps}, {weight_decay}, {betas}"
            )
        if betas[0] >= betas[1] ** 0.5:
            raise ValueError(
                f"RowAdam needs beta1 < sqrt(beta2), or a missed step's move would not fade "
                f"(the default is 0.9, 0.999); got betas={betas}"
            )
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's, then the row bookkeeping back to its own dtypes (torch casts every state tensor
        but ``step`` to its parameter's)."""
        super().load_state_dict(state_dict)
        for state in self.state.values():
            if "last_step" in state:
                state["last_step"] = state["last_step"].long()
                state["last_lr"] = state["last_lr"].to(_precise(state["last_lr"].device))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update: AdamW's for the rows each row-sparse gradient touches (after the steps they
        missed) and for a dense gradient; a parameter without a gradient is skipped. Returns
        ``closure()``'s loss, if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                if grad.is_sparse:
                    _row_step(param, grad, state, group)
                else:
                    _dense_step(param, grad, state, group)
        return loss

    @torch.no_grad()
    def catch_up(self, rows: Mapping[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Bring rows of the row-sparse parameters to the current step: the zero-gradient AdamW
        steps they missed since they were last touched (:func:`_catch_up`). ``rows`` maps a
        parameter to the row indices about to be read (any shape, repeats allowed); None brings
        every row of every such parameter, so the whole table is what AdamW would hold now.

        A model calls it with the rows a step reads before its forward pass, so the step sees and
        updates the same weights as under AdamW, and with None before evaluating or saving them.
        """
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state[param]
                if "last_step" not in state or (rows is not None and param not in rows):
                    continue
                if rows is None:
                    read = torch.nonzero(state["last_step"] < state["step"]).squeeze(1)
                else:
                    read = torch.unique(rows[param].reshape(-1))
                _catch_up_rows(param, state, read, group, state["step"])


def _row_step(param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
    """AdamW's step for the rows ``grad`` touches, after the steps they missed since they were last
    touched (:func:`_catch_up`)."""
    if "last_step" not in state:  # the step each row was last brought to, and the lr of that step
        state["last_step"] = torch.zeros(len(param), dtype=torch.int64, device=param.device)
        state["last_lr"] = torch.full((len(param),), group["lr"], dtype=_precise(param.device), device=param.device)
    rows, values = _summed_rows(grad)  # (n,), (n, *row_shape)
    _catch_up_rows(param, state, rows, group, state["step"] - 1)
    beta1, beta2 = group["betas"]
    weights = param.index_select(0, rows)
    exp_avg = state["exp_avg"].index_select(0, rows)
    exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
    if group["weight_decay"]:
        weights.mul_(1 - group["lr"] * group["weight_decay"])
    exp_avg.mul_(beta1).add_(values, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
    step_size = group["lr"] / (1 - beta1 ** state["step"])
    denominator = (exp_avg_sq.sqrt() / (1 - beta2 ** state["step"]) ** 0.5).add_(group["eps"])
    weights.addcdiv_(exp_avg, denominator, value=-step_size)
    _write_rows(param, state, rows, group, weights, exp_avg, exp_avg_sq, state["step"])


def _catch_up_rows(
    param: torch.Tensor, state: dict[str, Any], rows: torch.Tensor, group: dict[str, Any], now: int
) -> None:
    """Bring those of ``rows`` (n,) unique that are behind step ``now`` up to it (:func:`_catch_up`);
    rows already there are not read (most of them, when steps read much of the table)."""
    last = state["last_step"].index_select(0, rows)
    behind = last < now
    rows, last = rows[behind], last[behind]
    if len(rows) == 0:
        return
    weights = param.index_select(0, rows)
    exp_avg = state["exp_avg"].index_select(0, rows)
    exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
    _catch_up(weights, exp_avg, exp_avg_sq, last, state["last_lr"].index_select(0, rows), now, group)
    _write_rows(param, state, rows, group, weights, exp_avg, exp_avg_sq, now)


def _write_rows(
    param: torch.Tensor,
    state: dict[str, Any],
    rows: torch.Tensor,
    group: dict[str, Any],
    weights: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
) -> None:
    """Write ``rows``' new weights and moments back, marked as brought to ``step`` at the current rate."""
    param.index_copy_(0, rows, weights)
    state["exp_avg"].index_copy_(0, rows, exp_avg)
    state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
    state["last_step"].index_fill_(0, rows, step)
    state["last_lr"].index_fill_(0, rows, group["lr"])  # a gap starting now moves at about this rate


def _catch_up(
    weights: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    last: torch.Tensor,
    lr: torch.Tensor,
    now: int,
    group: dict[str, Any],
) -> None:
    """Bring rows last updated at step ``last`` (n,), at learning rate ``lr`` (n,), to step
    ``now``: the ``k = now - last`` AdamW steps with a zero gradient that a dense table would have
    taken, in place on the rows' weights and moments (n, *row_shape).

    Step ``s = last + j`` of the gap (j = 1..k) decays the weights by ``d = 1 - lr * weight_decay``,
    the moments by beta1 and beta2, and still moves the weights along the fading momentum, by
    ``w_j m / (x_j sqrt(v) + eps)`` with ``w_j = lr beta1^j / c1(s)`` and
    ``x_j = sqrt(beta2^j / c2(s))`` (c1, c2: Adam's bias corrections). The moments and the decay
    are exact. The movement is summed as ``lr m / (sqrt(v) / A + eps / B)`` with
    ``B = sum_j beta1^j / c1(s)`` and ``A = sum_j beta1^j / c1(s) / x_j``, both exact sums (the
    precomputed series of :func:`_momentum_series`); the sum itself is then exact when eps or
    ``sqrt(v)`` dominates the denominator, and close between. Approximated: the learning rate (under
    a schedule) is the one of the row's last step for the whole gap and the decay of the movement is
    taken whole (the terms fade as beta1^j, so only a gap's first tens of steps move a row).
    """
    beta1, beta2 = group["betas"]
    shape = (-1,) + (1,) * (weights.ndim - 1)
    precise = _precise(weights.device)
    gap = (now - last).to(precise)  # (n,) >= 0
    tiny = torch.finfo(weights.dtype).tiny  # a row with no gap: A = B = 0, no movement
    if beta1 == 0:  # no momentum: a missed step moves nothing, only decays
        scaled = plain = torch.full_like(gap, tiny, dtype=weights.dtype).view(shape)
    else:
        series_a, series_b = _momentum_series(beta1, beta2, weights.device)
        scaled = _gap_sum(*series_a, last, now).to(weights.dtype).clamp(min=tiny).view(shape)  # A
        plain = _gap_sum(*series_b, last, now).to(weights.dtype).clamp(min=tiny).view(shape)  # B
    decay = (1 - lr * group["weight_decay"]) ** gap
    movement = exp_avg / (exp_avg_sq.sqrt() / scaled + group["eps"] / plain)
    weights.mul_(decay.to(weights.dtype).view(shape)).sub_(movement.mul_((lr * decay).to(weights.dtype).view(shape)))
    exp_avg.mul_((beta1**gap).to(weights.dtype).view(shape))
    exp_avg_sq.mul_((beta2**gap).to(weights.dtype).view(shape))


def _gap_sum(ratio: float, series: torch.Tensor, last: torch.Tensor, now: int) -> torch.Tensor:
    """``sum_{j=1..k} q^j g(last + j)`` for each row (k = now - last) from the series R of ratio q:
    ``q (R(last + 1) - q^k R(now + 1))``; (n,) in the series' dtype (float64 but on MPS)."""
    end = len(series) - 1
    gap = (now - last).to(series.dtype)
    return ratio * (series[(last + 1).clamp(max=end)] - ratio**gap * series[min(now + 1, end)])


Series = tuple[float, torch.Tensor]


@functools.cache
def _momentum_series(beta1: float, beta2: float, device: torch.device) -> tuple[Series, Series]:
    """``(q, R)`` for the sums A and B of :func:`_catch_up`: ``R(s) = sum_{i >= 0} q^i g(s + i)`` for
    steps ``s = 0, 1, ...`` (float64; entry 0 unused, the last one stands for every later step,
    where g is constant to 1e-7), with ``q = beta1 / sqrt(beta2)``, ``g(s) = sqrt(c2(s)) / c1(s)``
    for A and ``q = beta1``, ``g(s) = 1 / c1(s)`` for B; ``c1(s) = 1 - beta1^s``, ``c2(s) = 1 - beta2^s``.
    """
    settled = max(math.ceil(math.log(1e-7) / math.log(beta)) for beta in (beta1, beta2))

    def series(ratio: float, numerator: bool) -> Series:
        terms = math.ceil(math.log(1e-12) / math.log(ratio))
        steps = np.arange(1, settled + terms + 1, dtype=np.float64)
        values = (np.sqrt(1 - beta2**steps) if numerator else 1.0) / (1 - beta1**steps)
        sums = np.correlate(values, ratio ** np.arange(terms, dtype=np.float64), mode="valid")
        return ratio, torch.from_numpy(np.concatenate([[np.nan], sums])).to(device, _precise(device))

    return series(beta1 / beta2**0.5, numerator=True), series(beta1, numerator=False)


def _precise(device: torch.device) -> torch.dtype:
    """float64 for the row bookkeeping (a decay of 1 - 1e-8 per step is 1.0 in float32), float32 on
    Apple's MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _dense_step(param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
    """AdamW's update, operation for operation as torch's single-tensor implementation (what
    :class:`torch.optim.AdamW` runs on CPU tensors; on CUDA it runs a multi-tensor one, equal to
    float rounding)."""
    beta1, beta2 = group["betas"]
    if group["weight_decay"]:
        param.mul_(1 - group["lr"] * group["weight_decay"])
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = group["lr"] / (1 - beta1 ** state["step"])
    denominator = (state["exp_avg_sq"].sqrt() / (1 - beta2 ** state["step"]) ** 0.5).add_(group["eps"])
    param.addcdiv_(state["exp_avg"], denominator, value=-step_size)


def row_gradient(table: torch.Tensor, rows: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """A sparse COO gradient for ``table``: ``grads[k]`` for row ``rows[k]`` (rows may repeat).

    rows (n,) int64, grads (n, *table.shape[1:]) -> a tensor shaped like ``table``.
    """
    return torch.sparse_coo_tensor(rows.unsqueeze(0), grads, table.shape, check_invariants=False)


def _summed_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(unique rows, summed values) of a sparse COO gradient with sparse dimension 1."""
    if grad.is_coalesced():
        return grad.indices()[0], grad.values()
    rows, inverse = torch.unique(grad._indices()[0], return_inverse=True)
    values = grad._values()
    summed = values.new_zeros((len(rows), *values.shape[1:])).index_add_(0, inverse, values)
    return rows, summed
