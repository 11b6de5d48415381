"""InfoProModuleParallel on CPU (gloo, 2 and 3 processes): one local module
per rank, pipelined, trains the parameters of single-process InfoPro on the
same data order (DESIGN.md invariant 11)."""
import copy
import os.path as osp
import time
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.registry import DefaultScope
from conftest import free_port
from tiny_models import (CLS_HEADS, FAMILIES, SEG_HEADS, cls_batch,
                         seg_batch, tiny_deeplabv3, tiny_family_model)

from infopro_mm.engine import (InfoProOptimWrapper, InfoProRunner,
                               ModuleParallelTrainLoop)
from infopro_mm.models import InfoPro, InfoProDDP, InfoProModuleParallel

STEPS = 5
BN = dict(type='BN', requires_grad=True)


def build(num_modules):
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        return InfoPro(
            architecture=tiny_deeplabv3(norm_cfg=BN),
            split=dict(num_modules=num_modules),
            local_heads=dict(
                recon=dict(
                    type='infopro_mm.ReconstructionHead', arch='large',
                    width=0.25),
                task=dict(
                    type='infopro_mm.LocalSegHead', width=0.0625,
                    dropout=0.)),
            loss_weights=dict(recon=(1.5, 0.5), task=1.0))


def optimizer(model):
    return InfoProOptimWrapper(
        torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4))


def batches():
    return [seg_batch(num=2, seed=i) for i in range(STEPS)]


def state(model):
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


def train_pipelined(k, rank, stale=False):
    """K-stage module-parallel training; ``stale``: rank 1 gets the
    previous step's features (negative control)."""
    model = build(k)
    initial = state(model)
    wrapper = InfoProModuleParallel(model, queue_depth=2, timeout=60)
    optim = optimizer(model)
    wrapper.restrict_optimizer(optim)
    owned = {id(p) for p in wrapper.stage_parameters()}
    in_optim = {id(p) for g in optim.param_groups for p in g['params']}
    if stale and rank == 1:
        receive, previous = wrapper._receive, []

        def stale_receive(step):
            previous.append(receive(step))
            return dict(previous[-1], x=previous[max(0, step - 1)]['x'])

        wrapper._receive = stale_receive
    logs = []
    for batch in batches():
        log_vars = wrapper.train_step(batch if rank == 0 else None, optim)
        logs.append((sorted(log_vars), sorted(model.local_log_vars)))
    before_sync = state(model)
    held_bytes = sum(
        t.numel() * t.element_size() for t in before_sync.values())
    val_refused = ''
    try:
        wrapper.val_step(batches()[0])
    except RuntimeError as exc:
        val_refused = str(exc)
    wrapper.synchronize()
    full_optim = optim.state_dict()  # collective
    optim.load_state_dict(full_optim)
    roundtrip = optim.state_dict()
    wrapper.close()
    return dict(
        state=state(model),
        optim=full_optim,
        optim_roundtrip=roundtrip,
        optim_is_own=in_optim == owned,
        changed=[
            n for n, t in before_sync.items()
            if t.shape == initial[n].shape and not torch.equal(t, initial[n])
        ],
        released=[
            n for n, t in before_sync.items()
            if t.numel() == 0 and initial[n].numel() > 0
        ],
        held_bytes=held_bytes,
        val_refused=val_refused,
        log_lag=wrapper.log_lag,
        logs=logs)


def errors(world, rank):
    found = {}
    try:
        InfoProModuleParallel(build(2 if world == 3 else 3))
    except ValueError as exc:
        found['not_divisible'] = str(exc)
    if world == 2:
        ddp = InfoProDDP(build(2))
        try:
            InfoProModuleParallel(ddp)
        except TypeError as exc:
            found['wraps_ddp'] = str(exc)
        try:
            ModuleParallelTrainLoop(
                SimpleNamespace(model=ddp), dict(), max_iters=1)
        except TypeError as exc:
            found['loop_with_ddp'] = str(exc)
        wrapper = InfoProModuleParallel(build(2), timeout=2)
        try:
            InfoProRunner.build_train_loop(
                SimpleNamespace(model=wrapper),
                dict(type='IterBasedTrainLoop', max_iters=1))
        except ValueError as exc:
            found['plain_loop'] = str(exc)
        optim = optimizer(wrapper.module)
        wrapper.restrict_optimizer(optim)
        if rank == 0:
            time.sleep(4)  # rank 0 sends nothing in time
        else:
            try:
                wrapper.train_step(None, optim)
            except TimeoutError as exc:
                found['timeout'] = str(exc)
        wrapper.close()
    return found


