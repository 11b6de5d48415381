"""Print the environment for a bug report: Python, torch, CUDA, compilers,
mmengine, mmcv (and whether its ops are compiled), mmseg, mmdet,
mmpretrain, infopro_mm.

Usage: python tools/misc/collect_env.py
"""
from infopro_mm.utils import collect_env


def main() -> None:
    for name, value in collect_env().items():
        print(f'{name}: {value}')


if __name__ == '__main__':
    main()
