"""Saved-for-backward tensor accounting (DESIGN.md §5) and memory sizes.

Counts the bytes that autograd keeps alive for the backward pass, storage by
storage, deterministically and on any device (CPU included). Parameters and
buffers (and views of them) are skipped: they are alive whatever the
training method.
"""
import re
from typing import Any, Callable, Dict, Iterable, Optional, Union

import torch
from torch import nn

__all__ = [
    'SavedTensorTracker', 'format_mib', 'format_size', 'optimizer_of',
    'optimizer_states', 'parse_size'
]


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


_UNITS = {
    'b': 1,
    'kb': 10**3, 'mb': 10**6, 'gb': 10**9, 'tb': 10**12,
    'kib': 2**10, 'mib': 2**20, 'gib': 2**30, 'tib': 2**40,
}
_SIZE = re.compile(r'^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$')


def parse_size(size: Union[int, str]) -> int:
    """Bytes of a memory size: an int (bytes) or a string with a unit.

    ``'10GiB'``, ``'512MiB'`` and ``'1.5 KiB'`` are binary (powers of
    1024), ``'10GB'`` and ``'10MB'`` decimal (powers of 1000), ``'4096'``
    or ``'4096B'`` bytes; units are case-insensitive.

    Args:
        size (int | str): The size.

    Returns:
        int: The size in bytes (> 0).
    """
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f'a memory size is an int (bytes) or a string such '
                        f"as '10GiB', got {size!r}")
    if isinstance(size, str):
        match = _SIZE.match(size)
        unit = match.group(2).lower() if match else None
        if unit is not None and (unit or 'b') in _UNITS:
            size = int(round(float(match.group(1)) * _UNITS[unit or 'b']))
        else:
            raise ValueError(
                f'cannot read memory size {size!r}: write a number and one '
                f"of the units B, KB, MB, GB, TB (powers of 1000) or KiB, "
                f"MiB, GiB, TiB (powers of 1024), e.g. '10GiB'")
    if size <= 0:
        raise ValueError(f'a memory size must be positive, got {size}')
    return size


def format_size(num_bytes: float) -> str:
    """``num_bytes`` in the largest binary unit below it, e.g. '4.09 GiB'."""
    for unit, scale in (('TiB', 2**40), ('GiB', 2**30), ('MiB', 2**20),
                        ('KiB', 2**10)):
        if abs(num_bytes) >= scale:
            return f'{num_bytes / scale:.2f} {unit}'
    return f'{int(num_bytes)} B'


def format_mib(num_bytes: Optional[float]) -> str:
    """``num_bytes`` in MiB for report tables: no decimals from 100 MiB on,
    one below, thousands separated; ``'-'`` for None (not measured)."""
    if num_bytes is None:
        return '-'
    mib = num_bytes / 2**20
    return f'{mib:,.0f}' if abs(mib) >= 100 else f'{mib:,.1f}'


# Per-parameter state tensors (each the parameter's size) that torch's
# optimizers keep after their first step; scalar step counters are left out.
_OPTIMIZER_STATES: Dict[str, Callable[[dict], int]] = {
    'sgd': lambda cfg: int(bool(cfg.get('momentum', 0))),
    'adam': lambda cfg: 2 + int(bool(cfg.get('amsgrad', False))),
    'adamw': lambda cfg: 2 + int(bool(cfg.get('amsgrad', False))),
    'adamax': lambda cfg: 2,
    'nadam': lambda cfg: 2,
    'radam': lambda cfg: 2,
    'adadelta': lambda cfg: 2,
    'rprop': lambda cfg: 2,
    'adagrad': lambda cfg: 1,
    'asgd': lambda cfg: 1,
    'rmsprop': lambda cfg: (1 + int(bool(cfg.get('momentum', 0))) +
                            int(bool(cfg.get('centered', False)))),
}


def optimizer_states(optimizer: Union[str, dict, type]) -> int:
    """How many parameter-sized state tensors an optimizer keeps.

    SGD: 0 (1 with momentum); Adam / AdamW: 2 (3 with ``amsgrad``);
    Adamax, NAdam, RAdam, Adadelta, Rprop: 2; Adagrad, ASGD: 1; RMSprop:
    1, plus 1 with momentum and 1 when centered.

    Args:
        optimizer (str | dict | type): A type name (``'sgd'``,
            ``'AdamW'``), a config such as
            ``dict(type='SGD', momentum=0.9)`` or an optimizer class.

    Returns:
        int: The number of state tensors per parameter.
    """
    cfg = optimizer if isinstance(optimizer, dict) else dict(type=optimizer)
    kind = cfg.get('type')
    name = kind.__name__ if isinstance(kind, type) else str(kind)
    name = name.rsplit('.', 1)[-1].lower()
    if name not in _OPTIMIZER_STATES:
        raise ValueError(
            f'unknown optimizer {kind!r} for memory planning: known are '
            f'{", ".join(sorted(_OPTIMIZER_STATES))}; give one of them as '
            "split.optimizer (e.g. optimizer=dict(type='SGD', momentum=0.9))"
            ' with the same number of state tensors per parameter')
    return _OPTIMIZER_STATES[name](cfg)


def optimizer_of(optim_wrapper: Any) -> Optional[dict]:
    """The ``optimizer`` config of an ``optim_wrapper`` config, if any.

    Args:
        optim_wrapper: A config's ``optim_wrapper`` (a dict; anything else,
            e.g. a built wrapper or None, has no config to read).

    Returns:
        dict | None: A copy of ``optim_wrapper['optimizer']``.
    """
    if isinstance(optim_wrapper, dict) and isinstance(
            optim_wrapper.get('optimizer'), dict):
        return dict(optim_wrapper['optimizer'])
    return None
