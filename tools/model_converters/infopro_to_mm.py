"""Convert InfoPro checkpoints into plain OpenMMLab 2.x checkpoints.

Sources (``--source``, detected from the keys by default):

- ``imagenet-release``: the InfoPro authors' ImageNet models (ResNet-101,
  ResNet-152, ResNeXt-101 32x8d, InfoPro* K=2). torchvision-style keys
  (``conv1``, ``bn1``, ``layer{1-4}``, ``fc``) plus the auxiliary nets
  ``decoder.*`` and ``head.*``; a bare state dict or ``{'state_dict': ...,
  'epoch': ..., 'optimizer': ...}``, keys possibly prefixed ``module.``.
- ``cityscapes-release``: the authors' Cityscapes DeepLabV3 models, an mmseg
  0.x checkpoint (``backbone.*``, ``decode_head.*``, ``auxiliary_head.*``)
  plus the auxiliary nets ``head_inter.*`` and ``decoder_inter.*``. Any
  checkpoint already in an OpenMMLab model layout reads the same way.
- ``infopro``: a checkpoint of ``infopro_mm.InfoPro`` training (keys
  ``architecture.*`` and the local heads ``local_heads.*``).

Targets (``--target``):

- ``mmdet-backbone`` / ``mmpretrain-backbone``: the backbone's own keys (no
  ``backbone.`` prefix), what ``init_cfg=dict(type='Pretrained',
  checkpoint=...)`` of a backbone loads. mmengine's ``PretrainedInit``
  without ``prefix`` strips only ``module.`` and loads with
  ``strict=False``, so a prefixed file would silently initialise nothing.
- ``mmpretrain-classifier``: a full ``ImageClassifier`` (``fc`` becomes
  ``head.fc``).
- ``mmseg``: a full mmseg 1.x segmentor.

Auxiliary-net weights are dropped and listed (on the console and in the
output's ``meta``). Every kept tensor is checked against the target model
built from ``--config`` (``model``, or ``model.architecture`` of an InfoPro
config; its ``backbone`` for the backbone targets): keys and shapes must
match exactly. The output is written atomically and never over the input.

Checkpoints are unpickled in full (mmengine and mmseg 0.x files carry
non-tensor objects): convert only files you trust.

Usage: python tools/model_converters/infopro_to_mm.py SRC DST
       --target {mmdet-backbone,mmpretrain-backbone,mmpretrain-classifier,
       mmseg} --config CONFIG [--source {auto,imagenet-release,
       cityscapes-release,infopro}] [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp
import re
import sys
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import MODELS, DefaultScope
from torch import Tensor, nn

from infopro_mm.models import is_infopro_config

SOURCES = ('imagenet-release', 'cityscapes-release', 'infopro')

#: target -> (OpenMMLab scope it is meant for, whether only the backbone)
TARGETS = {
    'mmdet-backbone': ('mmdet', True),
    'mmpretrain-backbone': ('mmpretrain', True),
    'mmpretrain-classifier': ('mmpretrain', False),
    'mmseg': ('mmseg', False),
}

#: source -> key prefixes of its auxiliary (training-only) nets
AUX_PREFIXES = {
    'imagenet-release': ('decoder.', 'head.'),
    'cityscapes-release': ('head_inter.', 'decoder_inter.'),
    'infopro': ('local_heads.', ),
}

MAX_LISTED = 20
StateDict = Dict[str, Tensor]


class ConversionError(ValueError):
    """A checkpoint cannot be converted; the message names the problem."""


def _listing(keys: Sequence[str],
             limit: int = MAX_LISTED,
             group: bool = True) -> str:
    """Comma-separated keys; long lists are grouped by module first."""
    if group and len(keys) > limit:
        groups: Dict[str, int] = OrderedDict()
        for key in keys:
            parts = key.split('.')
            group = '.'.join(parts[:max(1, len(parts) - 2)]) + '.*'
            groups[group] = groups.get(group, 0) + 1
        if len(groups) < len(keys):
            keys = [f'{g} ({n})' if n > 1 else g for g, n in groups.items()]
    shown = ', '.join(keys[:limit])
    if len(keys) > limit:
        shown += f', ... ({len(keys) - limit} more)'
    return shown


def load_source(path: str) -> Tuple[StateDict, dict]:
    """Read a checkpoint file and return its state dict and its ``meta``.

    Accepts a bare state dict or a dict holding one under ``state_dict``
    (or ``model``). A leading ``module.`` (DataParallel) is stripped.

    Args:
        path (str): The checkpoint file.

    Returns:
        tuple[dict, dict]: The state dict and the checkpoint's ``meta``
        (empty when there is none; ``epoch`` is copied into it).
    """
    if not osp.isfile(path):
        raise ConversionError(f'checkpoint {path!r} does not exist')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as err:  # pickle, zip and torch errors alike
        raise ConversionError(
            f'cannot read {path!r} as a PyTorch checkpoint '
            f'({type(err).__name__}: {err})') from err
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f'{path!r} holds a {type(checkpoint).__name__}, not a state dict '
            'or a dict with a "state_dict"')
    meta = checkpoint.get('meta')
    meta = dict(meta) if isinstance(meta, dict) else {}
    if 'epoch' in checkpoint and not isinstance(checkpoint['epoch'], Tensor):
        meta.setdefault('epoch', checkpoint['epoch'])
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            state_dict = checkpoint[key]
            break
    not_tensors = [k for k, v in state_dict.items() if not torch.is_tensor(v)]
    if not state_dict or not_tensors:
        raise ConversionError(
            f'{path!r} has no state dict of tensors (top-level keys: '
            f'{_listing(sorted(map(str, checkpoint)))}; non-tensor '
            f'entries: {_listing(sorted(map(str, not_tensors)))})')
    state_dict = OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())
    return state_dict, meta


def detect_source(state_dict: StateDict) -> str:
    """Name the layout of a state dict (one of :data:`SOURCES`).

    Args:
        state_dict (dict): Keys without a ``module.`` prefix.

    Returns:
        str: ``'infopro'``, ``'imagenet-release'`` or
        ``'cityscapes-release'``.
    """
    keys = list(state_dict)
    if any(k.startswith('architecture.') for k in keys):
        return 'infopro'
    if 'conv1.weight' in state_dict and any(
            k.startswith('layer1.') for k in keys):
        return 'imagenet-release'
    if any(k.startswith('backbone.') for k in keys):
        return 'cityscapes-release'
    raise ConversionError(
        'cannot tell the checkpoint layout from its keys (first keys: '
        f'{_listing(keys, 8)}); expected torchvision-style keys '
        '(conv1.*, layer1.*: imagenet-release), OpenMMLab model keys '
        '(backbone.*: cityscapes-release) or InfoPro keys '
        '(architecture.*: infopro). Pass --source to choose.')


def to_model_layout(state_dict: StateDict, source: str,
                    aux_prefixes: Sequence[str]
                    ) -> Tuple[StateDict, List[str], List[str]]:
    """Rename a source state dict to the downstream model's keys.

    Args:
        state_dict (dict): The source state dict.
        source (str): Its layout, one of :data:`SOURCES`.
        aux_prefixes (Sequence[str]): Key prefixes of auxiliary nets.

    Returns:
        tuple: The model state dict (``backbone.*``, ``head.fc.*``,
        ``decode_head.*``, ...), the dropped auxiliary keys and other
        dropped keys (an InfoPro model's shared ``data_preprocessor``).
    """
    model_sd: StateDict = OrderedDict()
    aux, other = [], []
    for key, value in state_dict.items():
        if key.startswith(tuple(aux_prefixes)):
            aux.append(key)
        elif source == 'imagenet-release':
            # mmdet/mmpretrain ResNet keep torchvision's module names.
            if key.startswith('fc.'):
                model_sd['head.' + key] = value
            else:
                model_sd['backbone.' + key] = value
        elif source == 'infopro':
            if key.startswith('architecture.'):
                model_sd[key[len('architecture.'):]] = value
            elif key.startswith('data_preprocessor.'):
                other.append(key)  # the architecture's own, shared
            else:
                model_sd[key] = value  # reported as unexpected later
        else:
            model_sd[key] = value
    return model_sd, aux, other


def select_target_keys(model_sd: StateDict,
                       target: str) -> Tuple[StateDict, List[str]]:
    """Keep what the target holds: the backbone only, or everything."""
    if not TARGETS[target][1]:
        return model_sd, []
    kept: StateDict = OrderedDict()
    dropped = []
    for key, value in model_sd.items():
        if key.startswith('backbone.'):
            kept[key[len('backbone.'):]] = value
        else:
            dropped.append(key)
    if not kept:
        raise ConversionError(
            f'the checkpoint has no backbone weights for target {target} '
            f'(keys: {_listing(list(model_sd), 8)})')
    return kept, dropped


def target_model_cfg(cfg: Config, target: str) -> dict:
    """The config of the model that a ``target`` checkpoint belongs to."""
    model_cfg = cfg.get('model')
    if model_cfg is None:
        raise ConversionError('the config has no `model`')
    if is_infopro_config(model_cfg):
        model_cfg = model_cfg['architecture']
    if TARGETS[target][1]:
        if 'backbone' not in model_cfg:
            raise ConversionError(
                f'target {target} needs a config whose model has a backbone; '
                f'{model_cfg.get("type")} has none')
        model_cfg = model_cfg['backbone']
    return model_cfg


def build_target_model(config: str,
                       target: str,
                       cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the model a converted checkpoint must load into.

    Args:
        config (str): A config file (plain or InfoPro).
        target (str): One of :data:`TARGETS`.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The architecture (or its backbone), randomly initialised.
    """
    try:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    except Exception as err:
        raise ConversionError(f'cannot read config {config!r} '
                              f'({type(err).__name__}: {err})') from err
    scope = cfg.get('default_scope') or TARGETS[target][0]
    if scope != TARGETS[target][0]:
        print_log(
            f'note: target {target} is meant for {TARGETS[target][0]} but '
            f'{config} has default_scope {scope!r}; building in {scope!r}',
            logger='current')
    model_cfg = target_model_cfg(cfg, target)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            return MODELS.build(model_cfg)
    except Exception as err:
        raise ConversionError(
            f'cannot build the {target} model of {config!r} in scope '
            f'{scope!r} ({type(err).__name__}: {err})') from err


def match_target(state_dict: StateDict, model: nn.Module,
                 describe: str) -> Tuple[StateDict, List[str]]:
    """Check a state dict against a model: same keys, same shapes.

    BN ``num_batches_tracked`` counters that the checkpoint lacks are taken
    from the model (torch and mmengine treat them as optional).

    Args:
        state_dict (dict): The converted weights.
        model (nn.Module): The target model.
        describe (str): How the error message names the target.

    Returns:
        tuple: The state dict in the model's key order, and the filled keys.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    filled = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in filled]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model '
        f'{tuple(expected[k].shape)}' for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        lines = [f'the converted weights do not match {describe}:']
        for name, keys in (('missing keys', missing),
                           ('unexpected keys', unexpected),
                           ('shape mismatches', mismatched)):
            if keys:
                listed = _listing(keys, group=name != 'shape mismatches')
                lines.append(f'  {name} ({len(keys)}): {listed}')
        lines.append('Check that --config describes the checkpoint\'s '
                     'architecture (depth, groups, width, classes) and that '
                     '--source/--target are right.')
        raise ConversionError('\n'.join(lines))
    ordered: StateDict = OrderedDict()
    for key, value in expected.items():
        ordered[key] = state_dict[key] if key in state_dict else value.clone()
    return ordered, filled


def save_atomic(obj: dict, dst: str) -> None:
    """``torch.save`` into a temporary file beside ``dst``, then rename.

    Either the complete file appears at ``dst`` or nothing does.
    """
    dst_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(dst_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(dst)}.', suffix='.tmp', dir=dst_dir)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def _same_file(src: str, dst: str) -> bool:
    if osp.realpath(src) == osp.realpath(dst):
        return True
    return osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst)


def _dataset_meta(meta: dict) -> Optional[dict]:
    if isinstance(meta.get('dataset_meta'), dict):
        return meta['dataset_meta']
    if meta.get('CLASSES') is not None:  # mmseg / mmdet 0.x
        dataset_meta = dict(classes=meta['CLASSES'])
        if meta.get('PALETTE') is not None:
            dataset_meta['palette'] = meta['PALETTE']
        return dataset_meta
    return None


def _summarise(keys: Sequence[str], depth: int = 1) -> str:
    """``decoder.* (12), head.* (19)`` for a list of keys."""
    counts: Dict[str, int] = OrderedDict()
    for key in keys:
        group = '.'.join(key.split('.')[:depth])
        counts[group] = counts.get(group, 0) + 1
    return ', '.join(f'{k}.* ({n})' for k, n in counts.items())


def convert_checkpoint(src: str,
                       dst: str,
                       target: str,
                       config: str,
                       source: str = 'auto',
                       cfg_options: Optional[dict] = None,
                       aux_prefixes: Sequence[str] = ()) -> dict:
    """Convert ``src`` into a plain OpenMMLab checkpoint at ``dst``.

    Args:
        src (str): The InfoPro checkpoint.
        dst (str): Where the converted checkpoint is written. Must not be
            ``src``.
        target (str): One of ``mmdet-backbone``, ``mmpretrain-backbone``,
            ``mmpretrain-classifier``, ``mmseg``.
        config (str): Config of the target model (plain or InfoPro).
        source (str): ``'auto'`` or one of :data:`SOURCES`. Defaults to
            ``'auto'``.
        cfg_options (dict, optional): Overrides merged into the config.
        aux_prefixes (Sequence[str]): Further key prefixes of auxiliary
            nets to drop, besides the source's own. Defaults to ().

    Returns:
        dict: The ``meta`` written with the checkpoint (source, target,
        dropped and filled keys).

    Raises:
        ConversionError: The input cannot be read or does not match the
            target model. Nothing is written then.
    """
    if target not in TARGETS:
        raise ConversionError(
            f'unknown target {target!r}; choose from {sorted(TARGETS)}')
    if source != 'auto' and source not in SOURCES:
        raise ConversionError(
            f'unknown source {source!r}; choose from auto, {SOURCES}')
    if _same_file(src, dst):
        raise ConversionError(
            f'DST {dst!r} is the input checkpoint; write elsewhere')
    if osp.isdir(dst):
        raise ConversionError(f'DST {dst!r} is a directory, not a file path')
    if not osp.isfile(config):
        raise ConversionError(f'config {config!r} does not exist')

    state_dict, src_meta = load_source(src)
    layout = detect_source(state_dict) if source == 'auto' else source
    prefixes = tuple(AUX_PREFIXES[layout]) + tuple(
        p if p.endswith('.') else p + '.' for p in aux_prefixes)
    model_sd, aux_keys, other_keys = to_model_layout(state_dict, layout,
                                                     prefixes)
    kept, non_target = select_target_keys(model_sd, target)
    model = build_target_model(config, target, cfg_options)
    describe = (f'{type(model).__name__} built from {config} '
                f'(target {target}, source layout {layout})')
    kept, filled = match_target(kept, model, describe)

    meta = dict(
        converted_by='infopro_mm tools/model_converters/infopro_to_mm.py',
        source=layout,
        source_file=osp.abspath(src),
        target=target,
        config=osp.abspath(config),
        model_type=type(model).__name__,
        dropped_auxiliary_keys=aux_keys,
        dropped_keys=other_keys + non_target,
        filled_keys=filled)
    if 'epoch' in src_meta:
        meta['source_epoch'] = src_meta['epoch']
    dataset_meta = _dataset_meta(src_meta)
    if dataset_meta is not None and not TARGETS[target][1]:
        meta['dataset_meta'] = dataset_meta
    save_atomic(dict(meta=meta, state_dict=kept), dst)

    print_log(
        f'{src} ({layout}) -> {dst} ({target}, {type(model).__name__}): '
        f'{len(kept)} tensors checked against {config}', logger='current')
    if aux_keys:
        print_log(
            f'dropped {len(aux_keys)} auxiliary-net tensors: '
            f'{_summarise(aux_keys)}', logger='current')
    if meta['dropped_keys']:
        print_log(
            f'dropped {len(meta["dropped_keys"])} tensors outside the '
            f'target: {_summarise(meta["dropped_keys"], depth=2)}',
            logger='current')
    if filled:
        print_log(
            f'filled {len(filled)} BN num_batches_tracked counters the '
            'checkpoint lacks', logger='current')
    return meta


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert InfoPro checkpoints (released ImageNet / '
        'Cityscapes models, or infopro_mm training) into plain OpenMMLab '
        'checkpoints')
    parser.add_argument('src', help='input checkpoint')
    parser.add_argument('dst', help='output checkpoint (not the input)')
    parser.add_argument(
        '--target', required=True, choices=sorted(TARGETS),
        help='what the output initialises: a backbone (init_cfg '
        'Pretrained), a full mmpretrain classifier or a full mmseg model')
    parser.add_argument(
        '--config', required=True,
        help='config of the target model (plain, or an InfoPro config '
        'whose model.architecture is used); every tensor is checked '
        'against the model it builds')
    parser.add_argument(
        '--source', default='auto', choices=('auto', ) + SOURCES,
        help='layout of SRC (default: detected from its keys)')
    parser.add_argument(
        '--aux-prefix', action='append', default=[], metavar='PREFIX',
        help='also drop keys under this prefix as auxiliary-net weights '
        '(repeatable)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        convert_checkpoint(
            args.src,
            args.dst,
            args.target,
            args.config,
            source=args.source,
            cfg_options=args.cfg_options,
            aux_prefixes=args.aux_prefix)
    except ConversionError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
