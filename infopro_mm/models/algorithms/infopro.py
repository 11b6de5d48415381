"""The InfoPro algorithm (Wang et al., ICLR 2021) around an OpenMMLab model."""
import inspect
from contextlib import contextmanager
from functools import partial
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel, ModuleDict, ModuleList
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils import SavedTensorTracker
from ..heads import LocalBatch
from ..splitters import module_costs, plan_balanced_cuts, splitter_for
from .task import dummy_data_samples, task_info

__all__ = ['InfoPro', 'MemoryProfile', 'is_infopro_config']

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

    Keys: ``layer_bytes``, ``input_bytes``, ``head_bytes`` (one per basic
    layer), ``tail_bytes``, ``names``, ``input_size``, ``batch_size``.
    """

    def module_bytes(self, cuts: Sequence[int]) -> List[int]:
        """Estimate of every module for the given cuts."""
        return module_costs(cuts, self['layer_bytes'], self['input_bytes'],
                            self['head_bytes'], self['tail_bytes'])


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
            ``dict(num_modules=4, policy='balanced', input_size=(512, 1024))``.
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
        self.for_training = train_cfg is not None
        # mmpretrain sets Mixup/CutMix (train_cfg.augments) on the
        # classifier's own preprocessor only: keep them on the replacement
        own = architecture.data_preprocessor
        if getattr(own, 'batch_augments', None) is not None and getattr(
                self.data_preprocessor, 'batch_augments', 0) is None:
            self.data_preprocessor.batch_augments = own.batch_augments
            self.data_preprocessor.to_onehot = own.to_onehot
        # One preprocessor for training and inference alike.
        architecture.data_preprocessor = self.data_preprocessor
        self.architecture = architecture
        if not hasattr(architecture, 'backbone'):
            raise TypeError(f'{type(architecture).__name__} has no backbone '
                            'for InfoPro to split')
        split = dict(split)
        split.setdefault('type', splitter_for(architecture.backbone))
        self.splitter = MODELS.build(
            split, default_args=dict(backbone=architecture.backbone))
        self.head_cfgs = {
            name: cfg
            for name, cfg in (local_heads or {}).items() if cfg is not None
        }
        if self.splitter.num_modules > 1 and not self.head_cfgs:
            raise ValueError(
                f'K={self.splitter.num_modules} local modules need '
                '`local_heads`: without them the first modules never learn')
        self.loss_weights = dict(loss_weights or {})
        unknown = set(self.loss_weights) - set(local_heads or {})
        if unknown:
            raise ValueError(f'loss_weights names {sorted(unknown)} match no '
                             f'local head (heads: {sorted(self.head_cfgs)})')
        missing = set(self.head_cfgs) - set(self.loss_weights)
        if self.splitter.num_modules > 1 and missing:
            raise ValueError(
                f'local heads {sorted(missing)} have no loss weight: give '
                '`loss_weights` for every local head (e.g. the authors\' '
                'ResNet-32 K=2 setting dict(recon=5, task=1); docs/configs.md, '
                '"Loss weights", lists the published ones)')
        # Multipliers of the configured weights, scheduled by InfoProHook.
        self.weight_factors = {name: 1.0 for name in self.head_cfgs}
        self.task_info = task_info(architecture)
        self.layer_shapes = self.splitter.probe()
        self.memory_profile: Optional[MemoryProfile] = None
        if self.for_training and self.splitter.policy == 'balanced' and \
                self.splitter.num_modules > 1:
            self._plan_balanced()
        # mmengine containers, so that init_weights() reaches the heads.
        self.local_heads = ModuleList(
            self._build_heads(self.layer_shapes[cut])
            for cut in (self.splitter.cuts if self.for_training else ()))
        # Detached local losses (and CUDA peak memory) of the last train step.
        self.local_log_vars: Dict[str, Tensor] = {}
        self.track_cuda_memory = False
        MMLogger.get_current_instance().info(
            f'InfoPro: K={self.splitter.num_modules}, local modules end '
            f'after {self.splitter.boundaries}')

    # ------------------------------------------------------------------
    # construction helpers
    def _build_heads(self, shape: Tuple[int, int]) -> ModuleDict:
        """Local heads for a module output of ``(channels, stride)``."""
        channels, stride = shape
        heads = ModuleDict()
        for name, cfg in self.head_cfgs.items():
            cfg = dict(cfg)
            head_cls = MODELS.get(cfg['type']) if isinstance(
                cfg['type'], str) else cfg['type']
            if head_cls is None:
                raise KeyError(f'local head type {cfg["type"]!r} is not '
                               'registered')
            accepted = inspect.signature(head_cls).parameters
            defaults = dict(
                in_channels=channels, in_stride=stride, **self.task_info)
            for key, value in defaults.items():
                if key in accepted:
                    cfg.setdefault(key, value)
            heads[name] = MODELS.build(cfg)
        return heads

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
        batch = self._local_batch(inputs, data_samples)
        local_losses: Dict[str, Tensor] = {}
        self.local_log_vars = {}

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
            losses = self._forward_train(
                data['inputs'],
                data['data_samples'],
                local_backward=optim_wrapper.local_backward,
                on_local_backward=on_local_backward)
        parsed_loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed_loss)
        self._record_cuda_memory(self.splitter.num_modules - 1)
        return log_vars

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
    def profile_memory(self, input_size: Tuple[int, int],
                       batch_size: int = 1) -> MemoryProfile:
        """Measure the training memory of every basic layer.

        A dry run with saved-tensor accounting at a reduced resolution
        measures each basic layer, the local heads on each basic layer's
        output, and the architecture's neck + task heads with their loss.
        The bytes are extrapolated to ``input_size``: proportionally to the
        input area for convolutional and window-attention families (exact:
        their saved bytes scale with the area); where the splitter says
        attention maps grow with the square of the area (MiT, ViT), from a
        second dry run at half the resolution, fitting ``a * area +
        b * area**2`` per entry. BN statistics and train/eval mode are
        restored.

        Args:
            input_size (tuple[int, int]): Training input (H, W).
            batch_size (int): Batch size per GPU. Defaults to 1.

        Returns:
            MemoryProfile: Estimates in bytes at ``input_size``.
        """
        height, width = input_size
        scale = 1
        while (height // (2 * scale) % 32 == 0
               and width // (2 * scale) % 32 == 0 and height * width //
               (4 * scale * scale) >= 256 * 256):
            scale *= 2
        size = (height // scale, width // scale)
        # 2 samples: BN after global pooling (ASPP) refuses a batch of 1.
        area = (height * width) / (size[0] * size[1])
        measured = self._saved_bytes(size)
        if scale > 1 and self.splitter.quadratic_in_area:
            half = self._saved_bytes((size[0] // 2, size[1] // 2))
        else:
            half = None

        factor = area * batch_size / 2

        def scaled(key):
            values = measured[key]
            if half is None:
                return [int(round(v * factor)) for v in values]
            # v = a*A + b*A**2 at area A, w at A/4: b*A**2 = 4/3 (v - 4w)
            quad = [
                max(0., 4 / 3 * (v - 4 * w))
                for v, w in zip(values, half[key])
            ]
            return [
                int(round(((v - q) * area + q * area**2) * batch_size / 2))
                for v, q in zip(values, quad)
            ]

        return MemoryProfile(
            names=[layer.name for layer in self.splitter.basic_layers],
            layer_bytes=scaled('layer_bytes'),
            input_bytes=scaled('input_bytes'),
            head_bytes=scaled('head_bytes'),
            tail_bytes=scaled('tail_bytes')[0],
            input_size=tuple(input_size),
            batch_size=batch_size)

    def _saved_bytes(self, size: Tuple[int, int]) -> Dict[str, List[int]]:
        """Saved bytes of one dry training run on 2 samples of ``size``.

        Returns:
            dict[str, list[int]]: ``layer_bytes``, ``input_bytes`` and
            ``head_bytes`` per basic layer, ``tail_bytes`` (one value).
        """
        buffers = {
            name: b.clone()
            for name, b in self.named_buffers()
        }
        was_training = self.training
        param = next(self.architecture.parameters())
        gen = torch.Generator(param.device).manual_seed(0)
        inputs = torch.randn(
            2, 3, *size, generator=gen, device=param.device)
        samples = dummy_data_samples(self.architecture, 2, size)
        batch = self._local_batch(inputs, samples)
        n = len(self.splitter.basic_layers)
        layer_bytes, head_bytes = [0] * n, [0] * n
        input_bytes = [0] * (n + 1)
        head_cache: Dict[Tuple[int, int], int] = {}
        self.train()
        try:
            with SavedTensorTracker(ignore=self) as tracker:
                state = dict(before=0)

                def on_layer_end(idx: int, x: Tensor) -> None:
                    layer_bytes[idx] = tracker.live_bytes - state['before']
                    input_bytes[idx + 1] = x.untyped_storage().nbytes()
                    key = self.layer_shapes[idx]
                    if key not in head_cache and self.head_cfgs:
                        heads = self._build_heads(key).to(x.device)
                        before = tracker.live_bytes
                        loss = sum(
                            head.loss(x.detach(), batch)
                            for head in heads.values())
                        head_cache[key] = tracker.live_bytes - before
                        del loss
                    head_bytes[idx] = head_cache.get(key, 0)
                    state['before'] = tracker.live_bytes

                with self._staged_backbone(
                        on_layer_end=on_layer_end, cuts=()):
                    losses = self.architecture.loss(inputs, samples)
                tail_bytes = tracker.live_bytes - state['before']
                del losses
        finally:
            self.train(was_training)
            for name, b in self.named_buffers():
                b.copy_(buffers[name])
        return dict(
            layer_bytes=layer_bytes,
            input_bytes=input_bytes[:n],
            head_bytes=head_bytes,
            tail_bytes=[tail_bytes])

    def _plan_balanced(self) -> None:
        splitter = self.splitter
        profile = self.profile_memory(splitter.input_size,
                                      splitter.batch_size)
        cuts, estimates = plan_balanced_cuts(profile['layer_bytes'],
                                             profile['input_bytes'],
                                             profile['head_bytes'],
                                             profile['tail_bytes'],
                                             splitter.num_modules)
        splitter.set_cuts(cuts)
        self.memory_profile = profile
        mib = ', '.join(f'{b / 2**20:.0f}' for b in estimates)
        MMLogger.get_current_instance().info(
            f'InfoPro* balanced split for input {splitter.input_size} x '
            f'batch {splitter.batch_size}: cuts after {splitter.boundaries}; '
            f'estimated training memory per module (MiB): [{mib}]')
