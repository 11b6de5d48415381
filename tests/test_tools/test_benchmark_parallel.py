"""tools/analysis/benchmark_parallel.py runs its five methods on 2 gloo
processes and writes its JSON and plot."""
import json
import os.path as osp

from conftest import REPO, run_tool

METHODS = ['e2e_single', 'infopro_single', 'e2e_ddp', 'e2e_gpipe',
           'infopro_module_parallel']
MEMORY = ('saved_peak_bytes', 'param_bytes', 'trained_param_bytes',
          'grad_bytes', 'optimizer_state_bytes')


def test_benchmark_parallel_writes_every_method(tmp_path):
    # CIFAR ResNet-20 (3 blocks per stage) cut after layer2.0, K=2
    result = run_tool(
        'tools/analysis/benchmark_parallel.py',
        osp.join(REPO, 'configs/cifar10/resnet32_infopro-softmax_k2_'
                 'cifar10.py'), '--batch-size', '4', '--iters', '2',
        '--warmup', '1', '--microbatches', '2', '--out', str(tmp_path),
        '--cfg-options', 'model.architecture.backbone.depth=20',
        "model.split.boundaries=['layer2.0']")
    assert '| infopro_module_parallel | 2 x 1 |' in result.stdout
    assert 'module-parallel / GPipe' in result.stdout
    data = json.loads((tmp_path / 'benchmark_parallel.json').read_text())
    assert (tmp_path / 'benchmark_parallel.png').stat().st_size > 0
    assert data['num_modules'] == 2 and data['cuts'] == ['layer2.0']
    assert data['microbatches'] == 2 and data['threads_per_process'] == 1
    rows = {row['method']: row for row in data['results']}
    assert list(rows) == METHODS
    for name, row in rows.items():
        single = name.endswith('_single')
        assert row['processes'] == (1 if single else 2)
        assert row['images_per_s'] > 0 and row['median_iter_s'] > 0
        assert len(row['iter_times_s']) == 2
        assert len(row['rank_median_step_s']) == row['processes']
        assert set(row['ratios']) == {'infopro_single', 'e2e_ddp',
                                      'e2e_gpipe'}
        assert all(r > 0 for r in row['ratios'].values())
        assert [r['rank'] for r in row['ranks']] == ([0] if single else
                                                     [0, 1])
        for rank in row['ranks']:
            assert all(rank[key] > 0 for key in MEMORY), (name, rank)
            assert rank['allocator_peak_bytes'] is None or \
                rank['allocator_peak_bytes'] >= 0
    assert rows['infopro_single']['ratios']['infopro_single'] == 1.0
    # each module-parallel rank trains (and keeps gradients and momentum
    # for) its own module only: the two parts make up the whole model
    parallel = rows['infopro_module_parallel']['ranks']
    whole = rows['infopro_single']['ranks'][0]['trained_param_bytes']
    assert sum(r['trained_param_bytes'] for r in parallel) == whole
    for rank in parallel:
        assert rank['grad_bytes'] == rank['trained_param_bytes'] == \
            rank['optimizer_state_bytes']
        assert rank['trained_param_bytes'] < whole
    ddp = rows['e2e_ddp']['ranks']
    assert ddp[0]['trained_param_bytes'] == ddp[1]['trained_param_bytes']
    targets = data['targets']
    assert set(targets) == {'vs_infopro_single', 'vs_e2e_ddp', 'vs_gpipe',
                            'param_grad_state_bytes', 'saved_peak_bytes'}
    assert targets['saved_peak_bytes']['largest_module'] > 0
