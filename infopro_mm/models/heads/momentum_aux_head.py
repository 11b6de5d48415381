"""MAN: the momentum auxiliary network (Su et al., ECCV 2024)."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import BaseLocalHead, LocalBatch, build_local_head

__all__ = ['MomentumAuxHead', 'frozen_copy']


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters are buffers.

    The copy computes what ``module`` computes and gradients flow through it
    to its input, but it has no parameters: nothing can train it, an
    optimizer built from the model never holds it, and its tensors are
    still saved and loaded with the model's state.

    Args:
        module (nn.Module): The module to copy.
    """
    module = copy.deepcopy(module)
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            del sub._parameters[name]
            sub.register_buffer(name, param.detach().clone())
    return module


@MODELS.register_module()
class MomentumAuxHead(BaseLocalHead):
    """Momentum auxiliary network (MAN) in front of another local head.

    MAN (Su et al., "Momentum Auxiliary Network for Supervised Local
    Learning", ECCV 2024) lets local module k see the module after it: the
    module output ``h`` first goes through two copies of the first basic
    layer of module k+1, and the wrapped ``head`` (e.g. InfoPro's decoder
    or classifier) is trained on their summed output
    ``y = EMA(h) + LB(h)``:

    - ``EMA``: an exponential moving average of that layer's weights,
      ``ema <- momentum * ema + (1 - momentum) * live``, updated after every
      optimizer step (:meth:`after_optimizer_step`, which
      :class:`~infopro_mm.models.InfoPro` calls from a step post-hook). It
      is never trained by the local loss: its weights are buffers (no
      gradient, not in the optimizer), but the gradient flows through it to
      module k.
    - ``LB`` (the paper's "learnable bias"): a trainable copy of the same
      layer, trained by module k's local loss only, that compensates the
      difference between module k+1's features and what the EMA gives.

    The real next layer is never run by this head, so it gets no gradient
    from module k (gradient isolation holds), and the head lives outside the
    architecture, so exported checkpoints stay plain.

    Where the details come from (the authors' public code,
    ``JunhaoSu0/MAN``, ``Exp on CIFAR-SVHN-STL/networks/
    resnetInfoPro_MAN.py`` and ``train.py``, read for this class; their
    code is not used here):

    - the layer copied is the first block after the module's cut, and the
      auxiliary input is ``LB(h) + EMA(h)`` (a sum of two parallel copies,
      both deep copies of that block) -- from the code;
    - the decoder and the classifier of InfoPro + MAN both read ``y`` --
      from the code. Here each wrapped head has its own ``LB`` and ``EMA``
      (wrap both InfoPro heads to follow the authors; the two EMA copies
      hold equal values, the two LBs train separately);
    - only the layer's parameters are averaged; the EMA copy's BN running
      statistics are its own (updated by its forward in training mode) --
      from the code, which zips ``parameters()`` only;
    - the update follows each iteration's step (the code updates right
      after the local backward, before that iteration's step, i.e. from the
      weights one step older; here it uses the weights just written);
    - momentum 0.995: the value reported for MAN, not checked against the
      paper's text (which could not be read when this was written). The
      code's default is 0.999 (model) and ``--momentum`` defaults to 1.0
      in ``train.py`` (no published command line);
    - both copies start equal to the live layer here; in the authors'
      code the copies are made before their global re-initialisation loop,
      so both start from fresh Kaiming draws instead.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        head (dict): Config of the wrapped local head, built for the next
            layer's output (its ``in_channels``, ``in_stride``,
            ``num_classes`` and ``ignore_index`` are filled in).
        later_layers (Sequence): The basic layers after the module
            (filled in by :class:`~infopro_mm.models.InfoPro`).
        later_shapes (Sequence[tuple[int, int]]): Their output
            ``(channels, stride)`` (filled in).
        momentum (float): EMA momentum. Defaults to 0.995.
        num_classes (int, optional): For the wrapped head (filled in).
        ignore_index (int, optional): For the wrapped head (filled in).
        init_cfg (dict | list[dict], optional): Initialisation config of
            the head; the two copies are then reset to the live layer.
    """

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 head: Optional[dict] = None,
                 later_layers: Sequence = (),
                 later_shapes: Sequence[Tuple[int, int]] = (),
                 momentum: float = 0.995,
                 num_classes: Optional[int] = None,
                 ignore_index: Optional[int] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, in_stride, init_cfg=init_cfg)
        if head is None:
            raise ValueError('MomentumAuxHead needs `head`, the config of '
                             'the local head it feeds')
        if not later_layers or not later_shapes:
            raise ValueError(
                'MomentumAuxHead needs the basic layer after its module '
                '(`later_layers`, filled in by InfoPro); a module that ends '
                'at the last basic layer has none')
        if not 0. <= momentum <= 1.:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        live = nn.Sequential(*later_layers[0].modules)
        # A tuple: the live layer stays the architecture's, unregistered.
        self._live = (live, )
        self.layer_name = later_layers[0].name
        self.momentum = momentum
        self.ema = frozen_copy(live)
        self.bias_layer = copy.deepcopy(live)
        for param in self.bias_layer.parameters():
            param.requires_grad_(True)
        self._ema_names = [name for name, _ in live.named_parameters()]
        channels, stride = later_shapes[0]
        defaults = dict(in_channels=channels, in_stride=stride)
        if num_classes is not None:
            defaults['num_classes'] = num_classes
        if ignore_index is not None:
            defaults['ignore_index'] = ignore_index
        self.head = build_local_head(head, defaults)

    @property
    def live_layer(self) -> nn.Module:
        """The architecture's own next basic layer (not a submodule)."""
        return self._live[0]

    def init_weights(self) -> None:
        """Initialise the wrapped head; start both copies at the live layer.

        The architecture is initialised before the local heads (it is
        registered first), so the copies take its initialised weights.
        """
        super().init_weights()
        self.reset_copies()

    @torch.no_grad()
    def reset_copies(self) -> None:
        """Set ``EMA`` and ``LB`` to the live layer's current state."""
        state = self.live_layer.state_dict()
        self.ema.load_state_dict(state)
        self.bias_layer.load_state_dict(state)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """``ema <- momentum * ema + (1 - momentum) * live``, per weight."""
        live = dict(self.live_layer.named_parameters())
        for name in self._ema_names:
            ema = self.ema.get_buffer(name)
            ema.mul_(self.momentum).add_(
                live[name].detach().to(ema.dtype), alpha=1. - self.momentum)

    def forward(self, feat: Tensor) -> Tensor:
        """``EMA(feat) + LB(feat)``, the input of the wrapped head."""
        return self.ema(feat) + self.bias_layer(feat)

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        return self.head.loss(self.forward(feat), batch)
