"""tools/analysis/benchmark_memory.py: orderings that must hold, report."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from tiny_models import SEG_HEADS, tiny_deeplabv3

TOOL = osp.join(REPO, 'tools/analysis/benchmark_memory.py')
FIGURES = ('saved_peak_bytes', 'allocator_peak_bytes',
           'cuda_max_allocated_bytes', 'cuda_max_reserved_bytes', 'flops',
           'step_time_s')
RESULT_KEYS = {
    'name', 'method', 'num_modules', 'policy', 'with_cp', 'boundaries',
    'module_layers', 'build_s', 'modules', 'step_times_s',
    'instrumented_step_s', 'step_time_source', 'ratios', *FIGURES
}
REPORT_KEYS = {
    'config', 'input_size', 'batch_size', 'iters', 'warmup', 'device',
    'device_name', 'num_threads', 'torch', 'head_width', 'local_heads',
    'loss_weights', 'optimizer', 'command', 'results'
}


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_memory', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_seg_config(path) -> str:
    """A tiny DeepLabV3 InfoPro config file, as a user would write it."""
    cfg = Config(
        dict(
            default_scope='mmseg',
            crop_size=(64, 64),
            train_dataloader=dict(batch_size=4),
            model=dict(
                type='infopro_mm.InfoPro',
                architecture=tiny_deeplabv3(),
                split=dict(boundaries=['layer2.0']),
                local_heads=SEG_HEADS,
                loss_weights=dict(recon=1.5, task=1.0))))
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def seg_report(tmp_path_factory):
    """The tool run once from the command line on the tiny DeepLabV3."""
    tmp = tmp_path_factory.mktemp('benchmark')
    config = tiny_seg_config(tmp / 'tiny_deeplabv3_infopro.py')
    out, png = tmp / 'result.json', tmp / 'result.png'
    result = run_tool(TOOL, config, '--methods',
                      'e2e,infopro,checkpoint,infopro+checkpoint',
                      '--num-modules', '2', '4', '--policy', 'balanced',
                      'uniform', '--iters', '1', '--warmup', '1',
                      '--threads', '1', '--out', str(out), '--plot',
                      str(png))
    with open(out) as f:
        report = json.load(f)
    return report, result.stdout, png


def by_name(report):
    return {r['name']: r for r in report['results']}


def test_report_has_every_field(seg_report):
    report, stdout, png = seg_report
    assert REPORT_KEYS <= set(report)
    assert report['input_size'] == [64, 64] and report['batch_size'] == 4
    assert report['device'] == 'cpu' and report['num_threads'] == 1
    names = [r['name'] for r in report['results']]
    assert names == [
        'e2e', 'infopro-K2-balanced', 'infopro-K2-uniform',
        'infopro-K4-balanced', 'infopro-K4-uniform', 'checkpoint',
        'infopro+checkpoint-K2-balanced', 'infopro+checkpoint-K2-uniform',
        'infopro+checkpoint-K4-balanced', 'infopro+checkpoint-K4-uniform'
    ]
    for r in report['results']:
        assert RESULT_KEYS <= set(r), r['name']
        assert set(r['ratios']) == set(FIGURES)
        assert r['num_modules'] == len(r['modules']) == len(
            r['module_layers']) == len(r['boundaries']) + 1
        # CPU: every figure but the CUDA ones is measured
        for key in FIGURES:
            measured = r[key] is not None
            assert measured == (not key.startswith('cuda')), (r['name'], key)
            assert (r['ratios'][key] is not None) == measured
        assert r['step_time_source'] == 'plain' and len(r['step_times_s']) == 1
        assert r['saved_peak_bytes'] == max(m['peak_bytes']
                                            for m in r['modules'])
        assert r['modules'][-1]['tail_bytes'] > 0
        for m in r['modules'][:-1]:
            assert set(m['head_bytes']) == {'recon', 'task'}
        if r['policy'] == 'balanced':
            assert len(r['planner_estimate_bytes']) == r['num_modules']
    e2e = by_name(report)['e2e']
    assert all(v == 1.0 for v in e2e['ratios'].values() if v is not None)
    # the markdown tables and the plot
    assert '| method | cuts after | saved peak MiB | x E2E |' in stdout
    assert '| infopro-K4-balanced |' in stdout
    assert '| method | module | layers |' in stdout
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_orderings_that_must_hold(seg_report):
    results = by_name(seg_report[0])

    def saved(name):
        return results[name]['saved_peak_bytes']

    for policy in ('balanced', 'uniform'):
        assert saved(f'infopro-K2-{policy}') < saved('e2e')
        assert saved(f'infopro-K4-{policy}') < saved(f'infopro-K2-{policy}')
    for k in (2, 4):
        # InfoPro*: the largest module is never larger than uniform's
        assert saved(f'infopro-K{k}-balanced') <= saved(
            f'infopro-K{k}-uniform')
        # checkpointing the same cuts only removes saved activations
        assert saved(f'infopro+checkpoint-K{k}-uniform') < saved(
            f'infopro-K{k}-uniform')
    assert saved('checkpoint') < saved('e2e')
    # the local heads and the recomputation cost FLOPs
    flops = {name: r['flops'] for name, r in results.items()}
    assert flops['checkpoint'] > flops['e2e']
    for name, value in flops.items():
        if name.startswith('infopro'):
            assert value > flops['e2e']
        if name.startswith('infopro+checkpoint'):
            assert value > flops[name.replace('+checkpoint', '')]


def test_module_breakdown_adds_up(seg_report):
    for r in seg_report[0]['results']:
        for m in r['modules']:
            assert m['carried_bytes'] == 0, (r['name'], m)  # all released
            parts = m['backbone_bytes'] + sum(
                m.get('head_bytes', {}).values()) + m.get('tail_bytes', 0)
            assert parts <= m['peak_bytes'], (r['name'], m)


@pytest.mark.parametrize('policy', ['uniform', 'time'])
def test_plain_classifier_config_gets_the_paper_heads(policy):
    tool = load_tool()
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=10,
                    in_channels=512,
                    loss=dict(type='CrossEntropyLoss'))),
            # as mmpretrain configs give it: top level, no type
            data_preprocessor=dict(
                num_classes=10,
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                to_rgb=True)))
    methods = tool.expand_methods(['infopro'], [2], [policy])
    torch.set_num_threads(1)
    report = tool.run_benchmark(
        cfg, methods, (64, 64), 4, iters=0, warmup=0, allocator=False)
    heads = report['local_heads']
    assert heads['recon']['type'] == 'infopro_mm.ReconstructionHead'
    assert heads['task']['type'] == 'infopro_mm.LocalClsHead'
    e2e, k2 = report['results']
    assert e2e['name'] == 'e2e' and k2['name'] == f'infopro-K2-{policy}'
    assert len(k2['boundaries']) == 1  # 'time': the cut the timing chose
    assert k2['step_time_source'] == 'instrumented'
    assert e2e['allocator_peak_bytes'] is None
    # the paper's heads are built for 224 inputs: at 64x64 they weigh as
    # much as the backbone, so only their presence is checked here
    assert set(k2['modules'][0]['head_bytes']) == {'recon', 'task'}
    assert all(b > 0 for b in k2['modules'][0]['head_bytes'].values())
    assert k2['ratios']['flops'] > 1
    table = tool.format_table(report)
    assert 'allocator' not in table and f'| infopro-K2-{policy} |' in table


def test_allocator_peak_is_reconstructed_exactly():
    tool = load_tool()
    before = torch.ones(1000)  # allocated before: its free is not reported
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        a = torch.empty(1000)  # 4000 B
        b = torch.empty(2000)  # 8000 B, 12000 alive
        del a, before  # 8000 alive
        c = torch.empty(500)  # 10000 alive
        del b, c
    assert tool.allocator_peak(prof, torch.device('cpu')) == 12000


def test_methods_expand_with_e2e_first_and_bad_input_is_named():
    tool = load_tool()
    names = [
        m.name for m in tool.expand_methods(['checkpoint', 'infopro'], [3],
                                            ['balanced', 'uniform'])
    ]
    assert names == [
        'e2e', 'checkpoint', 'infopro-K3-balanced', 'infopro-K3-uniform'
    ]
    with pytest.raises(ValueError, match='unknown methods'):
        tool.expand_methods(['greedy'], [2], ['uniform'])
    with pytest.raises(ValueError, match='K=1 is e2e'):
        tool.expand_methods(['infopro'], [1], ['uniform'])


def test_merge_keeps_each_runs_ratios_and_refuses_other_settings(
        seg_report, tmp_path):
    import copy
    import sys
    sys.path.insert(0, osp.join(REPO, 'tools/analysis'))
    try:
        from merge_benchmarks import merge_reports
    finally:
        sys.path.pop(0)
    report = seg_report[0]
    first = dict(report, results=report['results'][:3])
    second = copy.deepcopy(dict(report, results=[report['results'][0],
                                                 *report['results'][5:]]))
    second['results'][1]['ratios']['step_time_s'] = 123.0  # its own run's
    merged = merge_reports([first, second])
    assert [r['name'] for r in merged['results']] == [
        r['name'] for r in [*report['results'][:3], *report['results'][5:]]
    ]
    assert merged['results'][3]['ratios']['step_time_s'] == 123.0
    assert merged['results'][3]['run'] == 1
    other = copy.deepcopy(second)
    other['results'][0]['flops'] += 1
    with pytest.raises(ValueError, match='e2e flops'):
        merge_reports([first, other])
    with pytest.raises(ValueError, match='input_size'):
        merge_reports([first, dict(second, input_size=[32, 32])])
