"""tools/analysis/benchmark_ddp.py runs end to end and writes its JSON."""
import json
import os.path as osp

from conftest import REPO, run_tool


def test_benchmark_ddp_writes_every_method(tmp_path):
    out = tmp_path / 'ddp.json'
    result = run_tool(
        'tools/analysis/benchmark_ddp.py',
        osp.join(REPO, 'configs/demo/deeplabv3_r18-d8_infopro-k2_digits-'
                 '64x64.py'), '--iters', '1', '--warmup', '0',
        '--batch-size', '2', '--input-size', '32', '32', '--out', str(out))
    assert '| infopro_ddp |' in result.stdout
    data = json.loads(out.read_text())
    assert data['nproc'] == 2
    assert [r['method'] for r in data['results']] == [
        'e2e_mmddp', 'infopro_ddp', 'infopro_ddp_no_overlap', 'e2e_no_comm',
        'infopro_no_comm'
    ]
    assert data['results'][0]['ratio_to_e2e'] == 1.0
    assert data['num_modules'] == 2 and len(data['cuts']) == 1
    assert set(data['distributed_over_no_comm']) == {'e2e', 'infopro'}
