"""One-way point-to-point traffic between two pipeline stages."""
import pickle
import queue
import threading
from collections import deque
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ['StageLink']

_END = -1


class StageLink:
    """Messages from rank ``src`` to rank ``dst`` through a bounded queue.

    A message is a picklable ``meta`` object (it must carry the ``step`` it
    belongs to) and a list of tensors, sent raw. The sender posts
    asynchronous ``isend``\\ s and goes on computing; it waits only when
    ``depth`` messages are still unreceived. The receiver runs a background
    thread that receives up to ``depth`` messages ahead into a queue, so the
    transfer of step t+1 overlaps the receiver's compute of step t.
    :meth:`receive` raises a ``TimeoutError`` naming both ranks and the step
    when nothing arrives within ``timeout`` seconds instead of hanging.

    Every rank of ``group`` may build the link; only ``src`` and ``dst`` do
    anything with it.

    Args:
        src (int): Global rank that sends.
        dst (int): Global rank that receives.
        group: A process group holding ``src`` and ``dst`` used by this link
            only (its traffic must not interleave with another link's).
        depth (int): Messages in flight before the sender waits (and
            received ahead before the receiving thread waits); 0 means
            unbounded. Defaults to 2.
        timeout (float): Seconds :meth:`receive` waits. Defaults to 1800.
        device (str): Device the tensors travel on (``'cpu'`` for gloo,
            ``'cuda'`` for NCCL). Defaults to ``'cpu'``.
    """

    def __init__(self,
                 src: int,
                 dst: int,
                 group,
                 depth: int = 2,
                 timeout: float = 1800.,
                 device: str = 'cpu') -> None:
        if depth < 0:
            raise ValueError(f'depth must be >= 0, got {depth}')
        self.src, self.dst = src, dst
        self.group = group
        self.depth = depth
        self.timeout = timeout
        self.device = device
        self._pending: deque = deque()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread: Optional[threading.Thread] = None
        rank = dist.get_rank()
        if rank == dst:
            self._thread = threading.Thread(
                target=self._receive_loop, daemon=True,
                name=f'StageLink-{src}-to-{dst}')
            self._thread.start()

    # ------------------------------------------------------------------
    # sending
    def _isend(self, tensor: Tensor):
        return dist.isend(tensor, self.dst, group=self.group)

    def send(self, meta: Any, tensors: Sequence[Tensor] = ()) -> None:
        """Post one message; wait only if ``depth`` are unreceived.

        Args:
            meta (Any): Picklable description (with its ``step``).
            tensors (Sequence[Tensor]): Tensors sent raw (detached copies
                on :attr:`device`).
        """
        tensors = [t.detach().to(self.device).contiguous() for t in tensors]
        specs = [(tuple(t.shape), t.dtype) for t in tensors]
        payload = torch.frombuffer(
            bytearray(pickle.dumps((meta, specs))), dtype=torch.uint8)
        header = torch.tensor([payload.numel()], dtype=torch.int64)
        parts = [header.to(self.device), payload.to(self.device), *tensors]
        self._pending.append([self._isend(part) for part in parts] + parts)
        while self.depth and len(self._pending) > self.depth:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        for item in self._pending.popleft():
            if not isinstance(item, Tensor):
                item.wait()

    def close(self) -> None:
        """Sender: post the end mark and wait for everything.
        Receiver: wait for the end mark (at most ``timeout`` seconds)."""
        if dist.get_rank() == self.src:
            end = torch.tensor([_END], dtype=torch.int64, device=self.device)
            self._pending.append([self._isend(end), end])
            while self._pending:
                self._wait_oldest()
        if self._thread is not None:
            self._thread.join(self.timeout)

    # ------------------------------------------------------------------
    # receiving
    def _recv(self, tensor: Tensor) -> Tensor:
        dist.recv(tensor, self.src, group=self.group)
        return tensor

    def _receive_loop(self) -> None:
        try:
            while True:
                header = self._recv(
                    torch.empty(1, dtype=torch.int64, device=self.device))
                size = int(header.item())
                if size == _END:
                    self._queue.put(None)
                    return
                payload = self._recv(
                    torch.empty(size, dtype=torch.uint8, device=self.device))
                meta, specs = pickle.loads(payload.cpu().numpy().tobytes())
                tensors = [
                    self._recv(torch.empty(shape, dtype=dtype,
                                           device=self.device))
                    for shape, dtype in specs
                ]
                self._queue.put((meta, tensors))
        except Exception as exc:  # the sender died, the group broke
            self._queue.put(exc)

    def _unpack(self, item, step: int) -> Tuple[Any, List[Tensor]]:
        if item is None:
            raise RuntimeError(
                f'rank {self.dst}: rank {self.src} ended the pipeline before '
                f'step {step}')
        if isinstance(item, Exception):
            raise RuntimeError(
                f'rank {self.dst}: receiving step {step} from rank '
                f'{self.src} failed: {item}') from item
        meta, tensors = item
        if meta['step'] != step:
            raise RuntimeError(
                f'rank {self.dst} expected step {step} from rank {self.src}, '
                f'got step {meta["step"]}: the stages run out of step')
        return meta, tensors

    def receive(self, step: int) -> Tuple[Any, List[Tensor]]:
        """The message of ``step``.

        Args:
            step (int): The step the message must belong to.

        Returns:
            tuple: ``(meta, tensors)``.

        Raises:
            TimeoutError: Nothing arrived within :attr:`timeout` seconds.
        """
        try:
            item = self._queue.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(
                f'rank {self.dst}: no data from rank {self.src} for step '
                f'{step} within {self.timeout:g} s (did rank {self.src} stop '
                'or fall behind?)') from None
        return self._unpack(item, step)
