"""Information in the features of trained networks (paper §2, §3.3, App. G).

Freezes each trained network (an mmpretrain classifier config, plain or
wrapped in ``infopro_mm.InfoPro``, with an mmengine runner checkpoint) and,
at every basic layer (the stem and each residual block) or only at the ends
of its local modules, estimates on the features ``h`` of the network in eval
mode:

- ``I(h, x)``: ``1 - BCE`` on the test split of a freshly trained decoder
  (``ReconstructionHead(arch='small')``, the paper's Table 7) that
  reconstructs the input image, de-normalised to [0, 1], from ``h``
  (Appendix G; the paper plots the same quantity).
- ``I(h, y)``: test accuracy of a freshly trained classifier on ``h``:
  ``LocalClsHead(arch='small')`` (the paper's Table 8 net), and a linear
  probe (``arch='linear'``: global average pooling + FC) for the linear
  separability of Figure 2 (left).
- ``I(h, r)`` for nuisance labels, when the dataset has them (the
  digits-on-photos proxy, after the paper's Appendix A toy): test accuracy
  on the background photograph (the small classifier) and on the grid
  position of the digit (a linear layer on the flattened, unpooled ``h``).

Every probe is trained with Adam (lr 1e-3, the default betas, no weight
decay) for ``--epochs`` epochs on the features of the training split (run
through the config's *test* pipeline, so without augmentation) and evaluated
on the test split. Each probe starts from ``torch.manual_seed(--seed)``, so
the numbers of a layer do not depend on which other layers are probed and
two runs on the CPU give the same numbers.

Differences from the paper (Appendix G):

- ``I(h, y)`` is estimated with the small Table 8 classifier (one 3x3 conv,
  pooling, two FC layers) trained with Adam, not with a ResNet-32 on ``h``
  upsampled to 32x32 and trained with the CIFAR schedule: that would cost a
  full CIFAR training run per layer. A small classifier underestimates the
  information a deep one could extract, more so for early layers whose
  features need depth to become class-specific; compare runs with each
  other, not with the paper's absolute numbers.
- The linear probe of Figure 2 (left) is applied to globally pooled
  features; the paper does not say whether it pooled.
- The digit position is read by a linear layer on the unpooled features,
  not by the small classifier: that one pools globally after a single 3x3
  convolution, which discards where the digit is; on the stem of a ResNet-20
  it stayed at chance (1/16) while the unpooled linear layer reached 0.5.
- The decoder is trained with the paper's Adam settings for ``--epochs``
  epochs (paper: 10 epochs of CIFAR-10, about 3,900 steps of 128). What
  counts is the number of steps: 10 epochs of the 5,000-image proxy are 390
  steps, and fewer than about 300 leave the estimate visibly short of
  convergence.

Features are computed once per split and passed from basic layer to basic
layer (only two layers' features are held at a time, on the CPU), through
the basic layers of ``ResNetSplitter(backbone, num_modules=1)`` whose staged
forward :meth:`~infopro_mm.models.ResNetSplitter.probe` checks against the
backbone's own.

Outputs: a table per run on stdout, ``OUT/information_probe.json`` (every
number, the command and the settings) and ``OUT/information_probe.png``
(one panel per estimate; x is the basic-layer index, one line per run,
module ends marked with larger markers, like the paper's Figures 2 and 3).

Checkpoints are unpickled in full (mmengine checkpoints carry non-tensor
objects): probe only files you trust.

Usage:
    python tools/analysis/information_probe.py CONFIG CHECKPOINT
        [--name NAME] [--run NAME CONFIG CHECKPOINT ...] [--out DIR]
        [--layers all|modules|I,J,...] [--device cpu|cuda] [--epochs 10]
        [--batch-size 128] [--num-train N] [--num-test N] [--seed 0]
        [--cfg-options k=v ...]
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.registry import DATASETS, MODELS, DefaultScope
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.datasets import DigitsOnPhotosDataset, nuisance_labels
from infopro_mm.models import (InfoPro, LocalBatch, LocalClsHead,
                               ReconstructionHead, ResNetSplitter)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUISANCES = ('background', 'position')
#: classifier estimate -> (label it predicts, probe kind of classifier())
PROBES = {
    'linear': ('y', 'linear'),
    'small': ('y', 'small'),
    'background': ('background', 'small'),
    'position': ('position', 'flat'),
}
#: estimate key -> (plot title, y label)
PANELS = {
    'recon': ('I(h, x): decoder', '1 - BCE (test)'),
    'linear': ('linear separability: linear probe', 'test accuracy'),
    'small': ('I(h, y): small classifier', 'test accuracy'),
    'background': ('I(h, r): background photograph', 'test accuracy'),
    'position': ('I(h, r): digit position (unpooled linear)', 'test accuracy'),
}

#: (train, test) tensors
Pair = Tuple[Tensor, Tensor]
#: preprocessed inputs -> what the decoder reconstructs
BatchFn = Callable[[Tensor], LocalBatch]


class ProbeError(ValueError):
    """A run cannot be probed; the message names the problem."""


@dataclass
class Settings:
    """How every probe is trained.

    Args:
        epochs (int): Training epochs of every probe.
        batch_size (int): Batch size of probes and feature extraction.
        lr (float): Adam learning rate.
        seed (int): Seed of every probe and of the split subsets.
        device (torch.device): Where the network and the probes run.
    """

    epochs: int
    batch_size: int
    lr: float
    seed: int
    device: torch.device


@dataclass
class Split:
    """Cached preprocessed inputs and labels of one data split (CPU).

    Args:
        inputs (Tensor): Preprocessed images, (N, C, H, W).
        labels (dict[str, Tensor]): ``'y'`` and the nuisance labels, (N,).
        num_classes (dict[str, int]): Number of values of every label.
    """

    inputs: Tensor
    labels: Dict[str, Tensor]
    num_classes: Dict[str, int]


@dataclass
class Run:
    """One trained network to probe.

    Args:
        name (str): Its name in the table, JSON and plot.
        checkpoint (str): Its checkpoint file.
        cfg (Config): Its config.
        model (nn.Module): The loaded model, in eval mode.
        splitter (ResNetSplitter): Basic layers of its backbone.
        shapes (list[tuple[int, int]]): Channels and stride of every basic
            layer's output.
        datasets (tuple[dict, dict]): Configs of the probes' train and test
            splits (:func:`split_datasets`).
    """

    name: str
    checkpoint: str
    cfg: Config
    model: nn.Module
    splitter: ResNetSplitter
    shapes: List[Tuple[int, int]]
    datasets: Tuple[dict, dict]


def layer_selection(value: str) -> Union[str, List[int]]:
    """Parse ``--layers``: ``'all'``, ``'modules'`` or indices ``'3,7'``.

    Args:
        value (str): The option's value.

    Returns:
        str | list[int]: The keyword, or the sorted distinct indices.
    """
    if value in ('all', 'modules'):
        return value
    try:
        indices = sorted({int(v) for v in value.split(',')})
    except ValueError:
        indices = []
    if not indices or indices[0] < 0:
        raise argparse.ArgumentTypeError(
            f'expected "all", "modules" or comma-separated basic-layer '
            f'indices >= 0, got {value!r}')
    return indices


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config of the first run')
    parser.add_argument('checkpoint', help='checkpoint of the first run')
    parser.add_argument(
        '--name', help='name of the first run (default: config file stem)')
    parser.add_argument(
        '--run',
        nargs=3,
        action='append',
        default=[],
        metavar=('NAME', 'CONFIG', 'CHECKPOINT'),
        help='another run to probe (repeatable)')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'work_dirs/information_probe'),
        help='folder of the JSON and the plot')
    parser.add_argument(
        '--layers',
        type=layer_selection,
        default='all',
        help='probe every basic layer ("all"), only the ends of local '
        'modules ("modules"; every layer of an end-to-end model), or the '
        'basic layers of the given comma-separated indices (e.g. "3,7,11,15"'
        ', the module ends of a K=4 run, to compare an end-to-end model at '
        'the same depths)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--epochs',
        type=int,
        default=10,
        help='training epochs of every probe (paper: 10 for the decoder)')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--lr', type=float, default=1e-3, help='Adam lr')
    parser.add_argument(
        '--num-train',
        type=int,
        help='probe-training samples (a seeded random subset; default all)')
    parser.add_argument(
        '--num-test',
        type=int,
        help='probe-test samples (a seeded random subset; default all)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides applied to every run config, xxx=yyy format')
    return parser.parse_args()


# ----------------------------------------------------------------------
# model and checkpoint
def load_model(cfg: Config, checkpoint: str,
               device: torch.device) -> nn.Module:
    """Build the config's model and load a checkpoint into it strictly.

    Args:
        cfg (Config): An mmpretrain classifier config (plain or InfoPro).
        checkpoint (str): An mmengine checkpoint (``state_dict`` inside) or a
            bare state dict.
        device (torch.device): Target device.

    Returns:
        nn.Module: The model in eval mode, without gradients.

    Raises:
        ProbeError: If its keys or shapes do not match the model exactly.
    """
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    loaded = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = loaded.get('state_dict', loaded)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ProbeError(f'checkpoint {checkpoint!r} does not fit the model '
                         f'of its config: {err}') from err
    if result.missing_keys or result.unexpected_keys:
        problems = []
        for kind, keys in (('missing', result.missing_keys),
                           ('unexpected', result.unexpected_keys)):
            if keys:
                shown = ', '.join(keys[:8])
                more = f' (+{len(keys) - 8} more)' if len(keys) > 8 else ''
                problems.append(f'{len(keys)} {kind} keys: {shown}{more}')
        raise ProbeError(
            f'checkpoint {checkpoint!r} does not match the model of its '
            f'config ({type(model).__name__}): ' + '; '.join(problems) +
            '. An infopro_mm.InfoPro checkpoint (architecture.* keys) needs '
            'its InfoPro config, an end-to-end one its plain config')
    model.to(device).eval().requires_grad_(False)
    return model


def module_ends(model: nn.Module, num_layers: int) -> List[int]:
    """Indices of the basic layers that end a local module.

    The last basic layer ends the last module; an end-to-end model has no
    other module end.
    """
    if isinstance(model, InfoPro):
        return [*model.splitter.cuts, num_layers - 1]
    return [num_layers - 1]


# ----------------------------------------------------------------------
# data
def split_datasets(cfg: Config) -> Tuple[dict, dict]:
    """Dataset configs of the probe's train and test splits.

    The train split is the config's training dataset with the *test*
    pipeline (no augmentation); the test split is the test dataset.
    """
    test_cfg = cfg.test_dataloader.dataset.copy()
    train_cfg = cfg.train_dataloader.dataset.copy()
    if 'pipeline' not in train_cfg or 'pipeline' not in test_cfg:
        raise ProbeError('the train and test datasets of the config need a '
                         '`pipeline` (dataset wrappers are not supported)')
    train_cfg['pipeline'] = test_cfg['pipeline']
    return train_cfg, test_cfg


def subset_indices(size: int, limit: Optional[int], seed: int) -> np.ndarray:
    """A seeded random subset of ``limit`` indices in order (all if None)."""
    if limit is None or limit >= size:
        return np.arange(size)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, limit, replace=False))


@torch.no_grad()
def load_split(model: nn.Module, dataset_cfg: dict, limit: Optional[int],
               settings: Settings, num_workers: int) -> Split:
    """Preprocess a split once and collect its labels.

    Args:
        model (nn.Module): The model whose data preprocessor is used.
        dataset_cfg (dict): The dataset config.
        limit (int, optional): Keep a seeded random subset of this size.
        settings (Settings): Batch size and seed.
        num_workers (int): Dataloader workers.

    Returns:
        Split: Inputs, labels and class counts.
    """
    dataset = DATASETS.build(dataset_cfg)
    classes = dataset.metainfo.get('classes')
    if not classes:
        raise ProbeError(f'{type(dataset).__name__} has no `classes` in its '
                         'metainfo: the probes need the number of classes')
    indices = subset_indices(len(dataset), limit, settings.seed)
    loader = DataLoader(
        Subset(dataset, indices.tolist()),
        batch_size=settings.batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=pseudo_collate)
    inputs, labels = [], []
    for data in loader:
        data = model.data_preprocessor(data, False)
        inputs.append(data['inputs'].cpu())
        labels.append(
            torch.cat([
                s.gt_label.reshape(-1)[:1] for s in data['data_samples']
            ]).cpu())
    split = Split(
        torch.cat(inputs), dict(y=torch.cat(labels).long()),
        dict(y=len(classes)))
    if isinstance(dataset, DigitsOnPhotosDataset):
        for key in NUISANCES:
            values, count = nuisance_labels(dataset, key)
            split.labels[key] = torch.from_numpy(values[indices]).long()
            split.num_classes[key] = count
    return split


def recon_bounds(train: Split, test: Split,
                 batch: BatchFn) -> Tuple[float, float]:
    """``1 - BCE`` without information and with perfect reconstruction.

    The floor predicts the mean training image for every test image (the
    best input-independent decoder); the ceiling predicts every test image
    exactly (BCE is then the mean binary entropy of the pixels, not 0).
    """
    mean_image = batch(train.inputs).images01.mean(0, keepdim=True)
    target = batch(test.inputs).images01
    floor = nn.functional.binary_cross_entropy(
        mean_image.clamp(1e-6, 1 - 1e-6).expand_as(target), target)
    ceiling = nn.functional.binary_cross_entropy(target, target)
    return 1. - floor.item(), 1. - ceiling.item()


# ----------------------------------------------------------------------
# probes
def fresh(head: BaseModule) -> BaseModule:
    """Initialise a probe (its ``init_cfg``) without mmengine's report.

    ``init_weights`` logs one line per parameter at INFO level; one probe per
    layer and estimate would bury the progress log under them.
    """
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        head.init_weights()
    finally:
        logger.setLevel(level)
    return head


@torch.no_grad()
def run_layer(layer: Callable[[Tensor], Tensor], feats: Tensor,
              settings: Settings) -> Tensor:
    """Apply one frozen basic layer to cached features, batch by batch."""
    outs = []
    for start in range(0, len(feats), settings.batch_size):
        chunk = feats[start:start + settings.batch_size].to(settings.device)
        outs.append(layer(chunk).cpu())
    return torch.cat(outs)


def fit_and_test(head: nn.Module, train_loss: Callable[[Tensor], Tensor],
                 test_score: Callable[[Tensor], Tensor], num_train: int,
                 num_test: int, settings: Settings) -> float:
    """Train a fresh probe with Adam, then average its score on the test set.

    Args:
        head (nn.Module): The probe (already seeded and initialised).
        train_loss (callable): Loss of a batch of training indices.
        test_score (callable): Summed score of a batch of test indices.
        num_train (int): Training samples.
        num_test (int): Test samples.
        settings (Settings): Epochs, batch size, lr, seed, device.

    Returns:
        float: Mean test score per sample.
    """
    head.to(settings.device).train()
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    batch_size = min(settings.batch_size, num_train)
    for _ in range(settings.epochs):
        order = torch.randperm(num_train, generator=gen)
        # full batches only: BatchNorm refuses a last batch of one sample
        for step in range(num_train // batch_size):
            loss = train_loss(order[step * batch_size:(step + 1) * batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval()
    total = 0.
    with torch.no_grad():
        for start in range(0, num_test, settings.batch_size):
            idx = torch.arange(start, min(start + settings.batch_size,
                                          num_test))
            total += test_score(idx).item()
    return total / num_test


def probe_reconstruction(feats: Pair, train: Split, test: Split,
                         shape: Tuple[int, int], batch: BatchFn,
                         settings: Settings) -> float:
    """``1 - BCE`` of a fresh Table 7 decoder on the test split."""
    torch.manual_seed(settings.seed)
    head = fresh(ReconstructionHead(*shape, arch='small'))
    dev = settings.device

    def train_loss(idx: Tensor) -> Tensor:
        return head.loss(feats[0][idx].to(dev),
                         batch(train.inputs[idx].to(dev)))

    def test_score(idx: Tensor) -> Tensor:
        return head.loss(feats[1][idx].to(dev), batch(
            test.inputs[idx].to(dev))) * len(idx)

    bce = fit_and_test(head, train_loss, test_score, len(train.inputs),
                       len(test.inputs), settings)
    return 1. - bce


def probe_classifier(make_head: Callable[[], nn.Module], feats: Pair,
                     labels: Pair, settings: Settings) -> float:
    """Test accuracy of a fresh classifier ``make_head()`` on one label."""
    torch.manual_seed(settings.seed)
    head = make_head()
    dev = settings.device

    def train_loss(idx: Tensor) -> Tensor:
        return nn.functional.cross_entropy(
            head(feats[0][idx].to(dev)), labels[0][idx].to(dev))

    def test_score(idx: Tensor) -> Tensor:
        pred = head(feats[1][idx].to(dev)).argmax(1)
        return (pred == labels[1][idx].to(dev)).sum()

    return fit_and_test(head, train_loss, test_score, len(labels[0]),
                        len(labels[1]), settings)


def classifier(kind: str, feat: Tensor, stride: int,
               num_classes: int) -> Callable[[], nn.Module]:
    """Factory of a probe classifier for features shaped like ``feat``.

    Args:
        kind (str): ``'small'`` or ``'linear'`` (a :class:`LocalClsHead`
            ``arch``), or ``'flat'``: a linear layer on the flattened,
            unpooled feature map. Pooling discards where things are, so only
            ``'flat'`` can read the digit position from early layers.
        feat (Tensor): Features ``(N, C, h, w)``.
        stride (int): Their stride.
        num_classes (int): Number of label values.
    """
    if kind == 'flat':
        return lambda: nn.Sequential(nn.Flatten(),
                                     nn.Linear(feat[0].numel(), num_classes))
    return lambda: fresh(
        LocalClsHead(feat.shape[1], stride, num_classes, arch=kind))


def prepare_run(name: str, config: str, checkpoint: str,
                args: argparse.Namespace, device: torch.device) -> Run:
    """Load a run's config (with ``--cfg-options``), model and splitter.

    Raises:
        ProbeError: If the checkpoint does not match, the backbone cannot be
            split or the datasets have no pipeline.
    """
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(args.cfg_options)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        model = load_model(cfg, checkpoint, device)
    architecture = model.architecture if isinstance(model, InfoPro) else model
    try:
        splitter = ResNetSplitter(architecture.backbone, num_modules=1)
        shapes = splitter.probe()
    except TypeError as err:
        raise ProbeError(f'{config}: {err}') from err
    return Run(name, checkpoint, cfg, model, splitter, shapes,
               split_datasets(cfg))


def probe_run(run: Run, args: argparse.Namespace, settings: Settings,
              logger: MMLogger) -> dict:
    """Every estimate at every selected basic layer of one trained network.

    Args:
        run (Run): The run (:func:`prepare_run`).
        args (argparse.Namespace): Command-line arguments.
        settings (Settings): Probe training settings.
        logger (MMLogger): Progress logger.

    Returns:
        dict: The run's record (see the JSON output).
    """
    name, cfg, model, shapes = run.name, run.cfg, run.model, run.shapes
    layers = run.splitter.basic_layers
    ends = module_ends(model, len(layers))
    if isinstance(args.layers, list):
        if max(args.layers) >= len(layers):
            raise ProbeError(f'--layers {args.layers}: {name} has only '
                             f'{len(layers)} basic layers (0-'
                             f'{len(layers) - 1})')
        selected = args.layers
    elif args.layers == 'modules' and isinstance(model, InfoPro):
        selected = ends
    else:
        selected = list(range(len(layers)))
    workers = cfg.test_dataloader.get('num_workers', 0)
    logger.info(f'[{name}] {type(model).__name__}, {len(layers)} basic '
                f'layers, module ends {ends}; loading data')
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmpretrain')):
        train = load_split(model, run.datasets[0], args.num_train, settings,
                           workers)
        test = load_split(model, run.datasets[1], args.num_test, settings,
                          workers)
    pre = model.data_preprocessor
    normalised = getattr(pre, '_enable_normalize', False)

    def batch(inputs: Tensor) -> LocalBatch:
        if not normalised:
            return LocalBatch(inputs)
        return LocalBatch(
            inputs,
            mean=pre.mean.to(inputs.device),
            std=pre.std.to(inputs.device))

    floor, ceiling = recon_bounds(train, test, batch)
    record = dict(
        name=name,
        config=osp.abspath(cfg.filename),
        checkpoint=osp.abspath(run.checkpoint),
        model=type(model).__name__,
        num_modules=len(ends),
        module_ends=ends,
        num_train=len(train.inputs),
        num_test=len(test.inputs),
        num_classes=train.num_classes,
        chance={
            k: 1. / n
            for k, n in train.num_classes.items()
        },
        majority={
            k: float(torch.bincount(v).max()) / len(v)
            for k, v in test.labels.items()
        },
        recon_floor=floor,
        recon_ceiling=ceiling,
        layers=[])
    feats = (train.inputs, test.inputs)
    tic = time.perf_counter()
    for idx, layer in enumerate(layers[:max(selected) + 1]):
        feats = tuple(run_layer(layer, f, settings) for f in feats)
        if idx not in selected:
            continue
        entry = dict(
            index=idx,
            name=layer.name,
            channels=shapes[idx][0],
            stride=shapes[idx][1],
            module_end=idx in ends,
            recon=probe_reconstruction(feats, train, test, shapes[idx], batch,
                                       settings))
        for key, (label, kind) in PROBES.items():
            if label not in train.labels:
                continue
            make_head = classifier(kind, feats[0], shapes[idx][1],
                                   train.num_classes[label])
            entry[key] = probe_classifier(
                make_head, feats, (train.labels[label], test.labels[label]),
                settings)
        record['layers'].append(entry)
        values = ', '.join(f'{k} {entry[k]:.3f}' for k in PANELS if k in entry)
        logger.info(f'[{name}] layer {idx} ({layer.name}): {values} '
                    f'({time.perf_counter() - tic:.0f} s)')
    return record


# ----------------------------------------------------------------------
# reporting
def table(record: dict) -> str:
    """Plain-text table of one run's estimates."""
    keys = [k for k in PANELS if k in record['layers'][0]]
    heads = dict(
        recon='I(h,x)',
        linear='linear',
        small='small',
        background='bg',
        position='pos')
    lines = [
        f'{record["name"]} ({record["model"]}, K={record["num_modules"]}, '
        f'{record["num_train"]} train / {record["num_test"]} test; '
        '* = module end)',
        f'{"layer":>5} {"name":<10} ' + ' '.join(f'{heads[k]:>7}'
                                                 for k in keys)
    ]
    for entry in record['layers']:
        mark = '*' if entry['module_end'] else ' '
        lines.append(f'{entry["index"]:>4}{mark} {entry["name"]:<10} ' +
                     ' '.join(f'{entry[k]:7.3f}' for k in keys))
    chance = ', '.join(f'{k} {v:.3f}' for k, v in record['chance'].items())
    lines.append(f'chance: {chance}; I(h,x) without information '
                 f'{record["recon_floor"]:.3f}, perfect '
                 f'{record["recon_ceiling"]:.3f}')
    return '\n'.join(lines)


