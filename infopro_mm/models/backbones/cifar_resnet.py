"""The CIFAR ResNets of He et al. (2016) as the InfoPro authors build them."""
from typing import Dict, Sequence, Tuple

from mmpretrain.models.backbones import ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock

from infopro_mm.registry import MODELS

__all__ = ['CIFARResNet']

#: Accepted depths: 6n + 2 with n BasicBlocks per stage.
CIFAR_DEPTHS: Tuple[int, ...] = (20, 32, 44, 56, 110)


@MODELS.register_module()
class CIFARResNet(ResNet_CIFAR):
    """ResNet-20/32/44/56/110 for 32x32 inputs (He et al., CVPR 2016, §4.2).

    The network of the InfoPro paper's CIFAR-10, SVHN and STL-10 experiments,
    with the numbers of the authors' code (``InfoProResNet`` in
    ``Experiments on CIFAR-SVHN-STL10/networks/resnet.py`` of
    blackfeather-wang/InfoPro-Pytorch):

    - stem: 3x3 conv (stride 1) to 16 channels, BN, ReLU, no max-pool;
    - three stages ``layer1..layer3`` of ``n = (depth - 2) / 6`` BasicBlocks
      with 16, 32 and 64 channels and strides 1, 2, 2 (so ResNet-32 has
      n = 5 and 16 basic layers, ResNet-110 n = 18 and 55 basic layers);
    - shortcut: identity, or a 1x1 conv + BN where the shape changes (first
      block of ``layer2`` and ``layer3``). This is the authors' code; He et
      al. used parameter-free zero-padding shortcuts ("option A"), which is
      why the paper-era parameter counts (0.46 M for ResNet-32) are 2,752
      parameters lower than this network's;
    - initialisation: Kaiming-normal, fan-out, on every conv; BN weight 1 and
      bias 0, including the last BN of each residual branch (no zero-init of
      the residual, unlike mmpretrain's ResNet default).

    It subclasses mmpretrain's :class:`ResNet_CIFAR` (stem + ``res_layers``),
    so :class:`~infopro_mm.models.ResNetSplitter` splits it: basic layers are
    ``'stem'`` and ``'layer<s>.<b>'``, the InfoPro authors' ``[s, b]``
    (stage 0 is the stem).

    Args:
        depth (int): 20, 32, 44, 56 or 110.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned
            (0-based). Defaults to ``(2,)``, the 64-channel stride-4 map.
        zero_init_residual (bool): Zero-initialise the last BN of each
            residual branch. Defaults to False (the authors' code).
        **kwargs: Other arguments of mmpretrain's ``ResNet`` (``norm_cfg``,
            ``frozen_stages``, ``norm_eval``, ``with_cp``, ``init_cfg``,
            ...). ``stem_channels``, ``base_channels``, ``num_stages``,
            ``strides``, ``dilations``, ``style``, ``avg_down``,
            ``deep_stem`` and ``expansion`` are fixed by the architecture.

    Raises:
        ValueError: If ``depth`` is not one of the accepted depths.
    """

    arch_settings: Dict[int, Tuple[type, Tuple[int, int, int]]] = {
        depth: (BasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in CIFAR_DEPTHS
    }

    _FIXED = ('stem_channels', 'base_channels', 'num_stages', 'strides',
              'dilations', 'style', 'avg_down', 'deep_stem', 'expansion')

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, ),
                 zero_init_residual: bool = False,
                 **kwargs) -> None:
        if depth not in self.arch_settings:
            raise ValueError(
                f'invalid depth {depth} for CIFARResNet: accepted depths '
                f'are {list(CIFAR_DEPTHS)} (6n + 2, n BasicBlocks per stage)')
        fixed = sorted(set(kwargs) & set(self._FIXED))
        if fixed:
            raise TypeError(f'CIFARResNet fixes {fixed} (16/32/64 channels, '
                            'strides 1/2/2, BasicBlocks); use mmpretrain '
                            'ResNet_CIFAR for other layouts')
        super().__init__(
            depth,
            in_channels=in_channels,
            stem_channels=16,
            base_channels=16,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=tuple(out_indices),
            zero_init_residual=zero_init_residual,
            **kwargs)
