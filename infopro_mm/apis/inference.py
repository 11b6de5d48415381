"""Configs for the downstream packages' inference tools."""
import copy
from typing import Union

from mmengine.config import Config

from infopro_mm.models import is_infopro_config
from infopro_mm.utils import load_config

__all__ = ['inference_config']


def inference_config(config: Union[str, Config]) -> Config:
    """The config with its InfoPro model built for inference.

    mmseg's ``MMSegInferencer``, mmpretrain's ``get_model`` and
    ``ImageClassificationInferencer`` build ``cfg.model`` as it is, which
    for an InfoPro config means its local heads and, for a balanced split,
    a memory-planning dry run. Given this config instead, ``InfoPro`` gets
    ``train_cfg=None``: no local heads, no planning, the architecture's
    predictions (``tools/test.py`` and mmseg's ``init_model`` do the same).
    A plain config comes back unchanged.

    Args:
        config (str | Config): A config file or a loaded config (not
            modified).

    Returns:
        Config: A copy, ready for ``MMSegInferencer(model=cfg, ...)``.
    """
    cfg = load_config(config) if isinstance(config, str) else copy.deepcopy(
        config)
    if is_infopro_config(cfg.model):
        cfg.model.train_cfg = None
    return cfg
