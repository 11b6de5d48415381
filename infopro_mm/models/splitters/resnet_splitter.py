"""Splits a ResNet-family backbone into gradient-isolated local modules."""
import importlib
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import DOWNSTREAM, is_available

__all__ = ['BasicLayer', 'ResNetSplitter', 'supported_backbones',
           'uniform_cuts']


def supported_backbones() -> Tuple[type, ...]:
    """The ResNet base classes of those of mmseg, mmdet and mmpretrain that
    are installed.

    Their subclasses (ResNetV1c, ResNetV1d, ResNeXt, ResNet_CIFAR) share the
    stem + ``res_layers`` structure this splitter relies on.
    """
    return tuple(
        importlib.import_module(f'{package}.models.backbones').ResNet
        for package in DOWNSTREAM if is_available(package))


@dataclass(frozen=True)
class BasicLayer:
    """One indivisible unit of the paper's splitting (Appendix F).

    Args:
        name (str): ``'stem'`` or ``'<res layer>.<block index>'``, e.g.
            ``'layer3.12'``.
        modules (tuple[nn.Module]): The backbone's own modules, run in order.
        stage (int, optional): Index of the residual stage whose last block
            this is (its output is a backbone output candidate), else None.
    """

    name: str
    modules: Tuple[nn.Module, ...]
    stage: Optional[int] = None

    def __call__(self, x: Tensor) -> Tensor:
        for module in self.modules:
            x = module(x)
        return x

    def parameters(self):
        """Parameters of this basic layer (the backbone's own objects)."""
        for module in self.modules:
            yield from module.parameters()


def uniform_cuts(num_layers: int, num_modules: int) -> List[int]:
    """Cuts giving every module the same number of basic layers.

    When ``num_layers`` does not divide by ``num_modules``, earlier modules
    get one basic layer fewer (paper Appendix F: ResNet-110 into 4 modules
    gives 13, 14, 14, 14).

    Returns:
        list[int]: Index of the last basic layer of each of the first
        ``num_modules - 1`` modules.
    """
    base, extra = divmod(num_layers, num_modules)
    sizes = [base + (1 if k >= num_modules - extra else 0)
             for k in range(num_modules)]
    cuts, end = [], -1
    for size in sizes[:-1]:
        end += size
        cuts.append(end)
    return cuts


def _drop_grad(leaf: Tensor) -> None:
    """Post-accumulate-grad hook: free the gradient nobody reads."""
    leaf.grad = None


def _checkpointable_input(layer: BasicLayer, x: Tensor) -> Tensor:
    """Let a ``with_cp`` block checkpoint although ``x`` needs no grad.

    mmseg/mmdet/mmpretrain ResNet blocks run ``cp.checkpoint`` only when
    their input requires grad. At a local-module boundary the input is
    detached, and after a frozen stem it never required grad, so the first
    block after either would silently keep all its activations. For a
    trainable ``with_cp`` block, ``x`` is replaced by a detached leaf that
    requires grad: the block then checkpoints; the leaf's gradient (one
    input-gradient computation of the block's first convolutions) is freed
    as soon as it is accumulated. Anything else is returned unchanged.

    Args:
        layer (BasicLayer): The basic layer about to run on ``x``.
        x (Tensor): Its input.

    Returns:
        Tensor: ``x`` or a detached leaf of it that requires grad.
    """
    if x.requires_grad or not torch.is_grad_enabled():
        return x
    if not any(getattr(m, 'with_cp', False) for m in layer.modules):
        return x
    if not any(p.requires_grad for p in layer.parameters()):
        return x  # frozen block: checkpointing would only add a backward
    x = x.detach().requires_grad_()
    x.register_post_accumulate_grad_hook(_drop_grad)
    return x


