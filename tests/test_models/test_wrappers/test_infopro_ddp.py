"""InfoProDDP on CPU (gloo, 2 processes): every rank holds the parameters of
single-process training on the concatenated batch; plain DDP does not give
InfoPro's training."""
import copy
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import DefaultScope
from conftest import free_port
from tiny_models import seg_batch, tiny_deeplabv3

from infopro_mm.engine import InfoProConsistencyHook, InfoProOptimWrapper
from infopro_mm.models import InfoPro, InfoProDDP
from infopro_mm.utils import SavedTensorTracker

GN = dict(type='GN', num_groups=1, requires_grad=True)
CASES = {  # name: (K, accumulative_counts, overlap, MAN heads)
    'k2': (2, 1, True, False),
    'k3': (3, 1, True, False),
    'k2_acc2': (2, 2, True, False),
    'k3_acc2_no_overlap': (3, 2, False, False),
    'k3_man': (3, 1, True, True),
}
STEPS = 3


def build(num_modules, man=False):
    heads = dict(
        recon=dict(
            type='infopro_mm.ReconstructionHead', arch='large', width=0.25,
            norm_cfg=GN),
        task=dict(
            type='infopro_mm.LocalSegHead', width=0.0625, dropout=0.,
            norm_cfg=GN))
    if man:  # both heads behind MAN's EMA + learnable copies
        heads = {
            name: dict(type='infopro_mm.MomentumAuxHead', head=head)
            for name, head in heads.items()
        }
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        return InfoPro(
            architecture=tiny_deeplabv3(norm_cfg=GN),
            split=dict(num_modules=num_modules),
            local_heads=heads,
            loss_weights=dict(recon=(1.5, 0.5), task=1.0))


def optimizer(model, acc):
    return InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        accumulative_counts=acc)


def half(batch, rank):
    return {k: v[2 * rank:2 * rank + 2] for k, v in batch.items()}


def batches(acc):
    return [seg_batch(num=4, seed=i) for i in range(STEPS * acc)]


def params(model):
    """Parameters, and MAN's EMA copies (buffers updated after a step)."""
    tensors = [*model.named_parameters(), *(
        (n, b) for n, b in model.named_buffers() if '.ema.' in n)]
    return {n: t.detach().clone() for n, t in tensors}


class NaiveDDP(MMDistributedDataParallel):
    """What the paper's script does: the model's own step inside DDP."""

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)


def worker(rank, port, out):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2)
    results = {}
    for name, (k, acc, overlap, man) in CASES.items():
        model = build(k, man)
        ddp = InfoProDDP(model, overlap=overlap)
        optim = optimizer(model, acc)
        for batch in batches(acc):
            ddp.train_step(half(batch, rank), optim)
        results[name] = params(model)

    # Plain MMDistributedDataParallel runs the summed objective in one
    # backward: right gradients, but every module's activations stay alive.
    peaks = {}
    for name, wrap in (('mmddp', MMDistributedDataParallel),
                       ('infopro_ddp', InfoProDDP)):
        model = build(2)
        wrapped = wrap(module=model)
        with SavedTensorTracker(ignore=model) as tracker:
            wrapped.train_step(half(seg_batch(num=4), rank),
                               optimizer(model, 1))
        peaks[name] = tracker.peak_bytes
    results['peaks'] = peaks

    # The model's own step inside DDP never all-reduces: ranks diverge, and
    # the consistency hook stops the run.
    model = build(2)
    naive = NaiveDDP(module=model)
    naive.train_step(half(seg_batch(num=4), rank), optimizer(model, 1))
    runner = type('Runner', (), dict(model=naive, iter=0))()
    try:
        InfoProConsistencyHook(interval=1).after_train_iter(runner, 0)
        results['hook'] = 'passed'
    except RuntimeError as exc:
        results['hook'] = str(exc)
    results['naive'] = params(model)
    torch.save(results, osp.join(out, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('ddp'))
    port = free_port()
    mp.spawn(worker, args=(port, out), nprocs=2, join=True)
    return [torch.load(osp.join(out, f'rank{r}.pth'), weights_only=False)
            for r in range(2)]


@pytest.mark.parametrize('case', list(CASES))
def test_ranks_equal_single_process_on_concatenated_batch(ranks, case):
    k, acc, _, man = CASES[case]
    model = build(k, man)
    optim = optimizer(model, acc)
    for batch in batches(acc):
        model.train_step(copy.deepcopy(batch), optim)
    assert optim.inner_count == STEPS * acc
    reference = params(model)
    for rank in ranks:
        assert set(rank[case]) == set(reference)
        for name, value in reference.items():
            torch.testing.assert_close(
                rank[case][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for name in reference:
        assert torch.equal(ranks[0][case][name], ranks[1][case][name]), name


def test_plain_ddp_keeps_every_module_alive(ranks):
    """Regression: mmengine's DDP trains the right objective but with
    end-to-end memory; InfoProDDP keeps InfoPro's saving."""
    for rank in ranks:
        peaks = rank['peaks']
        assert peaks['infopro_ddp'] < 0.8 * peaks['mmddp']


def test_naive_ddp_diverges_and_the_hook_stops_it(ranks):
    diverged = [
        n for n in ranks[0]['naive']
        if not torch.equal(ranks[0]['naive'][n], ranks[1]['naive'][n])
    ]
    assert diverged
    for rank in ranks:
        assert 'parameters differ across ranks' in rank['hook']
        assert 'InfoProDDP' in rank['hook']


def test_infopro_ddp_needs_a_process_group():
    with pytest.raises(RuntimeError, match='initialised process group'):
        InfoProDDP(build(2))