def run_on_ranks(rank, world, port, out, work):
    """One gloo rank of ``world``: saves ``work(rank, world)``."""
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world)
    torch.save(work(rank, world), osp.join(out, f'rank{rank}.pth'))
    dist.barrier()
    dist.destroy_process_group()


def spawn(tmp_path_factory, name, work, world):
    """What ``work`` returned on each of ``world`` gloo processes."""
    out = str(tmp_path_factory.mktemp(name))
    mp.spawn(run_on_ranks, args=(world, free_port(), out, work),
             nprocs=world, join=True)
    return [
        torch.load(osp.join(out, f'rank{r}.pth'), weights_only=False)
        for r in range(world)
    ]


def pipelines(rank, world):
    return {
        f'k{world}': train_pipelined(world, rank),
        f'k{world}_stale': train_pipelined(world, rank, stale=True),
        'errors': errors(world, rank),
    }


@pytest.fixture(scope='module', params=[2, 3], ids=['world2', 'world3'])
def ranks(request, tmp_path_factory):
    world = request.param
    return world, spawn(tmp_path_factory, f'mp{world}', pipelines, world)


def train_one_process(model, optim, data):
    """Single-process InfoPro on ``data``: the model's and the optimizer's
    state dicts."""
    torch.set_num_threads(1)
    for batch in data:
        model.train_step(copy.deepcopy(batch), optim)
    return state(model), optim.state_dict()


def single_process(k):
    model = build(k)
    return train_one_process(model, optimizer(model), batches())