@MODELS.register_module()
class ResNetSplitter:
    """Turns a ResNet-family backbone into an ordered list of local modules.

    The backbone is not copied or changed: the splitter keeps references to
    its modules and runs them stage by stage during training. Basic layers
    are the stem (conv/norm/relu or deep stem, plus the max-pool) and every
    residual block.

    Exactly one of ``boundaries`` and ``num_modules`` is given:

    - ``boundaries=['layer3.12']`` cuts after block 12 of ``layer3`` (the
      paper's DeepLabV3-R101 K=2 cut); ``'stem'`` cuts after the stem.
    - ``num_modules=K`` with ``policy='uniform'`` uses :func:`uniform_cuts`;
      with ``policy='balanced'`` (InfoPro*) the cuts come from measured
      memory (see :class:`~infopro_mm.models.InfoPro`), which then needs
      ``input_size``.

    Args:
        backbone (nn.Module): The architecture's backbone (injected).
        boundaries (Sequence[str], optional): Names of the last basic layer
            of each of the first K-1 modules.
        num_modules (int, optional): K.
        policy (str): ``'uniform'`` or ``'balanced'``, how cuts are chosen
            for ``num_modules``. Given ``boundaries``, those are the cuts and
            the policy is unused (a warning says so when it is
            ``'balanced'``; :attr:`policy` is then None). Defaults to
            ``'uniform'``.
        input_size (tuple[int, int], optional): Training input (H, W) used by
            the balanced planner. Defaults to None.
        batch_size (int): Training batch size per GPU, for the planner's
            estimates. Defaults to 1.
    """

    def __init__(self,
                 backbone: nn.Module,
                 boundaries: Optional[Sequence[str]] = None,
                 num_modules: Optional[int] = None,
                 policy: str = 'uniform',
                 input_size: Optional[Tuple[int, int]] = None,
                 batch_size: int = 1) -> None:
        if not isinstance(backbone, supported_backbones()):
            raise TypeError(
                f'{type(backbone).__name__} is not supported by '
                'ResNetSplitter: it splits the ResNet family of mmseg, mmdet '
                'and mmpretrain (ResNet, ResNetV1c, ResNetV1d, ResNeXt, '
                'ResNet_CIFAR) and infopro_mm.CIFARResNet')
        if (boundaries is None) == (num_modules is None):
            given = 'num_modules' if boundaries is None else 'boundaries'
            other = 'boundaries' if boundaries is None else 'num_modules'
            hint = ('' if boundaries is None and num_modules is None else
                    f'; to use `{given}`, unset `{other}` (on the command '
                    f'line: --cfg-options model.split.{other}=None)')
            raise ValueError('give exactly one of `boundaries` and '
                             f'`num_modules` (got {boundaries!r} and '
                             f'{num_modules!r}){hint}')
        if policy not in ('uniform', 'balanced'):
            raise ValueError(
                f"policy must be 'uniform' or 'balanced', got {policy!r}")
        if boundaries is not None:
            if policy == 'balanced':
                MMLogger.get_current_instance().warning(
                    f'split: boundaries {list(boundaries)} are given, so '
                    "policy='balanced' is not used (the planner only "
                    'chooses cuts for `num_modules`)')
            policy = None
        elif policy == 'balanced' and input_size is None:
            raise ValueError("policy='balanced' needs `input_size=(H, W)`: "
                             'the training crop size the memory is planned '
                             'for')
        self.backbone = backbone
        self.policy = policy
        self.input_size = tuple(input_size) if input_size else None
        self.batch_size = batch_size
        self.basic_layers = self._enumerate_layers(backbone)
        names = [layer.name for layer in self.basic_layers]
        if boundaries is not None:
            self.cuts = self._cuts_from_names(list(boundaries), names)
        else:
            if not 1 <= num_modules <= len(names):
                raise ValueError(
                    f'num_modules={num_modules} is out of range: '
                    f'{type(backbone).__name__} has {len(names)} basic '
                    f'layers (stem + residual blocks), so K must be in '
                    f'[1, {len(names)}]')
            self.cuts = uniform_cuts(len(names), num_modules)
        self.num_modules = len(self.cuts) + 1

    @staticmethod
    def _enumerate_layers(backbone: nn.Module) -> List[BasicLayer]:
        if getattr(backbone, 'deep_stem', False):
            stem = [backbone.stem]
        else:
            stem = [backbone.conv1, backbone.norm1, backbone.relu]
        if hasattr(backbone, 'maxpool'):
            stem.append(backbone.maxpool)
        layers = [BasicLayer('stem', tuple(stem))]
        for stage, layer_name in enumerate(backbone.res_layers):
            blocks = list(getattr(backbone, layer_name))
            for i, block in enumerate(blocks):
                layers.append(
                    BasicLayer(f'{layer_name}.{i}', (block, ),
                               stage if i == len(blocks) - 1 else None))
        return layers

    @staticmethod
    def _cuts_from_names(boundaries: List[str], names: List[str]) -> List[int]:
        cuts = []
        for name in boundaries:
            if name not in names:
                raise ValueError(
                    f'unknown split boundary {name!r}: valid boundaries are '
                    f"'stem' and '<layerN>.<block>' for the backbone's "
                    f'blocks, from {names[1]!r} to {names[-2]!r}')
            cuts.append(names.index(name))
        if cuts != sorted(set(cuts)):
            raise ValueError('split boundaries must be distinct and in '
                             f'network order, got {boundaries}')
        if cuts and cuts[-1] == len(names) - 1:
            raise ValueError(
                f'split boundary {names[-1]!r} is the last basic layer: it '
                'would leave the last module empty')
        return cuts

    @property
    def boundaries(self) -> List[str]:
        """Names of the last basic layer of each local module."""
        return [self.basic_layers[c].name for c in self.cuts]

    def set_cuts(self, cuts: Sequence[int]) -> None:
        """Replace the cuts (e.g. with the balanced planner's)."""
        names = [layer.name for layer in self.basic_layers]
        self.cuts = self._cuts_from_names([names[c] for c in cuts], names)
        self.num_modules = len(self.cuts) + 1

    def module_layers(self) -> List[List[BasicLayer]]:
        """Basic layers of each local module, in order."""
        bounds = [-1, *self.cuts, len(self.basic_layers) - 1]
        return [
            self.basic_layers[bounds[k] + 1:bounds[k + 1] + 1]
            for k in range(len(bounds) - 1)
        ]

    def forward(self,
                x: Tensor,
                on_module_end: Optional[Callable[[int, Tensor], None]] = None,
                on_layer_end: Optional[Callable[[int, Tensor], None]] = None,
                cuts: Optional[Sequence[int]] = None,
                modules: Optional[range] = None,
                outs: Sequence[Tensor] = ()) -> Tuple[Tensor, ...]:
        """Run the backbone module by module, like its own ``forward``.

        After each of the first K-1 modules, ``on_module_end(k, h)`` is
        called with the module output (still attached to the module's graph,
        so a local loss can be back-propagated), then the output is detached.
        Backbone outputs (``out_indices`` taps) produced by a finished module
        are detached too, so no later loss reaches that module.

        Gradient checkpointing (``with_cp=True`` blocks): the OpenMMLab
        ResNet blocks checkpoint only when their input requires grad, which
        a detached boundary tensor (or the output of a frozen stem) does
        not. A trainable ``with_cp`` block whose input does not require grad
        therefore gets a detached copy that does (see
        :func:`_checkpointable_input`); its gradient is computed but dropped,
        and nothing reaches the previous module. Without ``with_cp`` the
        forward is unchanged.

        Args:
            x (Tensor): The backbone input.
            on_module_end (callable, optional): ``f(k, h)`` for k < K-1.
            on_layer_end (callable, optional): ``f(i, x)`` after every basic
                layer (used for probing and memory profiling).
            cuts (Sequence[int], optional): Cuts to use instead of
                :attr:`cuts` (``()`` runs the backbone as one module).
            modules (range, optional): Run only these local modules (a
                contiguous range of indices, as one pipeline stage does):
                ``x`` is then the input of the first of them. Defaults to
                all.
            outs (Sequence[Tensor]): Backbone outputs of the modules before
                ``modules`` (detached), as a previous stage passes them on.
                Defaults to none.

        Returns:
            tuple[Tensor]: The outputs the backbone's ``forward`` returns.
        """
        out_indices = self.backbone.out_indices
        cuts = sorted(self.cuts if cuts is None else cuts)
        bounds = [-1, *cuts, len(self.basic_layers) - 1]
        modules = range(len(bounds) - 1) if modules is None else modules
        outs = list(outs)
        module = modules.start
        for idx in range(bounds[modules.start] + 1, bounds[modules.stop] + 1):
            layer = self.basic_layers[idx]
            x = _checkpointable_input(layer, x)
            x = layer(x)
            if on_layer_end is not None:
                on_layer_end(idx, x)
            if layer.stage in out_indices:
                outs.append(x)
            if idx in cuts:
                if on_module_end is not None:
                    on_module_end(module, x)
                x = x.detach()
                outs = [o.detach() for o in outs]
                module += 1
        return tuple(outs)

    @torch.no_grad()
    def probe(self, size: int = 64) -> List[Tuple[int, int]]:
        """Output channels and stride of every basic layer.

        Runs a ``size`` x ``size`` dry run in eval mode (BN statistics are
        not touched) and checks that the staged forward reproduces the
        backbone's own forward, which guards against subclasses whose
        forward differs from the ResNet pattern.

        Returns:
            list[tuple[int, int]]: ``(channels, stride)`` per basic layer.
        """
        backbone = self.backbone
        was_training = backbone.training
        backbone.eval()
        try:
            param = next(backbone.parameters())
            first_conv = next(m for m in self.basic_layers[0].modules[0].modules()
                              if isinstance(m, nn.Conv2d))
            gen = torch.Generator(param.device).manual_seed(0)
            x = torch.randn(
                1,
                first_conv.in_channels,
                size,
                size,
                generator=gen,
                device=param.device,
                dtype=param.dtype)
            shapes = []
            staged = self.forward(
                x, on_layer_end=lambda i, y: shapes.append(y.shape))
            reference = backbone(x)
        finally:
            backbone.train(was_training)
        if len(staged) != len(reference) or not all(
                torch.equal(a, b) for a, b in zip(staged, reference)):
            raise TypeError(
                f'{type(backbone).__name__}.forward does not follow the '
                'ResNet stem + res_layers pattern; ResNetSplitter cannot '
                'split it')
        return [(s[1], max(1, size // s[-1])) for s in shapes]
