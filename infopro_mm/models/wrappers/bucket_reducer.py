"""Bucketed asynchronous gradient all-reduce driven by autograd hooks."""
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ['BucketReducer']


class _Bucket:
    """Parameters whose gradients are averaged by one all-reduce."""

    def __init__(self, params: List[nn.Parameter]) -> None:
        self.params = params
        self.ready: set = set()
        self.work = None
        self.flat: Optional[Tensor] = None

    def complete(self) -> bool:
        """Whether every parameter's gradient is final."""
        return len(self.ready) == len(self.params)


class BucketReducer:
    """Averages gradients across ranks in buckets, as they become final.

    Parameters are grouped into buckets of at most ``bucket_cap_mb`` (a
    bucket never spans two groups). While :meth:`armed`, every parameter's
    post-accumulate-grad hook counts it as ready; a bucket whose parameters
    are all ready starts its asynchronous all-reduce at once, so
    communication overlaps with the rest of the backward and with later
    forwards. Buckets start strictly in index order on every rank (a ready
    bucket waits for the ones before it), which keeps the collectives of all
    ranks matched. :meth:`flush` starts the buckets of a group that are not
    started yet (e.g. holding parameters that got no gradient);
    :meth:`finish` waits for everything and writes the averages back.

    A parameter that got no gradient on any rank keeps ``grad=None``; one
    that got a gradient on some rank gets the average over all ranks (as
    single-process training on the concatenated batch would), because every
    bucket reduces one used-flag per parameter along with the gradients.

    Args:
        groups (Sequence[Sequence[nn.Parameter]]): Parameters per group, in
            the order their gradients become final (InfoPro's local
            modules). Within a group the buckets are filled in reverse
            order, the usual order of a backward pass.
        bucket_cap_mb (float): Bucket size limit. Defaults to 25 (as
            ``torch.nn.parallel.DistributedDataParallel``).
        process_group (optional): The group to reduce over. Defaults to the
            default group.
    """

    def __init__(self,
                 groups: Sequence[Sequence[nn.Parameter]],
                 bucket_cap_mb: float = 25.,
                 process_group=None) -> None:
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group)
        self.buckets: List[_Bucket] = []
        self.group_buckets: List[range] = []
        self._bucket_of = {}
        cap = bucket_cap_mb * 2**20
        for params in groups:
            first = len(self.buckets)
            current: List[nn.Parameter] = []
            size = 0
            for param in reversed(list(params)):
                current.append(param)
                size += param.numel() * param.element_size()
                if size >= cap:
                    self._add_bucket(current)
                    current, size = [], 0
            if current:
                self._add_bucket(current)
            self.group_buckets.append(range(first, len(self.buckets)))
        self._next = 0
        self._armed = False
        for bucket in self.buckets:
            for param in bucket.params:
                param.register_post_accumulate_grad_hook(self._on_grad_ready)

    def _add_bucket(self, params: List[nn.Parameter]) -> None:
        for param in params:
            self._bucket_of[id(param)] = len(self.buckets)
        self.buckets.append(_Bucket(params))

    def arm(self, overlap: bool = True) -> None:
        """Start an iteration whose gradients are reduced.

        Args:
            overlap (bool): Start buckets as their gradients become final.
                With False nothing starts before :meth:`flush` or
                :meth:`finish`. Defaults to True.
        """
        for bucket in self.buckets:
            bucket.ready = set()
            bucket.work = bucket.flat = None
        self._next = 0
        self._armed = overlap

    def _on_grad_ready(self, param: nn.Parameter) -> None:
        if not self._armed:
            return
        bucket = self.buckets[self._bucket_of[id(param)]]
        if id(param) in bucket.ready:
            raise RuntimeError(
                'a parameter received a second gradient in one iteration; '
                'local modules must not share parameters and each must run '
                'one backward per iteration')
        bucket.ready.add(id(param))
        self._start_ready()

    def _start_ready(self) -> None:
        while (self._next < len(self.buckets)
               and self.buckets[self._next].complete()):
            self._start(self._next)

    def _start(self, index: int) -> None:
        bucket = self.buckets[index]
        parts, used = [], []
        for param in bucket.params:
            used.append(float(param.grad is not None))
            parts.append(param.new_zeros(param.numel()) if param.grad is None
                         else param.grad.reshape(-1))
        parts.append(bucket.params[0].new_tensor(used))
        bucket.flat = torch.cat(parts)
        bucket.work = dist.all_reduce(
            bucket.flat, group=self.process_group, async_op=True)
        self._next = index + 1

    def flush(self, group: int) -> None:
        """Start every bucket up to the end of ``group``.

        Args:
            group (int): Index of a group whose gradients are final.
        """
        end = self.group_buckets[group].stop
        while self._next < end:
            self._start(self._next)

    def finish(self) -> None:
        """Start what is left, wait, write averaged gradients back."""
        if self.group_buckets:
            self.flush(len(self.group_buckets) - 1)
        with torch.no_grad():
            for bucket in self.buckets:
                bucket.work.wait()
                flat = bucket.flat
                used = flat[-len(bucket.params):]
                offset = 0
                for param, flag in zip(bucket.params, used.tolist()):
                    value = flat[offset:offset + param.numel()]
                    offset += param.numel()
                    if not flag:
                        continue
                    value = value.view_as(param).div_(self.world_size)
                    if param.grad is None:
                        param.grad = value.clone()
                    else:
                        param.grad.copy_(value)
                bucket.work = bucket.flat = None
        self._armed = False
