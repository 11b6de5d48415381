"""Saved-for-backward tensor accounting (DESIGN.md §5).

Counts the bytes that autograd keeps alive for the backward pass, storage by
storage, deterministically and on any device (CPU included). Parameters and
buffers are skipped: they are alive whatever the training method.
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

    Args:
        ignore (nn.Module | Iterable[nn.Module], optional): Modules whose
            parameters and buffers are not counted. Defaults to None.
    """

    def __init__(self,
                 ignore: Optional[nn.Module | Iterable[nn.Module]] = None
                 ) -> None:
        modules = [ignore] if isinstance(ignore, nn.Module) else list(
            ignore or [])
        self._ignored = {
            id(t)
            for m in modules
            for t in (*m.parameters(), *m.buffers())
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

    def _pack(self, tensor: torch.Tensor):
        if id(tensor) in self._ignored or isinstance(tensor, nn.Parameter):
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
