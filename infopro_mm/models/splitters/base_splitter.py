"""What every splitter shares: cuts, staged forward, taps, probing."""
from dataclasses import dataclass
from itertools import groupby
from typing import (Any, Callable, Iterator, List, NamedTuple, Optional,
                    Sequence, Tuple, Union)

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

__all__ = [
    'BaseSplitter', 'BasicLayer', 'Tokens', 'feature_map', 'uniform_cuts'
]


class Tokens(NamedTuple):
    """A token sequence between the basic layers of a transformer.

    Args:
        seq (Tensor): ``(N, L, C)`` tokens.
        hw_shape (tuple[int, int]): Height and width of the patch grid.
        num_extra (int): Leading tokens that are not patches (class or
            distillation tokens). Defaults to 0.
    """

    seq: Tensor
    hw_shape: Tuple[int, int]
    num_extra: int = 0

    def feature_map(self) -> Tensor:
        """The patch tokens as an ``(N, C, H, W)`` map."""
        patches = self.seq[:, self.num_extra:]
        return patches.transpose(1, 2).reshape(
            patches.shape[0], patches.shape[2], *self.hw_shape)


#: What flows from one basic layer to the next.
State = Union[Tensor, Tokens]


def _apply(state: State, fn: Callable[[Tensor], Tensor]) -> State:
    """``fn`` applied to the tensor of ``state``."""
    if isinstance(state, Tokens):
        return state._replace(seq=fn(state.seq))
    return fn(state)


def _tensor(state: State) -> Tensor:
    return state.seq if isinstance(state, Tokens) else state


def feature_map(state: State) -> Tensor:
    """``state`` as the ``(N, C, H, W)`` map local heads receive."""
    return state.feature_map() if isinstance(state, Tokens) else state


