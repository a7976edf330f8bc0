"""PyTorch eager: ``index_select``, in-place ``addmv_`` / ``sub_(alpha=)``; autograd with ``grad = None``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmarks.references.base import Reference, batch_slices


class _Torch(Reference):
    backend = "torch"
    device = torch.device("cpu")

    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(X)).to(self.device)
        self.y = torch.from_numpy(np.ascontiguousarray(y)).to(self.device)

    def device_order(self, order: np.ndarray) -> Any:
        return torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def epoch_loss(self) -> float:
        with torch.no_grad():
            r = torch.addmv(self.b, self.X, self.w) - self.y
            return float(0.5 * (r * r).mean())

    def params(self) -> tuple[np.ndarray, float]:
        return self.w.detach().cpu().double().numpy(), float(self.b.detach().cpu()[0])


class TorchAnalyticBuffers(_Torch):
    """Hand-derived gradient, gathered into reused buffers with ``out=``, updated with ``addmv_``."""

    grad = "analytic"
    idiom = "index_select(out=) buffers, addmv(out=), w.addmv_(X_bᵀ, r, alpha=-lr/m), b.sub_(alpha=)"

    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        super().setup(X, y)
        dtype = self.X.dtype
        self.xb = torch.empty((self.batch_size, self.d), dtype=dtype, device=self.device)
        self.yb = torch.empty(self.batch_size, dtype=dtype, device=self.device)
        self.r = torch.empty(self.batch_size, dtype=dtype, device=self.device)

    def reset(self) -> None:
        self.w = torch.tensor(self.w0, device=self.device)
        self.b = torch.tensor(self.b0, device=self.device)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        with torch.no_grad():
            for start, stop in batch_slices(len(order), self.batch_size):
                m = stop - start
                idx = order[start:stop]
                xb, yb, r = self.xb[:m], self.yb[:m], self.r[:m]
                torch.index_select(X, 0, idx, out=xb)
                torch.index_select(y, 0, idx, out=yb)
                torch.addmv(yb, xb, w, beta=-1, out=r)  # r = X_b w − y_b
                r.add_(b)
                w.addmv_(xb.t(), r, alpha=-lr / m)
                b.sub_(r.sum(), alpha=lr / m)


class TorchAnalytic(_Torch):
    """Hand-derived gradient on freshly gathered batches (no ``out=`` buffers)."""

    grad = "analytic"
    idiom = "index_select, addmv, w.addmv_(X_bᵀ, r, alpha=-lr/m), b.sub_(alpha=)"

    def reset(self) -> None:
        self.w = torch.tensor(self.w0, device=self.device)
        self.b = torch.tensor(self.b0, device=self.device)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        with torch.no_grad():
            for start, stop in batch_slices(len(order), self.batch_size):
                m = stop - start
                idx = order[start:stop]
                xb = X.index_select(0, idx)
                r = torch.addmv(b, xb, w).sub_(y.index_select(0, idx))
                w.addmv_(xb.t(), r, alpha=-lr / m)
                b.sub_(r.sum(), alpha=lr / m)


class TorchAnalyticMatmul(_Torch):
    """Hand-derived gradient as ``r @ X_b`` (``matmul``), applied with ``sub_(alpha=)``."""

    grad = "analytic"
    idiom = "index_select, addmv, gw = r @ X_b (matmul), w.sub_(gw, alpha=lr/m)"

    def reset(self) -> None:
        self.w = torch.tensor(self.w0, device=self.device)
        self.b = torch.tensor(self.b0, device=self.device)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        with torch.no_grad():
            for start, stop in batch_slices(len(order), self.batch_size):
                m = stop - start
                idx = order[start:stop]
                xb = X.index_select(0, idx)
                r = torch.addmv(b, xb, w).sub_(y.index_select(0, idx))
                w.sub_(torch.matmul(r, xb), alpha=lr / m)
                b.sub_(r.sum(), alpha=lr / m)


class TorchBackward(_Torch):
    """Autograd: ``loss.backward()``, update under ``no_grad`` with ``sub_(alpha=)``, then ``grad = None``."""

    grad = "autodiff"
    idiom = "index_select, loss.backward(), p.sub_(p.grad, alpha=lr), p.grad = None"

    def reset(self) -> None:
        self.w = torch.tensor(self.w0, device=self.device, requires_grad=True)
        self.b = torch.tensor(self.b0, device=self.device, requires_grad=True)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        for start, stop in batch_slices(len(order), self.batch_size):
            idx = order[start:stop]
            r = torch.addmv(b, X.index_select(0, idx), w) - y.index_select(0, idx)
            loss = 0.5 * (r * r).mean()
            loss.backward()
            with torch.no_grad():
                w.sub_(w.grad, alpha=lr)
                b.sub_(b.grad, alpha=lr)
            w.grad = None
            b.grad = None


class TorchAutogradGrad(_Torch):
    """Autograd through ``torch.autograd.grad`` (no ``.grad`` attributes at all)."""

    grad = "autodiff"
    idiom = "index_select, torch.autograd.grad, p.sub_(g, alpha=lr)"

    def reset(self) -> None:
        self.w = torch.tensor(self.w0, device=self.device, requires_grad=True)
        self.b = torch.tensor(self.b0, device=self.device, requires_grad=True)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        params = (w, b)
        grad = torch.autograd.grad
        for start, stop in batch_slices(len(order), self.batch_size):
            idx = order[start:stop]
            r = torch.addmv(b, X.index_select(0, idx), w) - y.index_select(0, idx)
            gw, gb = grad(0.5 * (r * r).mean(), params)
            with torch.no_grad():
                w.sub_(gw, alpha=lr)
                b.sub_(gb, alpha=lr)


REFERENCES: list[type[Reference]] = [
    TorchAnalyticBuffers,
    TorchAnalytic,
    TorchAnalyticMatmul,
    TorchBackward,
    TorchAutogradGrad,
]
