"""Draws docs/infopro_concept.png: the split and the local losses.

Run: .venv/bin/python docs/figures/infopro_concept.py
"""
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
               'infopro_concept.png')


def box(ax, x, y, w, h, text, color, fontsize=9):
    ax.add_patch(
        FancyBboxPatch((x, y), w, h,
                       boxstyle='round,pad=0.02,rounding_size=0.08',
                       fc=color, ec='black', lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha='center', va='center',
            fontsize=fontsize)


def arrow(ax, start, end):
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle='-|>', mutation_scale=12,
                        color='black', lw=1.2))


def main() -> None:
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.6)
    ax.axis('off')
    box(ax, 0.1, 1.9, 0.9, 0.7, 'image x', '#eeeeee')
    modules = [(1.4, 'local module 1\n(stem, layer1, ...)'),
               (4.1, 'local module 2\n(... layer3.k)'),
               (6.8, 'last module\n(rest + neck + head)')]
    for x, text in modules:
        box(ax, x, 1.9, 2.0, 0.7, text, '#cfe2f3')
    arrow(ax, (1.0, 2.25), (1.4, 2.25))
    for x0, x1 in ((3.4, 4.1), (6.1, 6.8)):
        arrow(ax, (x0, 2.25), (x1, 2.25))
        ax.text((x0 + x1) / 2, 2.45, 'detach', ha='center', fontsize=7,
                color='tab:red')
    for x in (1.4, 4.1):
        box(ax, x - 0.2, 0.35, 1.15, 0.8, 'decoder w\nlambda1 x BCE(x)',
            '#fce5cd', 7.5)
        box(ax, x + 1.05, 0.35, 1.15, 0.8,
            'head psi / phi\nlambda2 x\nCE / SupCon', '#d9ead3', 7.5)
        arrow(ax, (x + 1.0, 1.9), (x + 0.375, 1.15))
        arrow(ax, (x + 1.0, 1.9), (x + 1.625, 1.15))
    box(ax, 7.3, 0.35, 1.0, 0.8, 'task loss\n(weight 1)', '#d9ead3', 7.5)
    arrow(ax, (7.8, 1.9), (7.8, 1.15))
    ax.text(5.0, 3.2,
            'each local loss is back-propagated inside its own module, '
            'then its activations are freed:\n'
            'peak memory follows the largest module, not the whole network',
            ha='center', fontsize=9)
    box(ax, 8.95, 1.9, 0.95, 0.7, 'one optimizer\nstep', '#eeeeee', 7.5)
    arrow(ax, (8.8, 2.25), (8.95, 2.25))
    fig.tight_layout()
    fig.savefig(OUT, dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
