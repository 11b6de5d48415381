"""Saved-for-backward tensor accounting (DESIGN.md §5).

Counts the bytes that autograd keeps alive for the backward pass, storage by
storage, deterministically and on any device (CPU included). Parameters and
buffers (and views of them) are skipped: they are alive whatever the
training method.
"""
from typing import Iterable, Optional

import torch
from torch import nn

__all__ = ['SavedTensorTracker']


class _Packed:
    """What autograd stores instead of a saved tensor while tracked.

    Its lifetime is the saved tensor's lifetime in the graph: when autograd
    frees the saved tensor (after backward, or when the graph is dropped),
    this object is collected and the tracker releases the storage.
    """

    __slots__ = ('tensor', 'key', 'tracker')

    def __init__(self, tensor: torch.Tensor, key: int,
                 tracker: 'SavedTensorTracker') -> None:
        self.tensor = tensor
        self.key = key
        self.tracker = tracker

    def __del__(self) -> None:
        self.tracker._release(self.key)


class SavedTensorTracker:
    """Tracks live and peak bytes of tensors saved for backward.

    Use it as a context manager around forward (and backward) passes::

        with SavedTensorTracker(ignore=model) as tracker:
            loss = model(x).sum()
            print(tracker.live_bytes)   # activations kept for backward
            loss.backward()
        print(tracker.peak_bytes)

    A storage shared by several saved tensors (views) is counted once.
    Parameters are never counted, nor are views of them: ``F.linear`` saves
    ``weight.t()``, another tensor object than the parameter, which would
    otherwise count a classifier's weight (8 MB for 2048 x 1000) as an
    activation.

    Args:
        ignore (nn.Module | Iterable[nn.Module], optional): Modules whose
            buffers (and parameters) are not counted either, e.g. the BN
            running statistics. Defaults to None.
    """

    def __init__(self,
                 ignore: Optional[nn.Module | Iterable[nn.Module]] = None
                 ) -> None:
        modules = [ignore] if isinstance(ignore, nn.Module) else list(
            ignore or [])
        self._ignored = {
            t.untyped_storage().data_ptr()
            for m in modules
            for t in (*m.parameters(), *m.buffers()) if t.numel()
        }
        self._refs: dict = {}
        self._bytes: dict = {}
        self.live_bytes = 0
        self.peak_bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(
            self._pack, self._unpack)

    def reset_peak(self) -> None:
        """Restart the peak from the bytes alive now."""
        self.peak_bytes = self.live_bytes

    def _is_weight(self, tensor: torch.Tensor) -> bool:
        if isinstance(tensor, nn.Parameter) or isinstance(
                tensor._base, nn.Parameter):
            return True
        return bool(tensor.numel()) and (tensor.untyped_storage().data_ptr()
                                         in self._ignored)

    def _pack(self, tensor: torch.Tensor):
        if self._is_weight(tensor):
            return tensor
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._refs:
            self._refs[key] += 1
        else:
            self._refs[key] = 1
            self._bytes[key] = storage.nbytes()
            self.live_bytes += self._bytes[key]
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        # Keep a detached alias: holding a saved *output* itself would
        # create a cycle (tensor -> grad_fn -> saved variable -> tensor)
        # that is never freed.
        return _Packed(tensor.detach(), key, self)

    @staticmethod
    def _unpack(packed):
        return packed.tensor if isinstance(packed, _Packed) else packed

    def _release(self, key: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.live_bytes -= self._bytes.pop(key)

    def __enter__(self) -> 'SavedTensorTracker':
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
