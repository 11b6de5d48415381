"""tools/analysis/plan_split.py: the table of every K, JSON, plot, budget."""
import importlib.util
import json
import os.path as osp

import pytest
from conftest import REPO, run_tool
from mmengine.config import Config
from tiny_models import SEG_HEADS, tiny_deeplabv3

from infopro_mm.models import TimeProfile

TOOL = osp.join(REPO, 'tools/analysis/plan_split.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('plan_split', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    """A tiny DeepLabV3 InfoPro config, with an SGD-momentum optimizer."""
    path = tmp_path_factory.mktemp('plan_split') / 'tiny_infopro.py'
    Config(
        dict(
            default_scope='mmseg',
            crop_size=(64, 64),
            train_dataloader=dict(batch_size=4),
            optim_wrapper=dict(
                type='infopro_mm.InfoProOptimWrapper',
                optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
            model=dict(
                type='infopro_mm.InfoPro',
                architecture=tiny_deeplabv3(),
                split=dict(boundaries=['layer2.0']),
                local_heads=SEG_HEADS,
                loss_weights=dict(recon=1.5, task=1.0)))).dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def table(config, tmp_path_factory):
    out = tmp_path_factory.mktemp('plan_split_out')
    result = run_tool(TOOL, config, '--input-size', '64', '64',
                      '--batch-size', '4', '--max-k', '4', '--out', str(out),
                      '--verify')
    with open(out / 'plan_split.json') as f:
        return json.load(f), result.stdout, out


def test_writes_the_table_json_and_plot(table):
    report, stdout, out = table
    assert osp.getsize(out / 'plan_split.png') > 0
    rows = report['rows']
    assert [r['num_modules'] for r in rows] == [1, 2, 3, 4]
    assert report['optimizer_states'] == 1  # SGD with momentum
    profile = report['profile']
    for row in rows:
        assert len(row['boundaries']) == row['num_modules'] - 1
        assert row['peak_bytes'] == row['activation_bytes'] + \
            row['fixed_bytes']
        assert f'| {row["num_modules"]} | ' in stdout
    e2e = rows[0]
    assert e2e['activation_bytes'] == sum(profile['layer_bytes']) + \
        profile['tail_bytes']
    assert e2e['head_flops'] == 0 and rows[1]['head_flops'] > 0
    assert rows[1]['activation_ratio'] < 1
    # weights, gradients and one momentum buffer
    assert e2e['fixed_bytes'] == 3 * profile['param_bytes'] + \
        profile['static_bytes']
    assert '--verify needs a CUDA device' in stdout


def test_max_memory_picks_the_k_the_table_implies(config, table, tmp_path,
                                                  capsys):
    rows = table[0]['rows']
    budget = rows[1]['peak_bytes']
    expected = min(r['num_modules'] for r in rows
                   if r['peak_bytes'] <= budget)
    report = load_tool().main([
        config, '--input-size', '64', '64', '--batch-size', '4', '--max-k',
        '4', '--max-memory', str(budget), '--out', str(tmp_path)
    ])
    assert report['chosen_num_modules'] == expected
    assert f'K={expected} is the smallest K that fits' in \
        capsys.readouterr().out
    with open(tmp_path / 'plan_split.json') as f:
        assert json.load(f)['chosen_num_modules'] == expected


def test_budget_too_small_exits_with_the_smallest_peak(config, tmp_path,
                                                       capsys):
    with pytest.raises(SystemExit) as info:
        load_tool().main([
            config, '--input-size', '64', '64', '--batch-size', '4',
            '--optimizer', 'adamw', '--max-memory', '1MiB', '--out',
            str(tmp_path)
        ])
    assert info.value.code == 1
    assert 'smallest achievable peak is' in capsys.readouterr().out
    with open(tmp_path / 'plan_split.json') as f:
        report = json.load(f)
    assert report['optimizer_states'] == 2
    assert report['chosen_num_modules'] is None


def test_time_policy_prints_stage_times_and_measures_them(config, tmp_path,
                                                          capsys):
    tool = load_tool()
    report = tool.main([
        config, '--input-size', '64', '64', '--batch-size', '2', '--max-k',
        '3', '--num-modules', '2', '--policy', 'time', '--measure-time',
        '--warmup', '0', '--repeats', '1', '--clock', 'cpu', '--out',
        str(tmp_path)
    ])
    stdout = capsys.readouterr().out
    with open(tmp_path / 'plan_split.json') as f:
        saved = json.load(f)
    assert saved['policy'] == 'time' and saved['clock'] == 'cpu'
    times = saved['time_profile']
    assert times['batch_size'] == 2 and times['repeats'] == 1
    for row in saved['rows']:
        k = row['num_modules']
        # time-balanced cuts, their predicted stage times beside the memory
        assert row['cuts'] == tool.time_cuts(report['time_profile'], k)
        assert len(row['stage_seconds']) == len(row['module_bytes']) == k
        assert all(t > 0 for t in row['stage_seconds'])
        assert row['slowest_seconds'] == max(row['stage_seconds'])
        assert row['slowest_seconds'] <= row['memory_cuts_slowest_seconds']
        assert row['images_per_second'] == pytest.approx(
            2 / row['slowest_seconds'])
    assert 'per-stage time ms' in stdout and '| 2* | ' in stdout
    measured = {r['split']: r for r in saved['measured_time']}
    # the config's own split has K=2 modules: it is measured too
    assert set(measured) == {'time-balanced', 'memory-balanced', 'config'}
    assert measured['config']['boundaries'] == ['layer2.0']
    assert measured['time-balanced']['boundaries'] == \
        saved['rows'][1]['boundaries']
    for result in measured.values():
        assert len(result['measured_seconds']) == 2
        assert all(t > 0 for t in result['measured_seconds'])
        assert result['predicted_seconds'] == pytest.approx(
            TimeProfile(times).module_seconds([
                times['names'].index(b) for b in result['boundaries']
            ]))
    assert '| time-balanced | ' in stdout and '| config | layer2.0 |' in \
        stdout


def test_measure_time_needs_the_time_policy_and_a_k(config, tmp_path):
    for extra in ([], ['--policy', 'time']):
        with pytest.raises(SystemExit, match='--measure-time needs'):
            load_tool().main([
                config, '--measure-time', '--out', str(tmp_path), *extra
            ])
