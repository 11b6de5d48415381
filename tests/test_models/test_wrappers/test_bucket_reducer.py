"""BucketReducer on CPU (gloo, 2 processes): bucket layout, overlap, used
flags and the second-gradient guard."""
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import free_port
from torch import nn

from infopro_mm.models import BucketReducer

WEIGHT_MB = 4 * 4 * 4 / 2**20  # one 4x4 float weight


def layers():
    torch.manual_seed(0)
    return nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)


def worker(rank, port, out):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2)
    first, second, unused = layers()
    names = {p: f'{layer}.{n}' for layer, module in (
        ('first', first), ('second', second), ('unused', unused))
        for n, p in module.named_parameters()}
    reducer = BucketReducer(
        [list(first.parameters()),
         list(second.parameters()) + list(unused.parameters())],
        bucket_cap_mb=WEIGHT_MB)
    results = dict(
        layout=[[names[p] for p in b.params] for b in reducer.buckets],
        groups=[list(r) for r in reducer.group_buckets])
    x = torch.full((2, 4), rank + 1.)

    # Overlap: the first group's buckets start inside its backward; the
    # second layer runs on rank 0 only.
    reducer.arm(overlap=True)
    first(x).sum().backward()
    results['started_after_first'] = [
        b.work is not None for b in reducer.buckets]
    if rank == 0:
        second(x).sum().backward()
    reducer.finish()
    results['grads'] = {
        names[p]: None if p.grad is None else p.grad.clone()
        for p in names}

    # Without overlap nothing starts before finish().
    for layer in (first, second):
        layer.zero_grad(set_to_none=True)
    reducer.arm(overlap=False)
    first(x).sum().backward()
    results['started_without_overlap'] = any(
        b.work is not None for b in reducer.buckets)
    reducer.finish()
    results['no_overlap_grad'] = first.weight.grad.clone()

    # A second gradient in one iteration is refused.
    reducer.arm(overlap=True)
    first(x).sum().backward()
    try:
        first(x).sum().backward()
        results['second_gradient'] = 'accepted'
    except RuntimeError as exc:
        results['second_gradient'] = str(exc)
    reducer.finish()

    # Disarmed (after finish), the hooks start nothing.
    first(x).sum().backward()
    results['started_when_disarmed'] = any(
        b.work is not None for b in reducer.buckets)
    torch.save(results, osp.join(out, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('reducer'))
    mp.spawn(worker, args=(free_port(), out), nprocs=2, join=True)
    return [torch.load(osp.join(out, f'rank{r}.pth'), weights_only=False)
            for r in range(2)]


def test_buckets_follow_backward_order_within_groups(ranks):
    for rank in ranks:
        assert rank['layout'] == [['first.bias', 'first.weight'],
                                  ['unused.bias', 'unused.weight'],
                                  ['second.bias', 'second.weight']]
        assert rank['groups'] == [[0], [1, 2]]


def test_overlap_starts_a_group_inside_its_backward(ranks):
    for rank in ranks:
        group0 = rank['groups'][0]
        started = rank['started_after_first']
        assert all(started[i] for i in group0)
        # the second group's first bucket holds unused parameters, so
        # nothing of it starts before finish()
        assert not any(started[i] for i in rank['groups'][1])
        assert not rank['started_without_overlap']
        assert not rank['started_when_disarmed']


def test_gradients_are_averaged_over_ranks_with_used_flags(ranks):
    first, second, _ = layers()
    x = torch.full((2, 4), 1.5)  # the mean input of the two ranks
    first(x).sum().backward()
    for rank in ranks:
        grads = rank['grads']
        torch.testing.assert_close(grads['first.weight'], first.weight.grad)
        torch.testing.assert_close(grads['first.bias'], first.bias.grad)
        torch.testing.assert_close(rank['no_overlap_grad'],
                                   first.weight.grad)
        # used on rank 0 only (input 1): half of rank 0's gradient
        torch.testing.assert_close(grads['second.weight'],
                                   torch.ones(4, 4))
        torch.testing.assert_close(grads['second.bias'], torch.ones(4))
        assert grads['unused.weight'] is None
        assert grads['unused.bias'] is None


def test_a_second_gradient_in_one_iteration_is_refused(ranks):
    for rank in ranks:
        assert 'second gradient in one iteration' in rank['second_gradient']