@dataclass(frozen=True)
class BasicLayer:
    """One indivisible unit of the paper's splitting (Appendix F).

    Args:
        name (str): Boundary name, e.g. ``'layer3.12'`` or
            ``'stages.2.blocks.5'``.
        modules (tuple[nn.Module]): The backbone's own modules of this
            layer, run in order unless ``run`` is given.
        stage (int, optional): Index (in the backbone's ``out_indices``
            numbering) of the backbone output this layer ends, else None.
        run (callable, optional): ``f(state) -> state`` when the layer is
            more than its modules in sequence (token layouts, position
            embeddings). Defaults to None.
        params (tuple[nn.Parameter]): Parameters the layer uses that belong
            to none of its modules (class token, position embedding).
            Defaults to ().
    """

    name: str
    modules: Tuple[nn.Module, ...]
    stage: Optional[int] = None
    run: Optional[Callable[[State], State]] = None
    params: Tuple[nn.Parameter, ...] = ()

    def __call__(self, x: State) -> State:
        if self.run is not None:
            return self.run(x)
        for module in self.modules:
            x = module(x)
        return x

    def parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of this basic layer (the backbone's own objects)."""
        for module in self.modules:
            yield from module.parameters()
        yield from self.params

    def buffers(self) -> Iterator[Tensor]:
        """Buffers of this basic layer's modules (e.g. BN statistics)."""
        for module in self.modules:
            yield from module.buffers()


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


def _checkpointable_input(layer: BasicLayer, x: State) -> State:
    """Let a ``with_cp`` block checkpoint although ``x`` needs no grad.

    The OpenMMLab blocks (ResNet, Swin, ConvNeXt, MiT, ViT) run
    ``cp.checkpoint`` only when their input requires grad. At a local-module
    boundary the input is detached, and after a frozen stem it never
    required grad, so the first block after either would silently keep all
    its activations. For a trainable ``with_cp`` block, the input tensor is
    replaced by a detached leaf that requires grad: the block then
    checkpoints; the leaf's gradient (one input-gradient computation of the
    block's first layers) is freed as soon as it is accumulated. Anything
    else is returned unchanged.

    Args:
        layer (BasicLayer): The basic layer about to run on ``x``.
        x (Tensor | Tokens): Its input.

    Returns:
        Tensor | Tokens: ``x`` or a detached leaf of it that requires grad.
    """
    tensor = _tensor(x)
    if tensor.requires_grad or not torch.is_grad_enabled():
        return x
    if not any(getattr(m, 'with_cp', False) for m in layer.modules):
        return x
    if not any(p.requires_grad for p in layer.parameters()):
        return x  # frozen block: checkpointing would only add a backward
    leaf = tensor.detach().requires_grad_()
    leaf.register_post_accumulate_grad_hook(_drop_grad)
    return _apply(x, lambda _: leaf)


def _name_ranges(names: Sequence[str]) -> str:
    """``'stem', 'layer1.0'..'layer1.2', ...``: names grouped by prefix."""
    parts = []
    for _, group in groupby(names, key=lambda n: n.rpartition('.')[0]):
        group = list(group)
        parts.append(f'{group[0]!r}' if len(group) == 1 else
                     f'{group[0]!r}..{group[-1]!r}')
    return ', '.join(parts)


class BaseSplitter:
    """Turns a backbone into an ordered list of gradient-isolated modules.

    The backbone is not copied or changed: a splitter keeps references to
    its modules and runs them basic layer by basic layer during training.
    A family's splitter only says what its basic layers are
    (:meth:`_enumerate_layers`) and how a backbone output is formed from a
    basic layer's output (:meth:`_tap`); everything else is here.

    Exactly one of ``boundaries`` and ``num_modules`` is given:

    - ``boundaries=['layer3.12']`` cuts after that basic layer (the paper's
      DeepLabV3-R101 K=2 cut); the names are those of :attr:`basic_layers`.
    - ``num_modules=K`` with ``policy='uniform'`` uses :func:`uniform_cuts`;
      with ``policy='balanced'`` (InfoPro*) the cuts come from measured
      memory (see :class:`~infopro_mm.models.InfoPro`), which then needs
      ``input_size``; with ``policy='time'`` from measured forward +
      backward time, so that the stages of a module-parallel pipeline
      finish together, which needs ``input_size`` and ``batch_size``.

    Args:
        backbone (nn.Module): The architecture's backbone (injected).
        boundaries (Sequence[str], optional): Names of the last basic layer
            of each of the first K-1 modules.
        num_modules (int, optional): K.
        policy (str): One of :attr:`POLICIES`, how cuts are chosen for
            ``num_modules``. Given ``boundaries``, those are the cuts and
            the policy is unused (a warning says so when it is a planner's;
            :attr:`policy` is then None). Defaults to ``'uniform'``.
        input_size (tuple[int, int], optional): Training input (H, W) the
            planners measure at. Defaults to None.
        batch_size (int, optional): Training batch size per GPU (per
            pipeline stage) the planners measure at. Required by
            ``policy='time'``; 1 for the others when not given.
    """

    #: Split policies: uniform layer counts, balanced memory (InfoPro*),
    #: balanced time (module-parallel pipelines).
    POLICIES: Tuple[str, ...] = ('uniform', 'balanced', 'time')

    #: The backbones a splitter splits, in words (for error messages).
    family: str = ''
    #: What its basic layers are, in words (for error messages).
    layer_kinds: str = ''
    #: Whether saved activations grow with the square of the input area
    #: (global or spatially reduced attention), which the memory profile
    #: then extrapolates from two resolutions
    #: (:meth:`~infopro_mm.models.InfoPro.profile_memory`).
    quadratic_in_area: bool = False

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        """The installed backbone classes this splitter splits."""
        raise NotImplementedError

    def __init__(self,
                 backbone: nn.Module,
                 boundaries: Optional[Sequence[str]] = None,
                 num_modules: Optional[int] = None,
                 policy: str = 'uniform',
                 input_size: Optional[Tuple[int, int]] = None,
                 batch_size: Optional[int] = None) -> None:
        if not isinstance(backbone, self.supported_backbones()):
            raise TypeError(
                f'{type(backbone).__name__} is not supported by '
                f'{type(self).__name__}: it splits {self.family}')
        if (boundaries is None) == (num_modules is None):
            given = 'num_modules' if boundaries is None else 'boundaries'
            other = 'boundaries' if boundaries is None else 'num_modules'
            hint = ('' if boundaries is None and num_modules is None else
                    f'; to use `{given}`, unset `{other}` (on the command '
                    f'line: --cfg-options model.split.{other}=None)')
            raise ValueError('give exactly one of `boundaries` and '
                             f'`num_modules` (got {boundaries!r} and '
                             f'{num_modules!r}){hint}')
        if policy not in self.POLICIES:
            raise ValueError(
                f'unknown split policy {policy!r}: choose one of '
                f"{', '.join(map(repr, self.POLICIES))} ('balanced' "
                "balances memory, 'time' forward + backward time)")
        if boundaries is not None:
            if policy != 'uniform':
                MMLogger.get_current_instance().warning(
                    f'split: boundaries {list(boundaries)} are given, so '
                    f'policy={policy!r} is not used (the planner only '
                    'chooses cuts for `num_modules`)')
            policy = None
        elif policy == 'balanced' and input_size is None:
            raise ValueError("policy='balanced' needs `input_size=(H, W)`: "
                             'the training crop size the memory is planned '
                             'for')
        elif policy == 'time' and (input_size is None or batch_size is None):
            raise ValueError(
                "policy='time' needs `input_size=(H, W)` and `batch_size` "
                '(per stage): the layers are timed at the training input '
                f'and batch (got input_size={input_size!r}, '
                f'batch_size={batch_size!r})')
        self.backbone = backbone
        self.policy = policy
        self.input_size = tuple(input_size) if input_size else None
        self.batch_size = 1 if batch_size is None else batch_size
        self.basic_layers = self._enumerate_layers(backbone)
        names = [layer.name for layer in self.basic_layers]
        if boundaries is not None:
            self.cuts = self._cuts_from_names(list(boundaries), names)
        else:
            if not 1 <= num_modules <= len(names):
                raise ValueError(
                    f'num_modules={num_modules} is out of range: '
                    f'{type(backbone).__name__} has {len(names)} basic '
                    f'layers ({self.layer_kinds}), so K must be in '
                    f'[1, {len(names)}]')
            self.cuts = uniform_cuts(len(names), num_modules)
        self.num_modules = len(self.cuts) + 1

    # ------------------------------------------------------------------
    # what a family defines
    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        """The backbone's basic layers, in network order."""
        raise NotImplementedError

    def _is_tap(self, index: int, layer: BasicLayer) -> bool:
        """Whether basic layer ``index`` ends a backbone output."""
        return layer.stage in self.backbone.out_indices

    def _tap(self, layer: BasicLayer, x: State) -> Any:
        """The backbone output formed from ``layer``'s output ``x`` (output
        norms and layout changes happen here, outside every local module)."""
        return x

    # ------------------------------------------------------------------
    # cuts
    def _cuts_from_names(self, boundaries: List[str],
                         names: List[str]) -> List[int]:
        cuts = []
        for name in boundaries:
            if name not in names:
                raise ValueError(
                    f'unknown split boundary {name!r} for '
                    f'{type(self.backbone).__name__}: valid boundaries are '
                    f'{_name_ranges(names[:-1])}')
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

    # ------------------------------------------------------------------
    # running
    def forward(self,
                x: Tensor,
                on_module_end: Optional[Callable[[int, Tensor], None]] = None,
                on_layer_end: Optional[Callable[[int, Tensor], None]] = None,
                cuts: Optional[Sequence[int]] = None,
                modules: Optional[range] = None,
                outs: Sequence[State] = (),
                on_module_output: Optional[Callable[[int, State], None]] = None
                ) -> Tuple[Any, ...]:
        """Run the backbone module by module, like its own ``forward``.

        After each of the first K-1 modules, ``on_module_end(k, h)`` is
        called with the module output as an ``(N, C, H, W)`` map (token
        sequences are reshaped, class tokens dropped), still attached to the
        module's graph so that a local loss can be back-propagated; then the
        output is detached. Backbone outputs (``out_indices`` taps) produced
        by a finished module are detached too, before their output norm
        (which the downstream loss trains), so no later loss reaches that
        module.

        Gradient checkpointing (``with_cp=True`` blocks): the OpenMMLab
        blocks checkpoint only when their input requires grad, which a
        detached boundary tensor (or the output of a frozen stem) does not.
        A trainable ``with_cp`` block whose input does not require grad
        therefore gets a detached copy that does (see
        :func:`_checkpointable_input`); its gradient is computed but dropped,
        and nothing reaches the previous module. Without ``with_cp`` the
        forward is unchanged.

        Args:
            x (Tensor): The backbone input.
            on_module_end (callable, optional): ``f(k, h)`` for k < K-1.
            on_layer_end (callable, optional): ``f(i, h)`` after every basic
                layer, ``h`` as for ``on_module_end`` (used for probing and
                memory profiling).
            cuts (Sequence[int], optional): Cuts to use instead of
                :attr:`cuts` (``()`` runs the backbone as one module).
            modules (range, optional): Run only these local modules (a
                contiguous range of indices, as one pipeline stage does):
                ``x`` is then the input of the first of them. Defaults to
                all.
            outs (Sequence[Tensor | Tokens]): The detached backbone-output
                taps of the modules before ``modules`` (before any output
                norm), as the previous pipeline stage returned them.
                Defaults to none.
            on_module_output (callable, optional): ``f(k, state)`` for
                k < K-1 with the detached state module k hands to module
                k+1 (a tensor, or :class:`Tokens` with their grid shape),
                which is what a pipeline stage sends to the next one.

        Returns:
            tuple: The outputs the backbone's ``forward`` returns; when
            ``modules`` stops before the last module, the taps so far
            (before any output norm), for the next pipeline stage.
        """
        cuts = sorted(self.cuts if cuts is None else cuts)
        bounds = [-1, *cuts, len(self.basic_layers) - 1]
        modules = range(len(bounds) - 1) if modules is None else modules
        first = bounds[modules.start] + 1
        earlier = [
            layer for idx, layer in enumerate(self.basic_layers[:first])
            if self._is_tap(idx, layer)
        ]
        if len(earlier) != len(outs):
            raise ValueError(f'modules {modules} need the {len(earlier)} '
                             f'backbone outputs of the modules before them, '
                             f'got {len(outs)}')
        taps: List[Tuple[BasicLayer, State]] = list(zip(earlier, outs))
        state: State = x
        module = modules.start
        for idx in range(first, bounds[modules.stop] + 1):
            layer = self.basic_layers[idx]
            state = _checkpointable_input(layer, state)
            state = layer(state)
            if on_layer_end is not None:
                on_layer_end(idx, feature_map(state))
            if self._is_tap(idx, layer):
                taps.append((layer, state))
            if idx in cuts:
                if on_module_end is not None:
                    on_module_end(module, feature_map(state))
                state = _apply(state, Tensor.detach)
                taps = [(tap, _apply(s, Tensor.detach)) for tap, s in taps]
                if on_module_output is not None:
                    on_module_output(module, state)
                module += 1
        if modules.stop < len(bounds) - 1:
            return tuple(s for _, s in taps)
        return tuple(self._tap(layer, s) for layer, s in taps)

    @torch.no_grad()
    def layer_states(self, x: Tensor) -> List[State]:
        """What flows between the basic layers on ``x``, without autograd.

        Args:
            x (Tensor): The backbone input.

        Returns:
            list: ``n + 1`` states (tensors or :class:`Tokens`) for ``n``
            basic layers: the input of every basic layer, then the last
            one's output.
        """
        states = [x]
        for layer in self.basic_layers:
            states.append(layer(states[-1]))
        return states

    def run_layer(self, index: int, x: State, starts_module: bool) -> Tensor:
        """Run basic layer ``index`` alone on ``x``, as training runs it.

        The input is detached; inside a module (``starts_module=False``) it
        requires grad, so that a backward computes the input gradient the
        previous layer needs; at a module start it does not (except for a
        ``with_cp`` block, see :func:`_checkpointable_input`), as after a
        local-module boundary. Used to time the layers one by one.

        Args:
            index (int): The basic layer.
            x (Tensor | Tokens): Its input (e.g. from :meth:`layer_states`).
            starts_module (bool): Whether the layer starts a module.

        Returns:
            Tensor: The layer's output tensor, attached to its graph.
        """
        layer = self.basic_layers[index]
        x = _apply(x, Tensor.detach)
        if starts_module:
            x = _checkpointable_input(layer, x)
        else:
            x = _apply(x, Tensor.requires_grad_)
        return _tensor(layer(x))

    @torch.no_grad()
    def probe(self, size: int = 64) -> List[Tuple[int, int]]:
        """Output channels and stride of every basic layer.

        Runs a ``size`` x ``size`` dry run in eval mode (BN statistics are
        not touched) and checks that the staged forward reproduces the
        backbone's own forward, which guards against subclasses whose
        forward differs from the pattern the splitter follows.

        Returns:
            list[tuple[int, int]]: ``(channels, stride)`` per basic layer.
        """
        backbone = self.backbone
        was_training = backbone.training
        backbone.eval()
        try:
            param = next(backbone.parameters())
            first_conv = next(
                m for layer_module in self.basic_layers[0].modules
                for m in layer_module.modules() if isinstance(m, nn.Conv2d))
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
        if not _same_outputs(staged, reference):
            raise TypeError(
                f'{type(backbone).__name__}.forward does not follow the '
                f'pattern of {self.family}; {type(self).__name__} cannot '
                'split it')
        return [(s[1], max(1, size // s[-1])) for s in shapes]


def _same_outputs(a: Any, b: Any) -> bool:
    """Whether two (nested) backbone outputs are equal."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same_outputs, a, b))
    return False
