"""How hard each weighted local loss pulls on its module's output.

Builds an InfoPro config's model (freshly initialised, or from
``--checkpoint``), takes ``--batches`` training batches, and for every local
module and head reports the norm of the gradient of the *weighted* head loss
with respect to the module output h, averaged over the batches. Their ratio
is the balance the loss weights set: a reconstruction term whose gradient is
several times the task term's leaves the first modules learning the input
rather than the label (see docs/accuracy.md).

Nothing is trained or written; BN statistics and the model are used in
training mode on copies of the batches.

Usage: python tools/analysis/loss_balance.py CONFIG [--checkpoint CKPT]
    [--batches 5] [--cfg-options k=v ...]
"""
import argparse
import os
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.utils import allow_trusted_checkpoints


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='an InfoPro config')
    parser.add_argument('--checkpoint', help='weights to measure at')
    parser.add_argument(
        '--batches', type=int, default=5, help='training batches averaged')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args()


def gradient_norms(model: torch.nn.Module, data: dict) -> List[Dict]:
    """Per local module: head -> norm of d(weight * loss)/dh on one batch."""
    data = model.data_preprocessor(data, True)
    outputs = {}

    def on_module_end(module: int, feat: torch.Tensor) -> None:
        outputs[module] = feat

    with model._staged_backbone(on_module_end=on_module_end):
        model.architecture.loss(data['inputs'], data['data_samples'])
    batch = model._local_batch(data['inputs'], data['data_samples'])
    norms = []
    for module, feat in sorted(outputs.items()):
        # the weighted losses train_step back-propagates (zero weights
        # are skipped there, so they pull with 0 here)
        losses = model.local_losses(module, feat, batch)
        row = {}
        for name in model.module_weights(module):
            loss = losses.get(f'local{module + 1}.loss_{name}')
            if loss is None:
                row[name] = 0.
                continue
            grad, = torch.autograd.grad(loss, feat, retain_graph=True)
            row[name] = grad.norm().item()
        norms.append(row)
    return norms


def main() -> None:
    args = parse_args()
    allow_trusted_checkpoints()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.setdefault('work_dir', os.path.join('work_dirs', 'loss_balance'))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        runner = Runner.from_cfg(cfg)
        model = runner.model
        if not hasattr(model, 'local_heads'):
            raise SystemExit(f'{args.config} is not an InfoPro config: '
                             'there are no local losses to compare')
        model.init_weights()
        if args.checkpoint:
            load_checkpoint(model, args.checkpoint, strict=True)
        model.train()
        loader = runner.build_dataloader(cfg.train_dataloader)
        totals: List[Dict] = []
        for step, data in zip(range(args.batches), loader):
            for k, row in enumerate(gradient_norms(model, data)):
                if k == len(totals):
                    totals.append({n: 0. for n in row})
                for name, value in row.items():
                    totals[k][name] += value / args.batches
    names = list(totals[0])
    print(f'|d(weight * loss)/dh| of each local head, mean of '
          f'{args.batches} batches ({args.config})')
    print('| module | ' + ' | '.join(names) +
          (' | ratio ' + ' / '.join(names) if len(names) == 2 else '') +
          ' |')
    print('|---|' + '---|' * (len(names) + (len(names) == 2)))
    for k, row in enumerate(totals):
        cells = [f'{row[n]:.4g}' for n in names]
        if len(names) == 2:
            low = row[names[1]]
            cells.append(f'{row[names[0]] / low:.3f}' if low else 'inf')
        print(f'| {k + 1} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
