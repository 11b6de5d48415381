"""Module-parallel InfoPro: one local module per process, pipelined."""
from datetime import timedelta
from itertools import chain
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

import torch
import torch.distributed as dist
from mmengine.dist import all_gather_object
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from infopro_mm.models.splitters.base_splitter import State, Tokens
from infopro_mm.registry import MODEL_WRAPPERS
from .stage_link import StageLink

__all__ = ['InfoProModuleParallel', 'StageOptimizerLayout']


def _pack(states: Sequence[State]) -> Tuple[List[Tensor], List[Any]]:
    """The tensors of ``states`` and, for each, what rebuilds it from its
    tensor (None for a plain tensor, the grid shape of :class:`Tokens`)."""
    tensors = [s.seq if isinstance(s, Tokens) else s for s in states]
    layout = [(tuple(s.hw_shape), s.num_extra) if isinstance(s, Tokens)
              else None for s in states]
    return tensors, layout


def _unpack(tensors: Sequence[Tensor], layout: Sequence[Any]) -> List[State]:
    """The states :func:`_pack` took apart."""
    return [
        tensor if spec is None else Tokens(tensor, *spec)
        for tensor, spec in zip(tensors, layout)
    ]


class StageOptimizerLayout:
    """Restricts an optimizer to one stage's parameters and maps its state
    to the single-model layout and back.

    The optimizer is built over the whole model, as the config says; its
    parameter groups are then pruned in place to ``params``, so nothing else
    is ever stepped or holds state. :meth:`to_full` gathers every stage's
    state into the state dict a single-process optimizer of the whole model
    has (parameter indices over the unpruned groups); :meth:`from_full`
    takes this stage's part of such a state dict.

    Args:
        optimizer (torch.optim.Optimizer): Built over the whole model.
        params (Iterable[nn.Parameter]): The parameters this stage trains.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 params: Iterable[nn.Parameter]) -> None:
        own = {id(p) for p in params}
        self.full_index: List[int] = []  # full index of each kept param
        self.group_indices: List[List[int]] = []
        index = 0
        for group in optimizer.param_groups:
            full, kept = [], []
            for param in group['params']:
                full.append(index)
                if id(param) in own:
                    kept.append(param)
                    self.full_index.append(index)
                index += 1
            group['params'] = kept
            self.group_indices.append(full)

    def to_full(self, state: dict) -> dict:
        """The single-model state dict (collective: call on every rank).

        Args:
            state (dict): This stage's optimizer state dict.
        """
        local = {self.full_index[i]: s for i, s in state['state'].items()}
        merged: Dict[int, Any] = {}
        for part in all_gather_object(local):
            merged.update(part)
        groups = [
            dict(group, params=indices)
            for group, indices in zip(state['param_groups'],
                                      self.group_indices)
        ]
        return dict(
            state, state=dict(sorted(merged.items())), param_groups=groups)

    def from_full(self, state: dict) -> dict:
        """This stage's part of a single-model state dict.

        Args:
            state (dict): An optimizer state dict of the whole model.
        """
        if len(state['param_groups']) != len(self.group_indices) or any(
                len(group['params']) != len(indices) for group, indices in
                zip(state['param_groups'], self.group_indices)):
            raise ValueError(
                'the optimizer state does not match this model: parameter '
                'groups of sizes '
                f'{[len(g["params"]) for g in state["param_groups"]]}, the '
                f'model has {[len(i) for i in self.group_indices]}')
        position = {full: i for i, full in enumerate(self.full_index)}
        local = {
            position[i]: s
            for i, s in state['state'].items() if i in position
        }
        groups, start = [], 0
        for group in state['param_groups']:
            count = sum(i in position for i in group['params'])
            groups.append(dict(group, params=list(range(start,
                                                        start + count))))
            start += count
        return dict(state, state=local, param_groups=groups)


class _StageReplica(nn.Module):
    """The tensors one stage trains, as a module for
    ``DistributedDataParallel``, which hooks the gradients of a module's
    parameters and broadcasts its buffers.

    The parameters and buffers are the model's own objects (registered here
    a second time, not copied). :meth:`forward` runs a given function: the
    stage's computation, so that the DDP wrapped around this module
    prepares its reducer for the backward of what the function returns.

    Args:
        params (Sequence[nn.Parameter]): The stage's trainable parameters.
        buffers (Sequence[Tensor]): The stage's buffers.
    """

    def __init__(self, params: Sequence[nn.Parameter],
                 buffers: Sequence[Tensor]) -> None:
        super().__init__()
        self.params = nn.ParameterList(params)
        for index, buffer in enumerate(buffers):
            self.register_buffer(f'buffer{index}', buffer)

    def forward(self, run: Callable[[], Any]) -> Any:
        """Run the stage's computation.

        Args:
            run (Callable): Computes the stage's losses.
        """
        return run()


@MODEL_WRAPPERS.register_module()
class InfoProModuleParallel(nn.Module):
    """Pipelines the local modules of :class:`~infopro_mm.models.InfoPro`
    over processes, one module per rank, optionally replicated.

    Module k needs only module k-1's forward output of the same batch. In
    single-process InfoPro, module k's step t uses h(k-1) computed with
    module k-1's parameters before their step-t update, which is what a
    pipeline delivers while module k-1 already works on batch t+1; so this
    trains exactly what single-process InfoPro trains on the same data
    order (DESIGN.md, invariant 11), with no gradient traffic between the
    stages.

    With K local modules and K x D processes, rank ``d * K + k`` runs
    module k of pipeline (replica) d:

    - stage 0 preprocesses its replica's batch, runs module 0 and its local
      heads, and steps;
    - stage 0 < k < K-1 receives h(k-1), runs module k and its local heads;
    - stage K-1 runs the rest of the architecture and its own task loss;
    - each rank sends its (detached) output (a feature map, or a
      transformer's :class:`Tokens` with their grid shape), the backbone
      outputs of the earlier modules, the data samples and, where a later
      local module's heads need it, the input image to the next stage of
      its pipeline, through a :class:`StageLink` (``isend``, a bounded
      queue of ``queue_depth`` messages);
    - the last stage sends every loss of the batch back to stage 0; rank 0
      logs pipeline 0's :attr:`log_lag` steps late (the pipeline's lag).

    With D > 1 replicas, the D ranks of each stage form one data-parallel
    group: the stage's parameters are wrapped in
    ``torch.nn.parallel.DistributedDataParallel`` over that group, which
    averages their gradients during the stage's backward, so D pipelines
    on D shards of the batch train what one pipeline trains on the whole
    batch (as ``InfoProDDP`` does for single-process InfoPro).

    Every rank's optimizer holds only its module's parameters
    (:meth:`restrict_optimizer`, applied by ``InfoProRunner``). From its
    first :meth:`train_step` on, a rank holds only its own module's
    parameters and buffers (and the data preprocessor's, which every stage
    uses): the tensors the other stages train are freed (size 0) until
    :meth:`synchronize` allocates them again and copies every module's
    tensors from its owner in pipeline 0 to all ranks (before validation,
    checkpoints and at :meth:`close`), so checkpoints have the single-model
    layout; the next :meth:`train_step` frees them again. Differences from
    single-process training: each rank draws its own random numbers
    (dropout masks differ unless dropout is off), gradient clipping and AMP
    loss scaling work per module.

    Train with ``model_wrapper_cfg=dict(type=
    'infopro_mm.InfoProModuleParallel')`` and ``train_cfg=dict(type=
    'infopro_mm.ModuleParallelTrainLoop', ...)`` (the loop gives stage 0 of
    pipeline d shard d of D of the single-process data order and the other
    stages no data), K x D processes.

    Args:
        module (nn.Module): The InfoPro model (K >= 2 local modules).
        queue_depth (int): Messages in flight per link. Defaults to 2.
        timeout (float): Seconds a rank waits for its input before it
            raises. Defaults to 1800.
        broadcast_buffers (bool): With D > 1: copy pipeline 0's buffers of
            the stage (BN statistics) to the stage's other ranks before each
            step, as ``DistributedDataParallel`` does. Defaults to False (as
            mmengine's default DDP).
        find_unused_parameters (bool): With D > 1: passed to
            ``DistributedDataParallel`` (set it when some parameter of a
            stage gets no gradient in an iteration). Defaults to False.
        bucket_cap_mb (float): With D > 1: gradient bucket size of each
            stage's ``DistributedDataParallel``. Defaults to 25.
    """

    def __init__(self,
                 module: nn.Module,
                 queue_depth: int = 2,
                 timeout: float = 1800.,
                 broadcast_buffers: bool = False,
                 find_unused_parameters: bool = False,
                 bucket_cap_mb: float = 25.) -> None:
        super().__init__()
        from infopro_mm.models import InfoPro
        if not isinstance(module, InfoPro):
            raise TypeError(
                'InfoProModuleParallel wraps infopro_mm.InfoPro models, got '
                f'{type(module).__name__} (InfoProDDP and module-parallel '
                'training cannot be combined; replicate the stages with '
                'K x D processes instead)')
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                'InfoProModuleParallel needs an initialised process group '
                '(launch K x D processes, D pipelines of one process per '
                'local module, with tools/dist_train.sh)')
        stages = module.splitter.num_modules
        world = dist.get_world_size()
        if stages < 2:
            raise ValueError('module-parallel training needs K >= 2 local '
                             f'modules, the model has K={stages}')
        if world % stages:
            raise ValueError(
                f'world size {world} is not divisible by the number of local '
                f'modules K={stages}: module-parallel training runs K x D '
                'processes (D pipelines of one process per module)')
        self.module = module
        self.num_stages = stages
        self.num_replicas = world // stages
        self.replica, self.stage = divmod(dist.get_rank(), stages)
        self.queue_depth = queue_depth
        self.timeout = timeout
        device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
        # One group per directed link, created by every rank in one order.
        # Its receiving thread waits as long as training lasts (a gloo
        # timeout would break the link): `timeout` applies to the queue.
        links = {}
        for replica in range(self.num_replicas):
            first = replica * stages
            pairs = [(first + k, first + k + 1) for k in range(stages - 1)]
            pairs.append((first + stages - 1, first))
            for src, dst in pairs:
                group = dist.new_group([src, dst], timeout=timedelta(days=7))
                if dist.get_rank() in (src, dst):
                    depth = 0 if dst == first else queue_depth  # losses
                    links[src % stages, dst % stages] = StageLink(
                        src, dst, group, depth, timeout, device)
        k = self.stage
        self.inbox = links.get((k - 1, k))
        self.outbox = links.get((k, k + 1))
        self.loss_link = links.get((stages - 1, 0))
        self._owned = self._tensor_owners()
        pre = module.data_preprocessor
        self._shared = {
            id(t) for t in chain(pre.parameters(), pre.buffers())
        }
        self._released: List[tuple] = []  # (tensor, shape) freed here
        self.replicas = self._replicate(broadcast_buffers,
                                        find_unused_parameters, bucket_cap_mb)
        self._step = 0
        MMLogger.get_current_instance().info(
            f'InfoProModuleParallel: K={stages} stages x D='
            f'{self.num_replicas} replicas; rank r runs stage r % {stages} '
            f'of pipeline r // {stages}' + (
                ', each stage\'s gradients averaged over its replicas by '
                'DistributedDataParallel' if self.num_replicas > 1 else ''))

    def _replicate(self, broadcast_buffers: bool, find_unused: bool,
                   bucket_cap_mb: float) -> Optional[DistributedDataParallel]:
        """This stage's ``DistributedDataParallel`` over its D ranks (None
        when D = 1); every rank creates every stage's group."""
        if self.num_replicas == 1:
            return None
        groups = [
            dist.new_group([d * self.num_stages + k
                            for d in range(self.num_replicas)])
            for k in range(self.num_stages)
        ]
        buffers = [
            tensor for tensor, owner in self._owned
            if owner == self.stage and not isinstance(tensor, nn.Parameter)
        ]
        return DistributedDataParallel(
            _StageReplica(self.stage_parameters(), buffers),
            process_group=groups[self.stage],
            forward_sync_buffers=broadcast_buffers,
            find_unused_parameters=find_unused,
            bucket_cap_mb=bucket_cap_mb)

    # ------------------------------------------------------------------
    def _tensor_owners(self) -> List[tuple]:
        """Every parameter and buffer with the stage that updates it."""
        model = self.module
        owner = {}
        for k, (layers, heads) in enumerate(
                zip(model.splitter.module_layers(), model.local_heads)):
            # a layer's parameters include those outside its modules (a
            # transformer's class token and position embedding)
            parts = [*layers, heads]
            for part in parts:
                for tensor in chain(part.parameters(), part.buffers()):
                    owner.setdefault(id(tensor), k)
        return [(tensor, owner.get(id(tensor), self.num_stages - 1))
                for tensor in chain(model.parameters(), model.buffers())]

    def stage_parameters(self) -> List[nn.Parameter]:
        """The trainable parameters of this rank's local module."""
        return self.module.module_parameters()[self.stage]

    def restrict_optimizer(self, optim_wrapper: OptimWrapper) -> None:
        """Prune ``optim_wrapper`` to this stage's parameters; its state
        dicts keep the single-model layout (:class:`StageOptimizerLayout`).

        Args:
            optim_wrapper (OptimWrapper): An ``InfoProOptimWrapper`` built
                over the whole model.
        """
        if not hasattr(optim_wrapper, 'state_layout'):
            raise TypeError('module-parallel training needs an infopro_mm '
                            'optimizer wrapper, got '
                            f'{type(optim_wrapper).__name__}')
        if optim_wrapper.state_layout is None:
            optim_wrapper.state_layout = StageOptimizerLayout(
                optim_wrapper.optimizer, self.stage_parameters())

    @torch.no_grad()
    def release(self) -> None:
        """Free the parameters and buffers the other stages train, so this
        rank holds only its own module's (and the data preprocessor's);
        :meth:`synchronize` brings them back. :meth:`train_step` calls it;
        a no-op while they are freed."""
        if self._released:
            return
        self._released = [(tensor, tensor.shape)
                          for tensor, owner in self._owned
                          if owner != self.stage and id(tensor) not in
                          self._shared and tensor.numel()]
        for tensor, _ in self._released:
            tensor.grad = None
            tensor.data = tensor.data.new_empty(0)

    @property
    def holds_whole_model(self) -> bool:
        """Whether this rank holds every module's tensors (False between
        a :meth:`train_step` and the next :meth:`synchronize`)."""
        return not self._released

    @torch.no_grad()
    def synchronize(self) -> None:
        """Give every rank the whole model: allocate the tensors
        :meth:`release` freed and copy every module's parameters and
        buffers from the rank that trains them in pipeline 0 (global rank
        k for module k) to all ranks (collective)."""
        for tensor, shape in self._released:
            tensor.data = tensor.data.new_empty(shape)
        self._released = []
        for tensor, owner in self._owned:
            dist.broadcast(tensor.data, owner)

    def close(self) -> None:
        """End the pipeline: send the end marks, wait for the inputs' end,
        then :meth:`synchronize` (collective), so that whatever runs after
        training (a test, a checkpoint) sees the whole trained model."""
        rank = dist.get_rank()
        for link in (self.outbox, self.inbox, self.loss_link):
            if link is not None and link.src == rank:
                link.close()
        for link in (self.inbox, self.loss_link):
            if link is not None and link.dst == rank:
                link.close()
        self.synchronize()

    # ------------------------------------------------------------------
    def _receive(self, step: int) -> dict:
        meta, tensors = self.inbox.receive(step)
        device = next(self.module.parameters()).device
        tensors = [t.to(device) for t in tensors]
        num_states = len(meta['layout'])
        x, *outs = _unpack(tensors[:num_states], meta['layout'])
        return dict(
            x=x,
            outs=tuple(outs),
            image=tensors[num_states] if meta['with_image'] else None,
            data_samples=[s.to(device) for s in meta['data_samples']],
            local=meta['local'])

    def _send(self, step: int, x: State, outs: Sequence[State],
              image: Optional[Tensor], data_samples: list,
              local: Dict[str, float]) -> None:
        # the next stage's local heads may need the image; the last does not
        with_image = self.stage + 1 < self.num_stages - 1
        tensors, layout = _pack([x, *outs])
        meta = dict(
            step=step,
            layout=layout,
            with_image=with_image,
            data_samples=[s.cpu() for s in data_samples],
            local=local)
        self.outbox.send(meta, tensors + ([image] if with_image else []))

    def _run(self, compute: Callable[[], Any]) -> Any:
        """``compute()``, through this stage's ``DistributedDataParallel``
        when the stage is replicated (it then averages the gradients of the
        backward of what ``compute`` returns)."""
        return compute() if self.replicas is None else self.replicas(compute)

    def _local_stage(self, state: dict, optim_wrapper: OptimWrapper) -> dict:
        model, k = self.module, self.stage
        batch = model._local_batch(state['image'], state['data_samples'])
        ends = {}

        def on_module_end(module: int, feat: Tensor) -> None:
            ends['losses'] = model.local_losses(module, feat, batch)

        def on_module_output(module: int, x: State) -> None:
            ends['x'] = x  # detached; tokens keep their grid shape

        def compute() -> tuple:
            outs = model.splitter.forward(
                state['x'], on_module_end=on_module_end,
                modules=range(k, k + 1), outs=state['outs'],
                on_module_output=on_module_output)
            return ends['losses'], outs

        losses, outs = self._run(compute)
        loss = sum(losses.values()) if losses else state['image'].new_zeros(
            (), requires_grad=True)
        optim_wrapper.update_params(loss)
        model.local_log_vars = {n: v.detach() for n, v in losses.items()}
        return dict(state, x=ends['x'], outs=outs, local=dict(
            state['local'],
            **{n: float(v) for n, v in model.local_log_vars.items()}))

    def _last_stage(self, state: dict,
                    optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        model = self.module

        def compute() -> Dict[str, Tensor]:
            # The staged backbone runs the last module on the received
            # feature.
            with model._staged_backbone(
                    modules=range(self.num_stages - 1, self.num_stages),
                    outs=state['outs']):
                return model.architecture.loss(state['x'],
                                               state['data_samples'])

        parsed, log_vars = model.parse_losses(self._run(compute))
        optim_wrapper.update_params(parsed)
        model.local_log_vars = {}
        return log_vars

    @property
    def log_lag(self) -> int:
        """Rank 0 logs at step t the losses of step ``t - log_lag``
        (``K - 1 + queue_depth``: waiting for them lets rank 0 run that far
        ahead of the last rank)."""
        return self.num_stages - 1 + self.queue_depth

    def _lagged_losses(self, step: int) -> Dict[str, Tensor]:
        """Stage 0: every loss of its pipeline's step ``step - log_lag``
        (none before)."""
        if step < self.log_lag:
            self.module.local_log_vars = {}
            return {}
        meta, _ = self.loss_link.receive(step - self.log_lag)
        self.module.local_log_vars = {
            n: torch.tensor(v) for n, v in meta['local'].items()
        }
        return {n: torch.tensor(v) for n, v in meta['task'].items()}

    def train_step(self, data: Optional[Union[dict, tuple, list]],
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """This rank's part of one InfoPro iteration.

        Args:
            data (dict | tuple | list, optional): The batch (stage 0: its
                replica's shard; the other stages receive theirs and ignore
                ``data``).
            optim_wrapper (OptimWrapper): This rank's optimizer wrapper,
                restricted by :meth:`restrict_optimizer`.

        Returns:
            dict[str, Tensor]: On stage 0, the task losses of its pipeline's
            step ``t - log_lag`` (local losses go to
            ``InfoPro.local_log_vars``, logged by ``InfoProHook``); on the
            others, their own.
        """
        if getattr(optim_wrapper, 'state_layout', None) is None:
            raise RuntimeError(
                'call restrict_optimizer(optim_wrapper) first (the '
                'InfoProRunner does): a module-parallel rank must step only '
                'its own module')
        self.release()
        model = self.module
        step = self._step
        self._step += 1
        # gradient accumulation: the stage's DDP skips all but the last
        # iteration's all-reduce
        context = model if self.replicas is None else self.replicas
        with optim_wrapper.optim_context(context):
            if self.stage == 0:
                data = model.data_preprocessor(data, True)
                state = dict(
                    x=data['inputs'], outs=(), image=data['inputs'],
                    data_samples=data['data_samples'], local={})
            else:
                state = self._receive(step)
            if self.stage < self.num_stages - 1:
                state = self._local_stage(state, optim_wrapper)
                self._send(step, **state)
                log_vars = {}
            else:
                log_vars = self._last_stage(state, optim_wrapper)
                self.loss_link.send(
                    dict(step=step, local=state['local'],
                         task={n: float(v.detach()) for n, v in log_vars.items()}))
        return self._lagged_losses(step) if self.stage == 0 else log_vars

    def _check_whole(self, step: str) -> None:
        if not self.holds_whole_model:
            raise RuntimeError(
                f'{step} needs the whole model, but rank {dist.get_rank()} '
                f'holds only local module {self.stage + 1} since training: '
                'call synchronize() on every rank first (ModuleParallel'
                'TrainLoop does before each validation)')

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``val_step`` (call :meth:`synchronize` first)."""
        self._check_whole('val_step')
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``test_step`` (call :meth:`synchronize` first)."""
        self._check_whole('test_step')
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        """The model's own forward (no communication)."""
        return self.module(*args, **kwargs)