def assert_states_close(result, reference):
    assert set(result) == set(reference)
    for name, value in reference.items():
        torch.testing.assert_close(
            result[name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_equals_single_process(ranks):
    world, results = ranks
    reference, reference_optim = single_process(world)
    for rank in results:
        assert_states_close(rank[f'k{world}']['state'], reference)
        assert rank[f'k{world}']['optim_is_own']
    # the gathered optimizer state is the single-process one
    gathered = results[0][f'k{world}']['optim']
    assert gathered['param_groups'][0]['params'] == \
        reference_optim['param_groups'][0]['params']
    assert set(gathered['state']) == set(reference_optim['state'])
    for index, value in reference_optim['state'].items():
        torch.testing.assert_close(
            gathered['state'][index]['momentum_buffer'],
            value['momentum_buffer'], rtol=1e-5, atol=1e-7)
    roundtrip = results[0][f'k{world}']['optim_roundtrip']
    for index, value in gathered['state'].items():
        assert torch.equal(roundtrip['state'][index]['momentum_buffer'],
                           value['momentum_buffer'])


def test_other_modules_are_not_stepped(ranks):
    world, results = ranks
    initial = state(build(world))
    trained = set(n for n, t in initial.items()
                  if not torch.equal(t, results[0][f'k{world}']['state'][n]))
    per_rank = [set(r[f'k{world}']['changed']) for r in results]
    for k, changed in enumerate(per_rank):
        assert changed, f'rank {k} trained nothing'
        for other in per_rank[k + 1:]:
            assert not changed & other  # each tensor has one owner
    assert set().union(*per_rank) == trained


def test_each_rank_holds_only_its_module_while_training(ranks):
    """Between train steps a rank frees what the other stages train and
    refuses to validate; synchronize() makes the model whole again."""
    world, results = ranks
    initial = state(build(world))
    total = sum(t.numel() * t.element_size() for t in initial.values())
    shared = {n for n in initial if n.startswith('data_preprocessor.')}
    per_rank = [set(r[f'k{world}']['changed']) for r in results]
    for k, result in enumerate(results):
        released = set(result[f'k{world}']['released'])
        for j, other_changed in enumerate(per_rank):
            if j != k:
                assert other_changed <= released
        assert not released & (per_rank[k] | shared)
        assert result[f'k{world}']['held_bytes'] < total
        assert 'synchronize()' in result[f'k{world}']['val_refused']
        assert f'rank {k}' in result[f'k{world}']['val_refused']
    # every tensor is held by some rank, and by one rank only
    held = [set(initial) - set(r[f'k{world}']['released']) - shared
            for r in results]
    assert set().union(*held) == set(initial) - shared
    assert sum(map(len, held)) == len(set(initial) - shared)


def test_losses_of_every_stage_reach_rank_0(ranks):
    """Rank 0 logs at step t every loss of step t - log_lag."""
    world, results = ranks
    expected_local = sorted(
        f'local{k + 1}.loss_{name}' for k in range(world - 1)
        for name in ('recon', 'task'))
    result = results[0][f'k{world}']
    lag = result['log_lag']
    assert 0 < lag < STEPS
    for step, (task, local) in enumerate(result['logs']):
        if step < lag:
            assert task == [] and local == []
        else:
            assert 'decode.loss_ce' in task and 'loss' in task
            assert local == expected_local


def test_stale_features_fail_the_check(ranks):
    world, results = ranks
    reference, _ = single_process(world)
    with pytest.raises(AssertionError):
        assert_states_close(results[0][f'k{world}_stale']['state'],
                            reference)


def test_bad_input_fails_loudly(ranks):
    world, results = ranks
    for rank, result in enumerate(results):
        found = result['errors']
        assert 'not divisible' in found['not_divisible']
        if world == 2:
            assert 'InfoProDDP' in found['wraps_ddp']
            assert 'InfoProDDP' in found['loop_with_ddp']
            assert 'ModuleParallelTrainLoop' in found['plain_loop']
            if rank == 1:
                assert 'rank 1' in found['timeout']
                assert 'step 0' in found['timeout']
                assert 'rank 0' in found['timeout']


def test_needs_a_process_group():
    with pytest.raises(RuntimeError, match='initialised process group'):
        InfoProModuleParallel(build(2))


# ----------------------------------------------------------------------
# K stages x D replicas: 2 x 2 processes, each stage's gradients averaged
# by torch's DistributedDataParallel over its 2 replicas, against one
# process on the whole batch (GroupNorm: BatchNorm statistics of half a
# batch differ from the whole batch's by design).
GN = dict(type='GN', num_groups=1, requires_grad=True)
REPLICA_CASES = {'k2x2': 1, 'k2x2_acc2': 2}  # name: accumulative_counts


def build_gn():
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        return InfoPro(
            architecture=tiny_deeplabv3(norm_cfg=GN),
            split=dict(num_modules=2),
            local_heads=dict(
                recon=dict(
                    type='infopro_mm.ReconstructionHead', arch='large',
                    width=0.25, norm_cfg=GN),
                task=dict(
                    type='infopro_mm.LocalSegHead', width=0.0625,
                    dropout=0., norm_cfg=GN)),
            loss_weights=dict(recon=(1.5, 0.5), task=1.0))


def whole_batches(acc):
    return [seg_batch(num=4, seed=i) for i in range(3 * acc)]


def train_replicated(rank, acc, stale=False):
    """2 stages x 2 replicas; ``stale``: rank 3 (stage 1 of pipeline 1)
    gets the previous step's features (negative control)."""
    model = build_gn()
    wrapper = InfoProModuleParallel(model, queue_depth=2, timeout=60)
    optim = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        accumulative_counts=acc)
    wrapper.restrict_optimizer(optim)
    if stale and rank == 3:
        receive, previous = wrapper._receive, []

        def stale_receive(step):
            previous.append(receive(step))
            return dict(previous[-1], x=previous[max(0, step - 1)]['x'])

        wrapper._receive = stale_receive
    for batch in whole_batches(acc):
        part = {
            k: v[2 * wrapper.replica:2 * wrapper.replica + 2]
            for k, v in batch.items()
        }
        wrapper.train_step(part if wrapper.stage == 0 else None, optim)
    wrapper.synchronize()
    full_optim = optim.state_dict()
    wrapper.close()
    replicas = wrapper.replicas
    links = (wrapper.inbox, wrapper.outbox, wrapper.loss_link)
    return dict(
        state=state(model),
        optim=full_optim,
        receiving=[  # close() ends every receiving thread of the rank
            link._thread.is_alive() for link in links
            if link is not None and link._thread is not None
        ],
        layout=(wrapper.stage, wrapper.replica),
        ddp=(type(replicas).__name__,
             dist.get_world_size(replicas.process_group),
             {id(p) for p in replicas.parameters()} ==
             {id(p) for p in wrapper.stage_parameters()}))


def replicated(rank, world):
    results = {
        name: train_replicated(rank, acc)
        for name, acc in REPLICA_CASES.items()
    }
    results['stale'] = train_replicated(rank, 1, stale=True)
    return results


@pytest.fixture(scope='module')
def replica_ranks(tmp_path_factory):
    return spawn(tmp_path_factory, 'mp2x2', replicated, 4)


def single_process_whole_batch(acc):
    model = build_gn()
    optim = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        accumulative_counts=acc)
    return train_one_process(model, optim, whole_batches(acc))


