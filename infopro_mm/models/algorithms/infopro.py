"""The InfoPro algorithm (Wang et al., ICLR 2021) around an OpenMMLab model."""
import weakref
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import torch
from mmengine.dist import broadcast_object_list, get_rank, is_distributed
from mmengine.logging import MMLogger
from mmengine.model import BaseModel, ModuleDict, ModuleList
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils import (SavedTensorTracker, accepted_arguments,
                              flop_counter, format_size, median_seconds,
                              optimizer_states, parse_size)
from ..heads import LocalBatch, build_local_head, local_head_class
from ..splitters import (Tokens, feature_map, module_costs,
                         plan_balanced_cuts, plan_within_budget, splitter_for)
from .task import dummy_data_samples, task_info

__all__ = ['InfoPro', 'MemoryProfile', 'TimeProfile', 'is_infopro_config']

WeightSpec = Union[float, Tuple[float, float]]
_UNSET: Any = object()


def _delegated(name: str) -> property:
    """A read-only property returning the architecture's ``name``."""
    return property(
        lambda self: getattr(self.architecture, name),
        doc=f"The architecture's ``{name}``.")


def is_infopro_config(model_cfg: dict) -> bool:
    """Whether a model config builds :class:`InfoPro` (any scope spelling).

    Args:
        model_cfg (dict): A config's ``model``.
    """
    return model_cfg.get('type') in ('InfoPro', 'infopro_mm.InfoPro', InfoPro)


class MemoryProfile(dict):
    """Per-basic-layer training-memory estimate of an InfoPro model (bytes).

    Activations (tensors saved for backward, peaks of transient ones
    included): ``layer_bytes``, ``input_bytes``, ``head_bytes`` (one per
    basic layer), ``tail_bytes``. Fixed costs: ``param_bytes`` (trainable
    parameters of the architecture), ``static_bytes`` (its frozen
    parameters and buffers), ``head_param_bytes`` and ``head_static_bytes``
    (one set of local heads on each basic layer's output). With FLOPs
    counted: ``flops`` (one end-to-end training step, forward and backward)
    and ``head_flops`` (the local heads' forward and backward on each basic
    layer's output). Also ``names``, ``input_size``, ``batch_size``.
    """

    def module_bytes(self, cuts: Sequence[int]) -> List[int]:
        """Estimate of every module for the given cuts."""
        return module_costs(cuts, self['layer_bytes'], self['input_bytes'],
                            self['head_bytes'], self['tail_bytes'])

    def head_fixed_bytes(self, states: int) -> List[int]:
        """Fixed bytes of one set of local heads on each basic layer.

        Args:
            states (int): State tensors per parameter of the optimizer
                (:func:`~infopro_mm.utils.optimizer_states`).
        """
        return [
            p * (2 + states) + b
            for p, b in zip(self['head_param_bytes'],
                            self['head_static_bytes'])
        ]

    def fixed_bytes(self, cuts: Sequence[int], states: int) -> int:
        """Weights, gradients and optimizer state of a split.

        Every trainable parameter (the architecture's and the local heads'
        of every cut) has its weight, its gradient (all are alive at the
        one optimizer step) and ``states`` optimizer tensors; frozen
        parameters and buffers count once.

        Args:
            cuts (Sequence[int]): Last basic layer of each local module.
            states (int): State tensors per parameter of the optimizer.
        """
        heads = self.head_fixed_bytes(states)
        return (self['param_bytes'] * (2 + states) + self['static_bytes'] +
                sum(heads[c] for c in cuts))

    def peak_bytes(self, cuts: Sequence[int], states: int) -> int:
        """Estimated training peak of a split: largest module + fixed."""
        return max(self.module_bytes(cuts)) + self.fixed_bytes(cuts, states)


class TimeProfile(dict):
    """Per-basic-layer training time of an InfoPro model (seconds).

    Forward + backward time (wall time unless :meth:`InfoPro.profile_time`
    was given another clock), each the median of ``repeats`` runs after
    ``warmup`` runs, at the training input and batch on ``device``:
    ``layer_seconds`` (each basic layer inside a module, its input gradient
    included), ``input_seconds`` (the change when the layer starts a module
    and no input gradient is computed: usually negative; 0 for the first),
    ``head_seconds`` (the local heads and their losses on each basic layer's
    output), ``tail_seconds`` (the neck, task heads and losses). Also
    ``names``, ``input_size``, ``batch_size``, ``device``, ``warmup`` and
    ``repeats``. A stage of a module-parallel pipeline runs one module, so
    its time is the module's estimate (:meth:`module_seconds`).
    """

    def module_seconds(self, cuts: Sequence[int]) -> List[float]:
        """Estimated forward + backward time of every module."""
        return module_costs(cuts, self['layer_seconds'],
                            self['input_seconds'], self['head_seconds'],
                            self['tail_seconds'])

    def images_per_second(self, cuts: Sequence[int]) -> float:
        """Throughput bound of a pipeline of these modules: one batch per
        slowest stage."""
        return self['batch_size'] / max(self.module_seconds(cuts))


def _param_bytes(module: nn.Module) -> Tuple[int, int]:
    """Bytes of ``module``'s trainable parameters, and of its frozen
    parameters and buffers."""
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel() * p.element_size()
        else:
            frozen += p.numel() * p.element_size()
    frozen += sum(b.numel() * b.element_size() for b in module.buffers())
    return trainable, frozen


