"""AugLocal: auxiliary nets built from the later layers (Ma et al., 2024)."""
import copy
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import BaseLocalHead, LocalBatch, conv_bn_relu
from .local_cls_head import classification_loss
from .local_seg_head import segmentation_loss

__all__ = ['AugLocalHead', 'AugLocalSegHead', 'pyramid_depth',
           'sample_layers']


def pyramid_depth(depth: int, module_index: int, num_modules: int,
                  coeff: float = 0.5) -> int:
    """AugLocal's depth of the auxiliary net of local module ``i``.

    ``max(1, round(d * (1 - r) + r))`` with ``r = coeff * i / (K - 2)``
    (``r = 0`` when K = 2): ``depth`` at the first local module, falling
    linearly to ``round(d (1 - coeff) + coeff)`` at the (K-1)-th. Python's
    ``round`` (half to even), as in the authors' code.

    Args:
        depth (int): The predefined depth d (the first module's).
        module_index (int): 0-based local module i (< K-1).
        num_modules (int): K.
        coeff (float): The pyramid coefficient. Defaults to 0.5.
    """
    ratio = coeff * module_index / (num_modules - 2) if num_modules > 2 \
        else 0.
    return max(1, round(depth * (1 - ratio) + ratio))


def sample_layers(layer_index: int, num_layers: int, depth: int) -> List[int]:
    """Indices of the later basic layers AugLocal copies, uniformly spaced.

    With ``L = num_layers - 1 - layer_index`` layers after the module:
    every one of them when ``depth >= L``, else ``round(layer_index +
    L / depth * j)`` for ``j = 1..depth`` (so the last is always the
    network's last basic layer).

    Args:
        layer_index (int): Index of the module's last basic layer.
        num_layers (int): Number of basic layers of the network.
        depth (int): Depth of the auxiliary net.
    """
    later = num_layers - 1 - layer_index
    if depth >= later:
        return list(range(layer_index + 1, num_layers))
    return [
        round(layer_index + later / depth * j) for j in range(1, depth + 1)
    ]


def _norm(norm_cfg: Optional[dict], channels: int) -> nn.Module:
    """The mmcv norm layer of ``norm_cfg`` (BatchNorm when None)."""
    from mmcv.cnn import build_norm_layer
    return build_norm_layer(norm_cfg or dict(type='BN'), channels)[1]


