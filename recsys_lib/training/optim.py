"""Adam for embedding tables that a step touches a few rows of (row-sparse gradients)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class RowAdam(torch.optim.Optimizer):
    """:class:`torch.optim.SparseAdam`'s update rule (lazy Adam: moments kept and updated for the
    rows a step touches only) with dense row operations instead of sparse-tensor arithmetic.

    Takes the same sparse COO gradients (``nn.Embedding(sparse=True)``, or ones a model builds with
    :func:`row_gradient`); repeated rows are summed first. Per parameter and step it gathers the
    touched rows of the two moments once, updates them and writes them and the parameter rows
    back, where SparseAdam masks, coalesces and adds sparse tensors several times: on a 2M x 64
    table with 1,024-pair batches the MF-BPR step takes about half the time (``benchmarks/mf_step.py``).
    Parameters must only ever receive sparse gradients.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        if lr <= 0 or eps <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"RowAdam needs lr > 0, eps > 0 and betas in [0, 1); got {lr}, {eps}, {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One lazy-Adam update of the rows each parameter's sparse gradient touches; a parameter
        without a gradient is skipped. Returns ``closure()``'s loss, if given. RuntimeError for a
        dense gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if not grad.is_sparse:
                    raise RuntimeError("RowAdam takes sparse (row) gradients only; use Adam for dense parameters")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                rows, values = _summed_rows(grad)  # (n,), (n, *row_shape)
                exp_avg = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(values, alpha=1 - beta1)
                exp_avg_sq = (
                    state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
                )
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                correction1 = 1 - beta1 ** state["step"]
                correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * correction2**0.5 / correction1
                param.index_add_(0, rows, exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"])), alpha=-step_size)
        return loss


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
