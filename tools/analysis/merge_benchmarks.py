"""Merge reports of ``benchmark_memory.py`` into one table and plot.

Usage::

    python tools/analysis/merge_benchmarks.py A.json B.json [...] \
        [--out merged.json] [--plot merged.png]

For a model too heavy to benchmark every method in one run, run the tool
several times (each run measures its own ``e2e``) and merge the reports. The
runs must share the config, input size, batch size and device, and their
``e2e`` figures that do not depend on timing (saved-activation bytes, FLOPs)
must agree. Each method keeps the ratios of its own run (ratios to the E2E
measured in the same run); a method measured in several runs is taken from
the first.
"""
import argparse
import importlib.util
import json
import os.path as osp
from typing import List, Optional, Sequence

SAME = ('config', 'input_size', 'batch_size', 'device', 'head_width')
DETERMINISTIC = ('saved_peak_bytes', 'flops')


def _benchmark_tool():
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark_memory.py')
    spec = importlib.util.spec_from_file_location('benchmark_memory', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def merge_reports(reports: Sequence[dict]) -> dict:
    """Merge benchmark reports of the same setting.

    Args:
        reports (Sequence[dict]): Reports of ``benchmark_memory.py``.

    Returns:
        dict: The first report with the other runs' methods appended and
        ``runs`` listing the commands of every run.
    """
    if not reports:
        raise ValueError('nothing to merge')
    first = reports[0]
    merged = dict(first, results=list(first['results']), runs=[])
    e2e = next(r for r in first['results'] if r['name'] == 'e2e')
    names = {r['name'] for r in merged['results']}
    for index, report in enumerate(reports):
        for key in SAME:
            if report.get(key) != first.get(key):
                raise ValueError(f'report {index} has {key}='
                                 f'{report.get(key)!r}, the first has '
                                 f'{first.get(key)!r}')
        other = next(r for r in report['results'] if r['name'] == 'e2e')
        for key in DETERMINISTIC:
            if other[key] != e2e[key]:
                raise ValueError(f'the e2e {key} of report {index} '
                                 f'({other[key]}) differs from the first '
                                 f'({e2e[key]}): not the same setting')
        merged['runs'].append(report.get('command'))
        if index:
            for result in report['results']:
                if result['name'] not in names:
                    merged['results'].append(dict(result, run=index))
                    names.add(result['name'])
    return merged


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(
        description='Merge reports of benchmark_memory.py')
    parser.add_argument('reports', nargs='+', help='JSON reports')
    parser.add_argument('--out', help='write the merged report here')
    parser.add_argument('--plot', help='draw the scatter plot here (png)')
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        with open(path) as f:
            reports.append(json.load(f))
    merged = merge_reports(reports)
    tool = _benchmark_tool()
    print(tool.format_table(merged))
    print()
    print(tool.format_modules(merged))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(merged, f, indent=2)
    if args.plot:
        tool.plot(merged, args.plot)
    return merged


if __name__ == '__main__':
    main()