def _projection(in_channels: int, out_channels: int, stride: int,
                norm_cfg: Optional[dict]) -> nn.Module:
    """Identity, or 1x1 conv + norm where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        _norm(norm_cfg, out_channels))


class _ResidualBlock(nn.Module):
    """``ReLU(branch(x) + shortcut(x))``.

    Args:
        branch (nn.Module): The residual branch.
        shortcut (nn.Module): The shortcut.
    """

    def __init__(self, branch: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


def _basic_block(in_channels: int, out_channels: int, stride: int,
                 dilation: int, norm_cfg: Optional[dict]) -> _ResidualBlock:
    """Two 3x3 conv + norm, projection shortcut."""
    return _ResidualBlock(
        nn.Sequential(
            conv_bn_relu(
                in_channels, out_channels, 3, stride=stride,
                norm_cfg=norm_cfg, dilation=dilation),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm_cfg, out_channels)),
        _projection(in_channels, out_channels, stride, norm_cfg))


def _bottleneck_block(in_channels: int, out_channels: int, stride: int,
                      dilation: int, norm_cfg: Optional[dict],
                      mid_channels: int) -> _ResidualBlock:
    """1x1 reduce, 3x3 (strided, dilated), 1x1 expand, each + norm,
    projection shortcut."""
    return _ResidualBlock(
        nn.Sequential(
            conv_bn_relu(in_channels, mid_channels, 1, norm_cfg=norm_cfg),
            conv_bn_relu(
                mid_channels, mid_channels, 3, stride=stride,
                norm_cfg=norm_cfg, dilation=dilation),
            nn.Conv2d(mid_channels, out_channels, 1, bias=False),
            _norm(norm_cfg, out_channels)),
        _projection(in_channels, out_channels, stride, norm_cfg))


def _fresh_block(real: nn.Module, in_channels: int, out_channels: int,
                 stride: int, norm_cfg: Optional[dict]) -> nn.Module:
    """A new block of the real layer's kind (basic or bottleneck), widths
    and dilation, from ``in_channels`` at ``stride``."""
    block = real[0] if isinstance(real, nn.Sequential) else real
    dilation = getattr(block, 'dilation', 1)
    conv3 = getattr(block, 'conv3', None)
    if isinstance(conv3, nn.Conv2d):
        return _bottleneck_block(in_channels, out_channels, stride, dilation,
                                 norm_cfg, block.conv2.out_channels)
    return _basic_block(in_channels, out_channels, stride, dilation,
                        norm_cfg)


@MODELS.register_module()
class AugLocalHead(BaseLocalHead):
    """AugLocal's auxiliary classifier, made of the network's later layers.

    AugLocal (Ma et al., "Scaling Supervised Local Learning with Augmented
    Auxiliary Networks", ICLR 2024) gives local module k an auxiliary net
    that imitates the rest of the network: ``d_k`` basic layers sampled
    uniformly from those after module k (:func:`sample_layers`), with a
    depth that decreases towards the output (:func:`pyramid_depth`), then
    global average pooling and a linear classifier trained with
    cross-entropy. Its layers are trained by module k's loss only,
    separately from the real ones, which get no gradient from it.

    Each sampled layer j becomes one block of the auxiliary net, with
    layer j's output channels; it downsamples (stride 2) while the net's
    stride is behind layer j's, at most once per block:

    - where the block's input has layer j's input shape and needs its
      stride (e.g. when the net copies every later layer), the block is a
      copy of layer j itself, and starts from its initialised weights;
    - otherwise it is a new block of layer j's kind and widths, with the
      head's initialisation: a residual block (two 3x3 conv + BN) after a
      basic block, a bottleneck (1x1, 3x3, 1x1 conv + BN, the real layer's
      middle width) after a bottleneck; projection shortcut; the 3x3 conv
      takes layer j's dilation (dilated segmentation backbones).

    Where the details come from (the authors' public code,
    ``ChenxiangMA/AugLocal``: ``networks/auxiliary_nets.py``
    ``'unifSamp'``, ``networks/resnet.py``, ``train.py``, ``run.sh``,
    ``README.md``, read for this class; none of it is used here):

    - the sampling rule, the depth schedule (``--pyramid``, coefficient 0.5)
      and Python's rounding -- from the code; the depth schedule is indexed
      by the local module there (every module is one basic layer), as here;
    - the blocks: the code builds new CIFAR ``BasicBlock`` s with the
      sampled layers' widths (fresh Kaiming-normal fan-out init), stride 2
      when the channels double, carrying over extra downsampling to the next
      block; their ImageNet code (``exp_imagenet/networks/
      auxiliary_nets.py``) builds ``Bottleneck`` s for bottleneck ResNets.
      Here the stride follows the probed strides (the same on CIFAR
      ResNets), a block is a copy of the real layer where it fits, and
      fresh blocks keep the real layer's dilation (not in their code, which
      has no dilated networks);
    - the classifier: pooling, ``BatchNorm1d`` when the net is one block
      deep, FC to the classes -- from the code;
    - loss weight 1 (``--ixy_1 1 --ixy_2 1`` defaults, no other term);
      ResNet-32 ``--aux_net_depth 2``, ResNet-110 3 (``README.md``), 400
      epochs (``run.sh``); with depth d the authors train ``K = L - d``
      modules of one layer each.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        num_classes (int): Classes (from the architecture).
        depth (int): The predefined depth d of the first module's net;
            required (the paper tunes it per network).
        pyramid_coeff (float): Depth-schedule coefficient; 0 keeps every
            net ``depth`` deep. Defaults to 0.5 (the authors').
        later_layers (Sequence): The basic layers after the module
            (filled in by :class:`~infopro_mm.models.InfoPro`).
        later_shapes (Sequence[tuple[int, int]]): Their output
            ``(channels, stride)`` (filled in).
        layer_index (int): Index of the module's last basic layer (filled
            in).
        module_index (int): 0-based index of the local module (filled in).
        num_modules (int): K (filled in).
        norm_cfg (dict, optional): Norm of the fresh blocks (e.g.
            ``dict(type='SyncBN')`` beside a SyncBN architecture; copies
            keep the real layer's). Defaults to BatchNorm, the authors'.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :class:`BaseLocalHead`'s (the authors').
    """

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 num_classes: int,
                 depth: Optional[int] = None,
                 pyramid_coeff: float = 0.5,
                 later_layers: Sequence = (),
                 later_shapes: Sequence[Tuple[int, int]] = (),
                 layer_index: int = 0,
                 module_index: int = 0,
                 num_modules: int = 2,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, in_stride, init_cfg=init_cfg)
        if depth is None or depth < 1:
            raise ValueError('AugLocalHead needs `depth` >= 1 (the authors '
                             'use 2 on ResNet-32, 3 on ResNet-110), got '
                             f'{depth!r}')
        if not later_layers or len(later_layers) != len(later_shapes):
            raise ValueError(
                'AugLocalHead needs the basic layers after its module '
                '(`later_layers` and `later_shapes`, filled in by InfoPro)')
        self.depth = pyramid_depth(depth, module_index, num_modules,
                                   pyramid_coeff)
        num_layers = layer_index + 1 + len(later_layers)
        self.sampled = sample_layers(layer_index, num_layers, self.depth)
        blocks = []
        # (index in ``blocks``, the real layer it copies)
        self._copied: Tuple[Tuple[int, nn.Module], ...] = ()
        shapes = [(in_channels, in_stride)] + list(later_shapes)
        channels, stride, owed = in_channels, in_stride, 0
        previous = in_stride
        for j in self.sampled:
            pos = j - layer_index  # position in ``shapes``
            out_channels, layer_stride = shapes[pos]
            owed += max(0, round(math.log2(layer_stride / previous)))
            previous = layer_stride
            step = 2 if owed >= 1 else 1
            owed -= step == 2
            real = nn.Sequential(*later_layers[pos - 1].modules)
            fits = (shapes[pos - 1] == (channels, stride)
                    and layer_stride == stride * step)
            if fits:
                self._copied += ((len(blocks), real), )
                blocks.append(copy.deepcopy(real))
            else:
                blocks.append(
                    _fresh_block(real, channels, out_channels, step,
                                 norm_cfg))
            channels, stride = out_channels, stride * step
        self.blocks = nn.Sequential(*blocks)
        self._build_predictor(channels, num_classes)
        self.sampled_names = [later_layers[j - layer_index - 1].name
                              for j in self.sampled]
        self.copied_names = [self.sampled_names[i] for i, _ in self._copied]

    def _build_predictor(self, channels: int, num_classes: int) -> None:
        """Pooling (+ BN1d when the net is one block deep) and the FC."""
        self.pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.BatchNorm1d(channels) if self.depth <= 1 else nn.Identity())
        self.fc = nn.Linear(channels, num_classes)

    def init_weights(self) -> None:
        """The head's initialisation, then copies take the real weights.

        The architecture is initialised before the local heads, so the
        copies start from the real layers' initialised weights.
        """
        super().init_weights()
        with torch.no_grad():
            for index, real in self._copied:
                self.blocks[index].load_state_dict(real.state_dict())

    def forward(self, feat: Tensor) -> Tensor:
        """Class logits ``(N, num_classes)``."""
        return self.fc(self.pool(self.blocks(feat)))

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        return classification_loss(self.forward(feat), batch)


@MODELS.register_module()
class AugLocalSegHead(AugLocalHead):
    """AugLocal's auxiliary net for semantic segmentation.

    The blocks of :class:`AugLocalHead` (copies or fresh blocks of the
    later layers, sampled uniformly, pyramid depth), then, instead of
    pooling and an FC, Dropout2d and a 1x1 conv to the classes at the
    blocks' resolution, scored like :class:`LocalSegHead` (logits upsampled
    to the labels, cross-entropy skipping ``ignore_index``). AugLocal's
    authors published classification only; this predictor is ours, the
    same as the last layer of mmseg's decode heads and of the paper's psi
    (Table 11).

    Args:
        ignore_index (int): Label ignored by the loss (from the
            architecture's decode head). Defaults to 255.
        dropout (float): Dropout before the classifier. Defaults to 0.1.
        **kwargs: :class:`AugLocalHead`'s arguments (``in_channels``,
            ``in_stride``, ``num_classes``, ``depth``, ...).
    """

    def __init__(self,
                 ignore_index: int = 255,
                 dropout: float = 0.1,
                 **kwargs) -> None:
        # read by _build_predictor, which the base __init__ calls
        self.dropout = dropout
        super().__init__(**kwargs)
        self.ignore_index = ignore_index

    def _build_predictor(self, channels: int, num_classes: int) -> None:
        """Dropout2d and a 1x1 conv to the classes."""
        self.cls_seg = nn.Sequential(
            nn.Dropout2d(self.dropout), nn.Conv2d(channels, num_classes, 1))

    def forward(self, feat: Tensor) -> Tensor:
        """Class logits at the blocks' resolution."""
        return self.cls_seg(self.blocks(feat))

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        return segmentation_loss(self.forward(feat), batch, self.ignore_index)
