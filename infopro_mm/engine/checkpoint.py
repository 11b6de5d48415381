"""Checkpoint layouts of InfoPro and plain models, RNG state for resume.

An ``InfoPro`` model keeps the downstream model under ``architecture.`` and
its local heads under ``local_heads.``; a plain (end-to-end or converted)
checkpoint has the downstream model's own keys. :func:`match_layout` maps
either layout onto either kind of model and refuses a checkpoint whose
architecture keys or shapes differ from the model's, instead of mmengine's
non-strict load that leaves mismatching weights at their initialisation.
"""
import random
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    'ARCHITECTURE_PREFIX', 'CheckpointMismatchError', 'HEADS_PREFIX',
    'get_rng_state', 'match_layout', 'set_rng_state', 'strip_prefixes'
]

ARCHITECTURE_PREFIX = 'architecture.'
HEADS_PREFIX = 'local_heads.'
MAX_LISTED = 8
StateDict = Dict[str, Tensor]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model; the message says how."""


def _listed(keys: List[str]) -> str:
    more = f', ... ({len(keys)} in all)' if len(keys) > MAX_LISTED else ''
    return ', '.join(keys[:MAX_LISTED]) + more


def _is_infopro(keys) -> bool:
    return any(k.startswith(ARCHITECTURE_PREFIX) for k in keys)


def _mismatch(expected: StateDict, given: StateDict) -> List[str]:
    """What differs between two state dicts, one line per kind."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = [
        f'{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}'
        for k in sorted(set(expected) & set(given))
        if hasattr(given[k], 'shape') and given[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f'missing in the checkpoint: {_listed(missing)}')
    if unexpected:
        problems.append(f'not in the model: {_listed(unexpected)}')
    if shapes:
        problems.append('other shape (checkpoint vs model): '
                        f'{_listed(shapes)}')
    return problems


def match_layout(model: nn.Module,
                 state_dict: StateDict,
                 require_heads: bool = False) -> Tuple[StateDict, List[str]]:
    """Map ``state_dict`` onto ``model``'s layout and check it.

    - InfoPro checkpoint into a plain model: the ``architecture.`` prefix is
      removed and the local heads are dropped.
    - Plain checkpoint into an InfoPro model: keys get the prefix; the local
      heads keep their initialisation.
    - The architecture part must match exactly (keys and shapes), else
      :class:`CheckpointMismatchError` names what differs.
    - Local heads of a checkpoint that do not match the model's (another
      split or head config) are dropped, or refused when ``require_heads``
      (resuming).

    Args:
        model (nn.Module): The (unwrapped) model to load into.
        state_dict (dict): The checkpoint's weights (``module.`` prefixes
            already removed).
        require_heads (bool): Refuse a checkpoint whose local heads differ
            from the model's. Defaults to False.

    Returns:
        tuple[dict, list[str]]: The state dict to load with
        ``strict=False`` and notes for the log.
    """
    expected = model.state_dict()
    notes = []
    infopro_model = _is_infopro(expected)
    if _is_infopro(state_dict) and not infopro_model:
        heads = [k for k in state_dict if k.startswith(HEADS_PREFIX)]
        state_dict = {
            (k[len(ARCHITECTURE_PREFIX):]
             if k.startswith(ARCHITECTURE_PREFIX) else k): v
            for k, v in state_dict.items() if not k.startswith(HEADS_PREFIX)
        }
        notes.append('InfoPro checkpoint loaded into the plain architecture'
                     f'; {len(heads)} local-head tensors dropped')
    elif infopro_model and not _is_infopro(state_dict):
        state_dict = {ARCHITECTURE_PREFIX + k: v for k, v in state_dict.items()}
        notes.append('plain checkpoint loaded into the InfoPro architecture;'
                     ' the local heads keep their initialisation')

    def part(sd: StateDict, heads: bool) -> StateDict:
        return {k: v for k, v in sd.items()
                if k.startswith(HEADS_PREFIX) == heads}

    problems = _mismatch(part(expected, False), part(state_dict, False))
    if problems:
        raise CheckpointMismatchError(
            'the checkpoint does not match the model: ' +
            '; '.join(problems) + '. Is it a checkpoint of another config? '
            "For a partial load, use the model's init_cfg=dict(type="
            "'Pretrained', checkpoint=...) instead")
    heads_given = part(state_dict, True)
    heads_expected = part(expected, True)
    head_problems = _mismatch(heads_expected, heads_given)
    if heads_given and not heads_expected:
        state_dict = part(state_dict, False)
        notes.append(f'{len(heads_given)} local-head tensors dropped (the '
                     'model has no local heads: an inference build)')
    elif heads_given and head_problems:
        if require_heads:
            raise CheckpointMismatchError(
                'the local heads of the checkpoint do not match the model '
                '(another split or head config?): ' + '; '.join(head_problems))
        state_dict = part(state_dict, False)
        notes.append('the local heads of the checkpoint do not match this '
                     'split; they keep their initialisation')
    return state_dict, notes


def strip_prefixes(state_dict: StateDict,
                   revise_keys: List[Tuple[str, str]]) -> StateDict:
    """Apply mmengine-style ``(pattern, replacement)`` key revisions."""
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    return state_dict


def get_rng_state() -> dict:
    """The random states of Python, NumPy and torch (CPU and CUDA)."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Optional[dict]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    if not state:
        return
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