def plot(records: List[dict], path: str) -> None:
    """One panel per estimate: value vs basic-layer index, one line per run.

    Module ends get larger markers with black edges; dashed grey lines are
    the chance levels (accuracies) or the no-information and perfect
    reconstruction levels (``I(h, x)``).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    keys = [k for k in PANELS if any(k in r['layers'][0] for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        for i, record in enumerate(records):
            entries = [e for e in record['layers'] if key in e]
            color = f'C{i}'
            ax.plot([e['index'] for e in entries], [e[key] for e in entries],
                    marker='o',
                    ms=3,
                    color=color,
                    label=record['name'])
            ends = [e for e in entries if e['module_end']]
            ax.scatter([e['index'] for e in ends], [e[key] for e in ends],
                       s=70,
                       color=color,
                       edgecolors='k',
                       zorder=3)
        if key == 'recon':
            levels = {(r['recon_floor'], 'no information')
                      for r in records} | {(r['recon_ceiling'], 'perfect')
                                           for r in records}
        else:
            label = PROBES[key][0]
            levels = {(r['chance'][label], 'chance')
                      for r in records if label in r['chance']}
        for level, text in sorted(levels):
            ax.axhline(level, color='grey', ls='--', lw=0.8)
            ax.annotate(
                text, (0, level),
                xycoords=('axes fraction', 'data'),
                xytext=(2, 2),
                textcoords='offset points',
                fontsize=7,
                color='grey')
        ax.set_title(PANELS[key][0], fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel('basic layer (0 = stem)')
        ax.set_ylabel(PANELS[key][1])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ProbeError('--device cuda: no GPU is visible')
    specs = [(args.name or osp.splitext(osp.basename(args.config))[0],
              args.config, args.checkpoint), *map(tuple, args.run)]
    names = [spec[0] for spec in specs]
    if len(set(names)) != len(names):
        raise ProbeError(f'run names must be distinct, got {names}')
    for _, config, checkpoint in specs:
        for path in (config, checkpoint):
            if not osp.isfile(path):
                raise ProbeError(f'{path!r} does not exist')
    logger = MMLogger.get_instance('information_probe', log_level='INFO')
    settings = Settings(args.epochs, args.batch_size, args.lr, args.seed,
                        torch.device(args.device))
    # every run is checked before any probe is trained
    runs = [prepare_run(*spec, args, settings.device) for spec in specs]
    records = []
    for run in runs:
        records.append(probe_run(run, args, settings, logger))
        print('\n' + table(records[-1]) + '\n')
    result = dict(
        command=' '.join(['python'] + sys.argv),
        settings=dict(
            layers=args.layers,
            device=args.device,
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=dict(type='Adam', lr=args.lr),
            seed=args.seed,
            num_train=args.num_train,
            num_test=args.num_test,
            cfg_options=args.cfg_options),
        estimates=dict(
            recon='1 - per-pixel BCE of a ReconstructionHead(arch="small") '
            'decoder on the test split (I(h, x) + const, Appendix G)',
            linear='test accuracy of LocalClsHead(arch="linear") (pooling + '
            'FC): linear separability (Figure 2, left)',
            small='test accuracy of LocalClsHead(arch="small") (Table 8 '
            'net): I(h, y)',
            background='test accuracy of LocalClsHead(arch="small") on the '
            'background photograph: I(h, r)',
            position='test accuracy of a linear layer on the flattened '
            '(unpooled) features on the digit position: I(h, r)'),
        runs=records)
    os.makedirs(args.out, exist_ok=True)
    json_path = osp.join(args.out, 'information_probe.json')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1)
    png_path = osp.join(args.out, 'information_probe.png')
    plot(records, png_path)
    logger.info(f'wrote {json_path} and {png_path}')


if __name__ == '__main__':
    try:
        main()
    except ProbeError as err:
        sys.exit(f'information_probe: error: {err}')