@pytest.mark.parametrize('case', list(REPLICA_CASES))
def test_stages_x_replicas_equal_single_process(replica_ranks, case):
    reference, reference_optim = single_process_whole_batch(
        REPLICA_CASES[case])
    for rank, result in enumerate(replica_ranks):
        assert result[case]['layout'] == (rank % 2, rank // 2)
        assert result[case]['ddp'] == ('DistributedDataParallel', 2, True)
        assert result[case]['receiving'] in ([False], [False, False])
        assert_states_close(result[case]['state'], reference)
    gathered = replica_ranks[0][case]['optim']
    assert set(gathered['state']) == set(reference_optim['state'])
    for index, value in reference_optim['state'].items():
        torch.testing.assert_close(
            gathered['state'][index]['momentum_buffer'],
            value['momentum_buffer'], rtol=1e-5, atol=1e-7)


def test_stages_x_replicas_stale_features_fail_the_check(replica_ranks):
    reference, _ = single_process_whole_batch(1)
    with pytest.raises(AssertionError):
        assert_states_close(replica_ranks[0]['stale']['state'], reference)


# ----------------------------------------------------------------------
# Beyond ResNet: between transformer layers go token sequences with their
# grid shape (Tokens); K=2 on 2 processes equals one process per family.
FAMILY_CASES = ['mmseg-swin', 'convnext', 'mit', 'mmseg-vit',
                'convnext-gap', 'mmpretrain-vit-avg']
POOLED = ('convnext-gap', 'mmpretrain-vit-avg')


def build_family(family):
    scope = 'mmpretrain' if family in POOLED else 'mmseg'
    architecture = tiny_family_model(family)
    # every rank draws its own random numbers: no stochastic depth here
    architecture['backbone'] = dict(
        architecture['backbone'], drop_path_rate=0.)
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        return InfoPro(
            architecture=architecture,
            split=dict(boundaries=[FAMILIES[family][2]]),
            local_heads=CLS_HEADS if family in POOLED else SEG_HEADS,
            loss_weights=dict(recon=1.5, task=1.0))


def family_batches(family):
    make = (lambda seed: cls_batch(num_classes=4, seed=seed)) \
        if family in POOLED else (lambda seed: seg_batch(seed=seed))
    return [make(i) for i in range(3)]


def train_family(family, rank, stale=False):
    model = build_family(family)
    wrapper = InfoProModuleParallel(model, queue_depth=2, timeout=60)
    optim = optimizer(model)
    wrapper.restrict_optimizer(optim)
    received = []
    receive = wrapper._receive

    def recording_receive(step):
        received.append(receive(step))
        if stale:
            return dict(received[-1], x=received[max(0, step - 1)]['x'])
        return received[-1]

    wrapper._receive = recording_receive
    for batch in family_batches(family):
        wrapper.train_step(batch if rank == 0 else None, optim)
    wrapper.close()
    return dict(state=state(model),
                received=[type(r['x']).__name__ for r in received])


def families(rank, world):
    results = {family: train_family(family, rank) for family in FAMILY_CASES}
    results['stale'] = train_family('mmseg-swin', rank, stale=True)
    return results


@pytest.fixture(scope='module')
def family_ranks(tmp_path_factory):
    return spawn(tmp_path_factory, 'mp_families', families, 2)


def single_process_family(family):
    model = build_family(family)
    return train_one_process(model, optimizer(model),
                             family_batches(family))[0]


@pytest.mark.parametrize('family', FAMILY_CASES)
def test_families_equal_single_process(family_ranks, family):
    reference = single_process_family(family)
    for result in family_ranks:
        assert_states_close(result[family]['state'], reference)
    # the second stage receives what the first module hands on: tokens
    # with their grid shape for the transformers, a map for ConvNeXt
    expected = 'Tensor' if 'convnext' in family else 'Tokens'
    assert family_ranks[1][family]['received'] == [expected] * 3


def test_families_stale_tokens_fail_the_check(family_ranks):
    reference = single_process_family('mmseg-swin')
    with pytest.raises(AssertionError):
        assert_states_close(family_ranks[0]['stale']['state'], reference)