@MODELS.register_module()
class InfoPro(BaseModel):
    """Locally supervised training of an unmodified OpenMMLab model.

    The architecture's backbone is split into K gradient-isolated local
    modules (:class:`~infopro_mm.models.BaseSplitter`). Each of the first
    K-1 modules is trained by its own loss
    ``lambda1_k * R_w(x|h_k) + lambda2_k * L_task(h_k)`` computed by local
    heads that live beside the architecture; the last module (rest of the
    backbone, neck and the architecture's heads) by the architecture's own
    task loss. :meth:`train_step` back-propagates every local loss as soon as
    its module has run, so only one module's activations are alive at a
    time, then takes one optimizer step.

    ``predict`` and ``tensor`` modes, ``val_step`` and ``test_step`` are the
    architecture's own. ``loss`` mode returns every term of the objective
    (local and task losses, with the same gradient isolation), whose plain
    sum has exactly the gradients of :meth:`train_step` but without its
    memory saving.

    Args:
        architecture (dict | nn.Module): The downstream model (mmseg
            segmentor, mmpretrain classifier, mmdet detector).
        split (dict): Config of the splitter; its type defaults to the one
            of the backbone's family (:func:`~infopro_mm.models.splitter_for`:
            ResNet, Swin, ConvNeXt, MiT, ViT), e.g.
            ``dict(boundaries=['layer3.12'])`` or
            ``dict(num_modules=4, policy='balanced', input_size=(512, 1024))``
            (memory-balanced: InfoPro*) or ``dict(num_modules=2,
            policy='time', input_size=(32, 32), batch_size=128)`` (the
            cuts that minimise the slowest module's measured forward +
            backward time, for module-parallel pipelines; see
            :meth:`profile_time`).
            Instead of ``num_modules``, ``max_memory`` (bytes or a string
            such as ``'10GiB'``, with ``policy='balanced'`` (the default
            then), ``input_size`` and ``batch_size``) picks the smallest K
            whose largest module plus the weights, gradients and optimizer
            state fits the budget (docs/will_it_fit.md); ``optimizer`` (a
            type name or an optimizer config) gives the optimizer whose
            state is counted: the runner fills it in from the config's
            ``optim_wrapper``.
        local_heads (dict, optional): Name -> head config, instantiated once
            per local module, e.g. ``dict(recon=dict(type=
            'infopro_mm.ReconstructionHead', arch='large'), task=dict(
            type='infopro_mm.LocalSegHead'))``. ``in_channels``, ``in_stride``,
            ``num_classes`` and ``ignore_index`` are filled in from the split
            and the architecture. A None value drops that head.
        loss_weights (dict, optional): Name -> weight of that head's loss,
            either one float for every local module or ``(first, last)``,
            interpolated linearly from the first to the (K-1)-th module
            (paper §4). Every local head needs one: the paper tunes them per
            network and K (docs/configs.md, "Loss weights"), so there is no
            default.
        data_preprocessor (dict | nn.Module, optional): Replaces the
            architecture's own when given (mmengine's Runner passes the
            config's top-level ``data_preprocessor``). Defaults to None.
        train_cfg (dict, optional): Given a dict, it replaces the
            architecture's ``train_cfg``. Given None (what mmseg's
            ``init_model`` and benchmark tools pass), the model is built for
            inference: the architecture gets ``train_cfg=None`` and neither
            local heads nor the balanced planner are built or run; such a
            model cannot ``train_step``. Not given: the architecture's own.
        test_cfg (dict, optional): Replaces the architecture's
            ``test_cfg`` when given.
        pretrained (str, optional): Passed on to the architecture when
            given (mmseg's tools set it, usually to None).
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    The architecture's ``out_channels``, ``num_classes``, ``align_corners``,
    heads and neck are readable on the InfoPro model, as downstream tools
    expect of a segmentor or classifier.
    """

    # What downstream tools read off a segmentor or classifier (mmseg's
    # init_model and SegTTAModel, mmpretrain's inferencers).
    out_channels = _delegated('out_channels')
    num_classes = _delegated('num_classes')
    align_corners = _delegated('align_corners')
    decode_head = _delegated('decode_head')
    auxiliary_head = _delegated('auxiliary_head')
    head = _delegated('head')
    neck = _delegated('neck')

    def __init__(self,
                 architecture: Union[dict, nn.Module],
                 split: dict,
                 local_heads: Optional[Dict[str, Optional[dict]]] = None,
                 loss_weights: Optional[Dict[str, WeightSpec]] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 train_cfg: Optional[dict] = _UNSET,
                 test_cfg: Optional[dict] = _UNSET,
                 pretrained: Optional[str] = _UNSET,
                 init_cfg: Optional[dict] = None) -> None:
        overrides = {
            key: value
            for key, value in (('train_cfg', train_cfg),
                               ('test_cfg', test_cfg),
                               ('pretrained', pretrained))
            if value is not _UNSET
        }
        if isinstance(architecture, dict):
            architecture = MODELS.build(dict(architecture, **overrides))
        elif any(v is not None for v in overrides.values()):
            raise TypeError(
                f'{sorted(overrides)} can only be set on an architecture '
                'config (dict), not on a built module')
        if data_preprocessor is None:
            data_preprocessor = architecture.data_preprocessor
        elif isinstance(data_preprocessor, dict):
            # mmpretrain configs give it without a type: the architecture's
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type',
                                         type(architecture.data_preprocessor))
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # Asynchronous InfoPro: the one local module that trains (None: all).
        self.active_module: Optional[int] = None
        self._keep_batch_augments(architecture.data_preprocessor)
        self.for_training = train_cfg is not None
        # One preprocessor for training and inference alike.
        architecture.data_preprocessor = self.data_preprocessor
        self.architecture = architecture
        if not hasattr(architecture, 'backbone'):
            raise TypeError(f'{type(architecture).__name__} has no backbone '
                            'for InfoPro to split')
        split = dict(split)
        split.setdefault('type', splitter_for(architecture.backbone))
        self.max_memory, self.budget_optimizer = self._pop_budget(split)
        self.splitter = MODELS.build(
            split, default_args=dict(backbone=architecture.backbone))
        self.head_cfgs = {
            name: cfg
            for name, cfg in (local_heads or {}).items() if cfg is not None
        }
        # with a budget, the planner may choose any K
        may_split = (self.splitter.num_modules > 1
                     or self.max_memory is not None)
        if may_split and not self.head_cfgs:
            raise ValueError(
                f'K={self.splitter.num_modules} local modules need '
                '`local_heads`: without them the first modules never learn'
                if self.max_memory is None else
                '`max_memory` lets the planner choose K > 1 local modules, '
                'which need `local_heads`')
        self.loss_weights = dict(loss_weights or {})
        unknown = set(self.loss_weights) - set(local_heads or {})
        if unknown:
            raise ValueError(f'loss_weights names {sorted(unknown)} match no '
                             f'local head (heads: {sorted(self.head_cfgs)})')
        missing = set(self.head_cfgs) - set(self.loss_weights)
        if may_split and missing:
            raise ValueError(
                f'local heads {sorted(missing)} have no loss weight: give '
                '`loss_weights` for every local head (e.g. the authors\' '
                'ResNet-32 K=2 setting dict(recon=5, task=1); '
                'docs/configs.md, "Loss weights", lists the published ones)')
        # Multipliers of the configured weights, scheduled by InfoProHook.
        self.weight_factors = {name: 1.0 for name in self.head_cfgs}
        self.task_info = task_info(architecture)
        self.layer_shapes = self.splitter.probe()
        self.memory_profile: Optional[MemoryProfile] = None
        self.time_profile: Optional[TimeProfile] = None
        if self.for_training and may_split:
            if self.splitter.policy == 'balanced':
                self._plan_balanced()
            elif self.splitter.policy == 'time':
                self._plan_time()
        # mmengine containers, so that init_weights() reaches the heads.
        self.local_heads = ModuleList(
            self._build_heads(self.layer_shapes[cut],
                              **self._head_context(cut, module))
            for module, cut in enumerate(
                self.splitter.cuts if self.for_training else ()))
        # Detached local losses (and CUDA peak memory) of the last train step.
        self.local_log_vars: Dict[str, Tensor] = {}
        self.track_cuda_memory = False
        MMLogger.get_current_instance().info(
            f'InfoPro: K={self.splitter.num_modules}, local modules end '
            f'after {self.splitter.boundaries}')

    # ------------------------------------------------------------------
    # construction helpers

    def _keep_batch_augments(self, own: nn.Module) -> None:
        """Carry the architecture's batch augments over to the replacement.

        mmpretrain's ``ImageClassifier`` turns ``train_cfg.augments``
        (Mixup, CutMix) into its own preprocessor's ``batch_augments``; the
        runner's top-level ``data_preprocessor`` dict that replaces that
        preprocessor does not have them, and training would silently run
        without them.

        Args:
            own (nn.Module): The architecture's own preprocessor.
        """
        augments = getattr(own, 'batch_augments', None)
        pre = self.data_preprocessor
        if (augments is not None and pre is not own
                and getattr(pre, 'batch_augments', augments) is None):
            pre.batch_augments = augments
            # mmpretrain mixes one-hot scores: those settings come along
            for name in ('to_onehot', 'num_classes'):
                if hasattr(own, name) and getattr(pre, name, None) in (None,
                                                                   False):
                    setattr(pre, name, getattr(own, name))
            MMLogger.get_current_instance().info(
                f'InfoPro: the data preprocessor keeps the architecture\'s '
                f'batch augments ({type(augments).__name__})')

    @staticmethod
    def _pop_budget(split: dict) -> Tuple[Optional[int], Any]:
        """Take ``max_memory`` and ``optimizer`` out of a split config.

        With a budget the splitter is built for one module and the planner
        sets the cuts; the keys that would fix K are refused.

        Returns:
            tuple: The budget in bytes (or None) and the optimizer.
        """
        budget = split.pop('max_memory', None)
        optimizer = split.pop('optimizer', None)
        if budget is None:
            if optimizer is not None:
                raise ValueError(
                    'split.optimizer is only used with split.max_memory '
                    '(the optimizer state counts against the budget)')
            return None, None
        budget = parse_size(budget)
        for key in ('boundaries', 'num_modules'):
            if split.get(key) is not None:
                raise ValueError(
                    f'split gives both `max_memory` and `{key}`: the budget '
                    f'makes the planner choose K and the cuts, `{key}` fixes '
                    f'them; keep one (on the command line: --cfg-options '
                    f'model.split.{key}=None or model.split.max_memory=None)')
        policy = split.setdefault('policy', 'balanced')
        if policy != 'balanced':
            raise ValueError(
                "`max_memory` needs policy='balanced' (the planner measures "
                f'the memory), got policy={policy!r}')
        if split.get('batch_size') is None:
            raise ValueError(
                '`max_memory` needs `batch_size` (per GPU): the activations '
                'the budget must hold grow with it')
        split['num_modules'] = 1
        return budget, optimizer

    def _build_heads(self, shape: Tuple[int, int],
                     **context) -> ModuleDict:
        """Local heads for a module output of ``(channels, stride)``.

        ``context`` (see :meth:`_head_context`) goes to the heads that take
        it, e.g. those built from the layers after the module.
        """
        channels, stride = shape
        defaults = dict(
            in_channels=channels, in_stride=stride, **self.task_info,
            **context)
        return ModuleDict({
            name: build_local_head(cfg, defaults)
            for name, cfg in self.head_cfgs.items()
        })

    def _head_context(self, layer: int, module: int) -> dict:
        """What a head at the end of basic layer ``layer`` may build from.

        Args:
            layer (int): Index of the module's last basic layer.
            module (int): 0-based index of the local module.

        Returns:
            dict: ``later_layers`` and ``later_shapes`` (the basic layers
            after ``layer`` and their ``(channels, stride)``),
            ``layer_index``, ``module_index`` and ``num_modules``.
        """
        return dict(
            later_layers=tuple(self.splitter.basic_layers[layer + 1:]),
            later_shapes=tuple(self.layer_shapes[layer + 1:]),
            layer_index=layer,
            module_index=module,
            num_modules=self.splitter.num_modules)

    def module_weights(self, module: int) -> Dict[str, float]:
        """Loss weight of every local head of local module ``module``.

        Args:
            module (int): 0-based index of a local module (< K-1).
        """
        num_local = self.splitter.num_modules - 1
        t = module / (num_local - 1) if num_local > 1 else 0.
        weights = {}
        for name in self.head_cfgs:
            spec = self.loss_weights[name]
            first, last = (spec, spec) if isinstance(spec,
                                                     (int, float)) else spec
            weights[name] = (first +
                             (last - first) * t) * self.weight_factors[name]
        return weights

    # ------------------------------------------------------------------
    # training
    def _local_batch(self, inputs: Tensor, data_samples) -> LocalBatch:
        pre = self.data_preprocessor
        if getattr(pre, '_enable_normalize', False):
            return LocalBatch(inputs, data_samples, pre.mean, pre.std)
        return LocalBatch(inputs, data_samples)

    def local_losses(self, module: int, feat: Tensor,
                     batch: LocalBatch) -> Dict[str, Tensor]:
        """Weighted losses of local module ``module`` (0-based) on ``feat``.

        Heads whose weight is 0 are skipped (e.g. DGL's lambda1 = 0).
        Returns keys ``local{module + 1}.loss_{name}``.
        """
        losses = {}
        for name, weight in self.module_weights(module).items():
            if weight == 0:
                continue
            loss = self.local_heads[module][name].loss(feat, batch)
            losses[f'local{module + 1}.loss_{name}'] = weight * loss
        return losses

    @contextmanager
    def _staged_backbone(self, **callbacks):
        """Run the backbone through the splitter inside this context."""
        backbone = self.architecture.backbone
        backbone.forward = partial(self.splitter.forward, **callbacks)
        try:
            yield
        finally:
            del backbone.forward

    def _forward_train(
        self,
        inputs: Tensor,
        data_samples,
        local_backward: Optional[Callable[[Tensor], None]] = None,
        on_local_backward: Optional[Callable[[int], None]] = None
    ) -> Dict[str, Tensor]:
        if not self.for_training:
            raise RuntimeError(
                'this InfoPro model was built for inference (train_cfg=None):'
                ' it has no local heads to train')
        self.local_log_vars = {}
        if self.active_module is not None:
            return self._forward_active(inputs, data_samples)
        batch = self._local_batch(inputs, data_samples)
        local_losses: Dict[str, Tensor] = {}

        def on_module_end(module: int, feat: Tensor) -> None:
            losses = self.local_losses(module, feat, batch)
            if local_backward is None:
                local_losses.update(losses)
                return
            if losses:
                local_backward(sum(losses.values()))
            if on_local_backward is not None:
                on_local_backward(module)
            self.local_log_vars.update(
                {name: loss.detach() for name, loss in losses.items()})
            self._record_cuda_memory(module)

        with self._staged_backbone(on_module_end=on_module_end):
            losses = self.architecture.loss(inputs, data_samples)
        losses.update(local_losses)
        return losses

    def _forward_active(self, inputs: Tensor,
                        data_samples) -> Dict[str, Tensor]:
        """Losses of the active local module alone (asynchronous InfoPro).

        The modules before it run under ``torch.no_grad`` (and in eval mode,
        see :meth:`train`): their outputs are the frozen input it trains on,
        recomputed every iteration. An active module k < K-1 returns its
        weighted local losses and the layers after it do not run; the last
        module returns the architecture's task losses.
        """
        active, last = self.active_module, self.splitter.num_modules - 1
        batch = self._local_batch(inputs, data_samples)
        losses: Dict[str, Tensor] = {}

        def on_module_end(module: int, feat: Tensor) -> None:
            if module == active - 1:
                # The frozen modules end here; the splitter detaches their
                # output, and the active module records its graph from it.
                # Leaving the no_grad context below restores the grad mode.
                torch.set_grad_enabled(True)
            elif module == active:
                losses.update(self.local_losses(module, feat, batch))

        with torch.no_grad() if active > 0 else nullcontext():
            if active < last:
                self.splitter.forward(
                    inputs,
                    on_module_end=on_module_end,
                    modules=range(active + 1))
            else:
                with self._staged_backbone(on_module_end=on_module_end):
                    losses = self.architecture.loss(inputs, data_samples)
        if not losses:
            raise ValueError(
                f'local module {active + 1} has nothing to train on alone: '
                'every local head weight is 0 '
                f'({self.module_weights(active)})')
        return losses

    def set_active_module(self, module: Optional[int]) -> None:
        """Train one local module alone (asynchronous InfoPro), or all.

        With an active module k (0-based), :meth:`train_step` and ``loss``
        mode compute module k's losses only: its weighted local losses (k <
        K-1) or the architecture's task loss (k = K-1), on the outputs of
        modules 0..k-1, which run under ``torch.no_grad`` and stay in eval
        mode (their BN statistics do not move); nothing after module k runs
        when k < K-1. No other parameter gets a gradient, so the optimizer
        leaves them as they are (torch optimizers skip parameters whose
        gradient is None, weight decay and momentum included). Only module
        k's local heads get ``after_optimizer_step()``.
        ``infopro_mm.AsynchronousTrainLoop`` sets it phase by phase.

        Args:
            module (int, optional): 0-based index of the local module that
                trains, or None for simultaneous training of every module
                (the default).
        """
        if module is not None:
            if not self.for_training:
                raise RuntimeError(
                    'this InfoPro model was built for inference '
                    '(train_cfg=None): it has no local heads to train')
            num = self.splitter.num_modules
            if not 0 <= module < num:
                raise ValueError(
                    f'active module {module} is out of range: the model has '
                    f'K={num} local modules (0..{num - 1})')
        self.active_module = module
        self.train(self.training)

    def train(self, mode: bool = True) -> 'InfoPro':
        """``nn.Module.train``; the modules before the active one (see
        :meth:`set_active_module`) stay in eval mode."""
        super().train(mode)
        if self.active_module is not None:
            for layers in self.splitter.module_layers()[:self.active_module]:
                for layer in layers:
                    for module in layer.modules:
                        module.train(False)
        return self

    def _record_cuda_memory(self, module: int) -> None:
        if self.track_cuda_memory and torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / 2**20
            self.local_log_vars[f'local{module + 1}.memory'] = peak
            torch.cuda.reset_peak_memory_stats()

    def train_step(
        self,
        data: Union[dict, tuple, list],
        optim_wrapper: OptimWrapper,
        on_local_backward: Optional[Callable[[int], None]] = None
    ) -> Dict[str, Tensor]:
        """One InfoPro iteration: K-1 local backwards, one task backward.

        With an active module (:meth:`set_active_module`), one backward of
        that module's losses; they are the returned log variables.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapper): An optimizer wrapper with
                ``local_backward`` (``infopro_mm.InfoProOptimWrapper`` or
                ``infopro_mm.InfoProAmpOptimWrapper``).
            on_local_backward (callable, optional): ``f(k)`` called right
                after local module ``k``'s backward, when its gradients for
                this iteration are final (``InfoProDDP`` starts their
                all-reduce there). Defaults to None.

        Returns:
            dict[str, Tensor]: Log variables of the task loss. Local losses
            are in :attr:`local_log_vars` (logged by ``InfoProHook``).
        """
        if not hasattr(optim_wrapper, 'local_backward'):
            raise TypeError(
                f'InfoPro needs an optimizer wrapper with local_backward(); '
                f'got {type(optim_wrapper).__name__}. Set optim_wrapper.type '
                "to 'infopro_mm.InfoProOptimWrapper' (or "
                "'infopro_mm.InfoProAmpOptimWrapper' for AMP)")
        if self.track_cuda_memory and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            # one module alone: its loss is the iteration's only backward
            alone = self.active_module is not None
            losses = self._forward_train(
                data['inputs'],
                data['data_samples'],
                local_backward=None if alone else optim_wrapper.local_backward,
                on_local_backward=on_local_backward)
        parsed_loss, log_vars = self.parse_losses(losses)
        self._watch_optimizer(optim_wrapper.optimizer)
        optim_wrapper.update_params(parsed_loss)
        self._record_cuda_memory(self.active_module if alone else
                                 self.splitter.num_modules - 1)
        return log_vars

    def _watch_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Call the heads' ``after_optimizer_step()`` after every step.

        Heads that track the live network (e.g.
        :class:`~infopro_mm.models.MomentumAuxHead`'s EMA copy) define it.
        A torch step post-hook fires exactly once per real optimizer step,
        so gradient accumulation and AMP-skipped steps are respected.
        """
        watched, handle = getattr(self, '_step_hook', (None, None))
        if watched is not None and watched() is optimizer:
            return
        if handle is not None:
            handle.remove()
        # a weak reference: the model does not keep the optimizer alive
        self._step_hook = (weakref.ref(optimizer),
                           optimizer.register_step_post_hook(
                               lambda *_: self.after_optimizer_step()))

    def after_optimizer_step(self) -> None:
        """Run every local head's ``after_optimizer_step()`` (if any); with
        an active module, only its own heads'."""
        active = self.active_module
        for heads in (self.local_heads if active is None else
                      self.local_heads[active:active + 1]):
            for head in heads.values():
                hook = getattr(head, 'after_optimizer_step', None)
                if hook is not None:
                    hook()

    def module_parameters(self) -> List[List[nn.Parameter]]:
        """Trainable parameters of every local module, in network order.

        Module k < K-1 owns its backbone layers and its local heads; the last
        module owns everything else (rest of the backbone, neck, task heads).
        """
        groups: List[List[nn.Parameter]] = []
        seen = set()
        for layers, heads in zip(self.splitter.module_layers(),
                                 self.local_heads):
            params = [p for layer in layers for p in layer.parameters()]
            params += list(heads.parameters())
            groups.append([p for p in params if p.requires_grad])
            seen.update(id(p) for p in params)
        groups.append([
            p for p in self.parameters()
            if p.requires_grad and id(p) not in seen
        ])
        return groups

    # ------------------------------------------------------------------
    # inference and export
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``loss``: every term of the InfoPro objective; ``predict`` and
        ``tensor``: the architecture's own outputs."""
        if mode == 'loss':
            return self._forward_train(inputs, data_samples)
        return self.architecture(inputs, data_samples, mode)

    def split_meta(self) -> dict:
        """The split and local heads, as recorded in checkpoints."""
        heads = {}
        for name, cfg in sorted(self.head_cfgs.items()):
            cfg = dict(cfg)
            if isinstance(cfg.get('type'), type):
                cfg['type'] = cfg['type'].__name__
            heads[name] = repr(sorted(cfg.items()))
        return dict(
            num_modules=self.splitter.num_modules,
            boundaries=list(self.splitter.boundaries),
            local_heads=heads)

    def plain_state_dict(self) -> Dict[str, Tensor]:
        """The architecture's state dict, without the local heads.

        It loads into the plain downstream model with strict key matching.
        """
        return self.architecture.state_dict()

    # ------------------------------------------------------------------
    # memory planning (InfoPro*)
    def profile_memory(self,
                       input_size: Tuple[int, int],
                       batch_size: int = 1,
                       count_flops: bool = False) -> MemoryProfile:
        """Measure the training memory of every basic layer.

        A dry run with saved-tensor accounting at a reduced resolution
        measures each basic layer, the local heads on each basic layer's
        output, and the architecture's neck + task heads with their loss
        (their peak, transient tensors included, e.g. the indices that an
        accuracy's ``topk`` saves). The bytes (and FLOPs) are extrapolated
        to ``input_size``: proportionally to the input area for
        convolutional and window-attention families (exact: their saved
        bytes scale with the area); where the splitter says attention maps
        grow with the square of the area (MiT, ViT), from a second dry run
        at half the resolution, fitting ``a * area + b * area**2`` per
        entry. The fixed costs (parameters, buffers) are read off the
        architecture and the heads. BN statistics, gradients and train/eval
        mode are restored.

        Args:
            input_size (tuple[int, int]): Training input (H, W).
            batch_size (int): Batch size per GPU. Defaults to 1.
            count_flops (bool): Also count FLOPs (forward and backward) of
                the end-to-end step and of the local heads on every basic
                layer's output; the dry run then back-propagates
                (gradients are restored afterwards). Defaults to False.

        Returns:
            MemoryProfile: Estimates in bytes (and FLOPs) at
            ``input_size``.
        """
        height, width = input_size
        scale = 1
        while (height // (2 * scale) % 32 == 0
               and width // (2 * scale) % 32 == 0 and height * width //
               (4 * scale * scale) >= 256 * 256):
            scale *= 2
        size = (height // scale, width // scale)
        area = (height * width) / (size[0] * size[1])
        measured = self._dry_run(size, count_flops)
        half = None
        if scale > 1 and self.splitter.quadratic_in_area:
            half = self._dry_run((size[0] // 2, size[1] // 2), count_flops)

        # 2 samples: BN after global pooling (ASPP) refuses a batch of 1.
        def scaled(key: str) -> List[int]:
            values = measured[key]
            if half is None:
                return [int(round(v * area * batch_size / 2)) for v in values]
            # v = a*A + b*A**2 at area A, w at A/4: b*A**2 = 4/3 (v - 4w)
            quad = [
                max(0., 4 / 3 * (v - 4 * w))
                for v, w in zip(values, half[key])
            ]
            return [
                int(round(((v - q) * area + q * area**2) * batch_size / 2))
                for v, q in zip(values, quad)
            ]

        param_bytes, static_bytes = _param_bytes(self.architecture)
        profile = MemoryProfile(
            names=[layer.name for layer in self.splitter.basic_layers],
            layer_bytes=scaled('layer_bytes'),
            input_bytes=scaled('input_bytes'),
            head_bytes=scaled('head_bytes'),
            tail_bytes=scaled('tail_bytes')[0],
            param_bytes=param_bytes,
            static_bytes=static_bytes,
            head_param_bytes=measured['head_param_bytes'],
            head_static_bytes=measured['head_static_bytes'],
            input_size=tuple(input_size),
            batch_size=batch_size)
        if count_flops:
            profile.update(
                flops=scaled('flops')[0], head_flops=scaled('head_flops'))
        return profile

    def _dry_run(self, size: Tuple[int, int],
                 count_flops: bool) -> Dict[str, List[int]]:
        """Saved bytes (and FLOPs) of one training step on 2 samples.

        Args:
            size (tuple[int, int]): Input (H, W) of the dry run.
            count_flops (bool): Count FLOPs too (see :meth:`profile_memory`).

        Returns:
            dict[str, list[int]]: Per basic layer ``layer_bytes``,
            ``input_bytes`` (of its input), ``head_bytes``,
            ``head_param_bytes``, ``head_static_bytes`` and ``head_flops``
            of the local heads on its output; ``tail_bytes`` and
            ``flops`` (the end-to-end step without the local heads), one
            value each.
        """
        param = next(self.architecture.parameters())
        gen = torch.Generator(param.device).manual_seed(0)
        inputs = torch.randn(
            2, 3, *size, generator=gen, device=param.device)
        samples = dummy_data_samples(self.architecture, 2, size)
        batch = self._local_batch(inputs, samples)
        n = len(self.splitter.basic_layers)
        layer_bytes = [0] * n
        input_bytes = [0] * (n + 1)
        # per head key (see `_head_key`): saved bytes, parameter bytes, other
        # bytes and FLOPs of one set of local heads
        head_cache: Dict[Any, Tuple[int, int, int, int]] = {}
        counter = flop_counter() if count_flops else nullcontext()

        with self._restored_state(grads=count_flops):
            self.train()
            with counter, SavedTensorTracker(ignore=self) as tracker:
                state = dict(before=0)

                def measure_heads(idx: int,
                                  x: Tensor) -> Tuple[int, int, int, int]:
                    heads = self._build_heads(
                        self.layer_shapes[idx],
                        **self._head_context(idx, 0)).to(x.device)
                    flops = counter.get_total_flops() if count_flops else 0
                    before = tracker.live_bytes
                    tracker.reset_peak()
                    # attached in training: the heads' input needs grad
                    feat = x.detach().requires_grad_()
                    loss = sum(
                        head.loss(feat, batch) for head in heads.values())
                    saved = tracker.peak_bytes - before
                    if count_flops:
                        loss.backward()
                        flops = counter.get_total_flops() - flops
                    return (saved, *_param_bytes(heads), flops)

                def on_layer_end(idx: int, x: Tensor) -> None:
                    layer_bytes[idx] = tracker.live_bytes - state['before']
                    input_bytes[idx + 1] = x.untyped_storage().nbytes()
                    key = self._head_key(idx)
                    if key is not None and key not in head_cache and \
                            self.head_cfgs:
                        head_cache[key] = measure_heads(idx, x)
                    tracker.reset_peak()
                    state['before'] = tracker.live_bytes

                with self._staged_backbone(
                        on_layer_end=on_layer_end, cuts=()):
                    losses = self.architecture.loss(inputs, samples)
                tail_bytes = tracker.peak_bytes - state['before']
                if count_flops:
                    self.parse_losses(losses)[0].backward()
                del losses
            head_flops = sum(h[3] for h in head_cache.values())
            flops = counter.get_total_flops() - head_flops \
                if count_flops else 0
        heads = [
            head_cache.get(self._head_key(idx), (0, 0, 0, 0))
            for idx in range(n)
        ]
        return dict(
            layer_bytes=layer_bytes,
            input_bytes=input_bytes[:n],
            head_bytes=[h[0] for h in heads],
            head_param_bytes=[h[1] for h in heads],
            head_static_bytes=[h[2] for h in heads],
            head_flops=[h[3] for h in heads],
            tail_bytes=[tail_bytes],
            flops=[flops])

    # ------------------------------------------------------------------
    # time planning (module-parallel pipelines)
    def profile_time(self,
                     input_size: Tuple[int, int],
                     batch_size: int,
                     warmup: int = 2,
                     repeats: int = 5,
                     device: Optional[Union[str, torch.device]] = None,
                     clock: Optional[Callable[[], float]] = None
                     ) -> TimeProfile:
        """Time the forward + backward of every basic layer.

        At the training input and batch (time is not extrapolated from a
        smaller run), in train mode with autograd on, on ``device``: each
        basic layer alone on its real input (from one forward of a random
        batch), once with an input that requires grad (inside a module) and
        once without (starting a module); one set of local heads with their
        losses on each basic layer's output (equal heads timed once, heads
        whose loss weight is 0 everywhere skipped: training never runs
        them); the architecture's neck, task heads and losses on the
        backbone outputs. Each is the median of ``repeats`` runs after
        ``warmup`` runs (:func:`~infopro_mm.utils.median_seconds`);
        gradients are dropped after every run, as each training step starts
        without them. Not included: the optimizer step, the data
        preprocessor and the traffic between stages. BN statistics,
        gradients, train/eval mode, the device and the global RNG state are
        restored.

        Args:
            input_size (tuple[int, int]): Training input (H, W).
            batch_size (int): Batch size of one pipeline stage.
            warmup (int): Untimed runs before each measurement. Defaults
                to 2.
            repeats (int): Timed runs per measurement. Defaults to 5.
            device (str | torch.device, optional): Where to time. Defaults
                to where the model's parameters are if not the CPU, else
                the current CUDA device if there is one (the runner moves
                the model there), else the CPU.
            clock (callable, optional): Seconds now, see
                :func:`~infopro_mm.utils.repeat_seconds`. Defaults to wall
                time.

        Returns:
            TimeProfile: Seconds per basic layer, head set and tail.
        """
        param = next(self.architecture.parameters())
        if device is None:
            device = param.device
            if device.type == 'cpu' and torch.cuda.is_available():
                device = torch.device('cuda', torch.cuda.current_device())
        device = torch.device(device)
        home = param.device
        rng_devices = [device] if device.type == 'cuda' else []
        with self._restored_state(grads=True), \
                torch.random.fork_rng(rng_devices):
            self.to(device)
            try:
                self.train()
                timer = partial(
                    median_seconds,
                    warmup=warmup,
                    repeats=repeats,
                    device=device,
                    **({} if clock is None else dict(clock=clock)))
                measured = self._time_layers(input_size, batch_size, timer)
            finally:
                self.to(home)
        return TimeProfile(
            names=[layer.name for layer in self.splitter.basic_layers],
            **measured,
            input_size=tuple(input_size),
            batch_size=batch_size,
            device=str(device),
            warmup=warmup,
            repeats=repeats)

    def _time_layers(self, size: Tuple[int, int], batch_size: int,
                     timer: Callable[[Callable[[], None]], float]) -> dict:
        """The measurements of :meth:`profile_time`.

        Args:
            size (tuple[int, int]): Input (H, W).
            batch_size (int): Batch size.
            timer (callable): Seconds of a callable (warm-up and median).

        Returns:
            dict: ``layer_seconds``, ``input_seconds``, ``head_seconds``
            (lists, one per basic layer) and ``tail_seconds``.
        """
        param = next(self.architecture.parameters())
        gen = torch.Generator(param.device).manual_seed(0)
        inputs = torch.randn(
            batch_size, 3, *size, generator=gen, device=param.device)
        samples = [
            s.to(param.device)
            for s in dummy_data_samples(self.architecture, batch_size, size)
        ]
        batch = self._local_batch(inputs, samples)
        splitter = self.splitter
        states = splitter.layer_states(inputs)
        n = len(splitter.basic_layers)

        def drop_grads(params) -> None:
            for p in params:
                p.grad = None

        def layer_run(idx: int, starts_module: bool) -> Callable[[], None]:
            params = list(splitter.basic_layers[idx].parameters())
            out = states[idx + 1]
            grad = torch.randn(
                (out.seq if isinstance(out, Tokens) else out).shape,
                generator=gen,
                device=param.device)

            def run() -> None:
                splitter.run_layer(idx, states[idx],
                                   starts_module).backward(grad)
                drop_grads(params)

            return run

        starts = [timer(layer_run(idx, True)) for idx in range(n)]
        # the first layer's input (the image) never needs grad
        layer_seconds = [starts[0]] + [
            timer(layer_run(idx, False)) for idx in range(1, n)
        ]
        input_seconds = [s - t for s, t in zip(starts, layer_seconds)]

        active = [
            name for name, spec in self.loss_weights.items()
            if name in self.head_cfgs and any(
                w != 0 for w in ((spec, ) if isinstance(spec, (int, float))
                                 else spec))
        ]
        head_cache: Dict[Any, float] = {}
        for idx in range(n):
            key = self._head_key(idx)
            if key is None or key in head_cache or not active:
                continue
            heads = self._build_heads(
                self.layer_shapes[idx],
                **self._head_context(idx, 0)).to(param.device).train()
            feat = feature_map(states[idx + 1])

            def head_run(heads=heads, feat=feat) -> None:
                # attached in training: the heads' input needs grad
                leaf = feat.detach().requires_grad_()
                sum(heads[name].loss(leaf, batch)
                    for name in active).backward()
                drop_grads(heads.parameters())

            head_cache[key] = timer(head_run)
        head_seconds = [
            head_cache.get(self._head_key(idx), 0.) for idx in range(n)
        ]

        with torch.no_grad():
            outs = splitter.forward(inputs, cuts=())
        backbone = self.architecture.backbone
        params = list(self.parameters())

        def tail_run() -> None:
            taps = tuple(o.detach().requires_grad_() for o in outs)
            backbone.forward = lambda *args, **kwargs: taps
            try:
                losses = self.architecture.loss(inputs, samples)
            finally:
                del backbone.forward
            self.parse_losses(losses)[0].backward()
            drop_grads(params)

        return dict(
            layer_seconds=layer_seconds,
            input_seconds=input_seconds,
            head_seconds=head_seconds,
            tail_seconds=timer(tail_run))

    def _plan_time(self) -> None:
        """Set the cuts minimising the slowest module's time, and log it.

        Under a distributed launcher rank 0 times and broadcasts its
        profile, so that every rank (every pipeline stage) takes the same
        cuts.
        """
        splitter = self.splitter
        profile = None
        if not is_distributed() or get_rank() == 0:
            profile = self.profile_time(splitter.input_size,
                                        splitter.batch_size)
        if is_distributed():
            holder = [profile]
            broadcast_object_list(holder, src=0)
            profile = holder[0]
        cuts, seconds = plan_balanced_cuts(
            profile['layer_seconds'], profile['input_seconds'],
            profile['head_seconds'], profile['tail_seconds'],
            splitter.num_modules)
        splitter.set_cuts(cuts)
        self.time_profile = profile
        stages = ', '.join(f'{1e3 * t:.1f}' for t in seconds)
        MMLogger.get_current_instance().info(
            f'InfoPro time-balanced split for input {splitter.input_size} x '
            f'batch {splitter.batch_size} on {profile["device"]}: cuts '
            f'after {splitter.boundaries}; predicted forward + backward time '
            f'per stage (ms): [{stages}]; slowest stage '
            f'{1e3 * max(seconds):.1f} ms: a module-parallel pipeline trains '
            f'at most {profile.images_per_second(cuts):.1f} images/s (median '
            f'of {profile["repeats"]} runs after {profile["warmup"]} warm-up '
            'runs; optimizer step and stage traffic not included)')

    def _head_key(self, idx: int) -> Any:
        """Local heads on basic layers of equal key are equal.

        The key is the layer's output shape, unless a head is built from
        the later layers: then one key per layer, and None after the last
        (no heads there).
        """
        contextual = any(
            'later_layers' in accepted_arguments(local_head_class(cfg))
            for cfg in self.head_cfgs.values())
        if not contextual:
            return self.layer_shapes[idx]
        last = len(self.splitter.basic_layers) - 1
        return (self.layer_shapes[idx], idx) if idx < last else None

    @contextmanager
    def _restored_state(self, grads: bool):
        """Inside: a profiling run; after: buffers (BN statistics), the
        train/eval mode and, with ``grads``, every gradient as before."""
        buffers = {name: b.clone() for name, b in self.named_buffers()}
        saved = {
            p: None if p.grad is None else p.grad.clone()
            for p in self.parameters()
        } if grads else {}
        was_training = self.training
        try:
            yield
        finally:
            self.train(was_training)
            for name, b in self.named_buffers():
                b.copy_(buffers[name])
            for p, grad in saved.items():
                p.grad = grad

    def _plan_balanced(self) -> None:
        splitter = self.splitter
        profile = self.profile_memory(splitter.input_size,
                                      splitter.batch_size)
        activations = (profile['layer_bytes'], profile['input_bytes'],
                       profile['head_bytes'], profile['tail_bytes'])
        if self.max_memory is None:
            cuts, estimates = plan_balanced_cuts(*activations,
                                                 splitter.num_modules)
        else:
            if self.budget_optimizer is None:
                raise ValueError(
                    '`max_memory` counts the optimizer state: give '
                    "split.optimizer (e.g. 'SGD' or dict(type='SGD', "
                    'momentum=0.9)); tools/train.py fills it in from the '
                    "config's optim_wrapper")
            states = optimizer_states(self.budget_optimizer)
            cuts, estimates, _ = plan_within_budget(
                *activations, self.max_memory,
                profile.fixed_bytes((), states),
                profile.head_fixed_bytes(states))
        splitter.set_cuts(cuts)
        self.memory_profile = profile
        mib = ', '.join(f'{b / 2**20:.0f}' for b in estimates)
        logger = MMLogger.get_current_instance()
        logger.info(
            f'InfoPro* balanced split for input {splitter.input_size} x '
            f'batch {splitter.batch_size}: cuts after {splitter.boundaries}; '
            f'estimated training memory per module (MiB): [{mib}]')
        if self.max_memory is not None:
            logger.info(self._budget_table(profile, cuts, states))

    def _budget_table(self, profile: MemoryProfile, cuts: Sequence[int],
                      states: int) -> str:
        """The log of a budget plan: one row per module, then the peak."""
        bounds = [-1, *cuts, len(profile['names']) - 1]
        heads = profile.head_fixed_bytes(states)
        optimizer = self.budget_optimizer
        if isinstance(optimizer, dict):
            optimizer = optimizer.get('type')
        lines = [
            f'InfoPro* max_memory={format_size(self.max_memory)}: K='
            f'{len(cuts) + 1} is the smallest K that fits (optimizer '
            f'{optimizer}: {states} state tensor(s) per parameter)',
            '| module | basic layers | activations | local heads: '
            'weights, grads, state |', '|---|---|---|---|'
        ]
        for k, cost in enumerate(profile.module_bytes(cuts)):
            first, last = bounds[k] + 1, bounds[k + 1]
            local = format_size(heads[last]) if k < len(cuts) else '-'
            lines.append(
                f'| {k + 1} | {profile["names"][first]}..'
                f'{profile["names"][last]} | {format_size(cost)} | '
                f'{local} |')
        arch = profile.fixed_bytes((), states)
        local = profile.fixed_bytes(cuts, states) - arch
        lines.append(
            f'estimated peak {format_size(profile.peak_bytes(cuts, states))}'
            f' = largest module + architecture weights, grads and state '
            f'{format_size(arch)} + local heads {format_size(local)} '
            f'(budget {format_size(self.max_memory)})')
        return '\n'.join(lines)
