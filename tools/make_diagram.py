"""Draw figures/information_diagram.png: the information diagram of X1, X2 and Y that the README opens with.

    python tools/make_diagram.py [OUT.png]

Shared task-relevant information S = I(X1;X2;Y) is the centre; unique task-relevant information U1, U2 lies
in Y and one view only; the rest of I(X1;X2) is shared but irrelevant to the task. Regions are shaded by
sampling a grid of points and testing which discs each lies in, so the picture stays exact when the discs move.
"""
import sys
from pathlib import Path
import numpy as np
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.patches import Circle

DISCS = {'X1': (-0.55, 0.32), 'X2': (0.55, 0.32), 'Y': (0.0, -0.55)}   # centres; every radius is 1
REGIONS = [  # (inside, outside, colour, label, label position)
    (('X1', 'X2', 'Y'), (), '#d95f02', '$S$\nshared', (0.0, 0.0)),
    (('X1', 'Y'), ('X2',), '#1b9e77', '$U_1$\nunique\nto $X_1$', (-0.62, -0.36)),
    (('X2', 'Y'), ('X1',), '#7570b3', '$U_2$\nunique\nto $X_2$', (0.62, -0.36)),
    (('X1', 'X2'), ('Y',), '#bbbbbb', 'shared,\nnot about Y', (0.0, 0.78)),
]

def draw(out: Path):
    xs, ys = np.meshgrid(np.linspace(-1.8, 1.8, 900), np.linspace(-1.8, 1.6, 850))
    inside = {k: (xs - cx) ** 2 + (ys - cy) ** 2 <= 1 for k, (cx, cy) in DISCS.items()}
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    for ins, outs, colour, label, (lx, ly) in REGIONS:
        m = np.logical_and.reduce([inside[k] for k in ins] + [~inside[k] for k in outs])
        rgba = np.zeros(m.shape + (4,)); rgba[m] = matplotlib.colors.to_rgba(colour, 0.55)
        ax.imshow(rgba, extent=(-1.8, 1.8, -1.8, 1.6), origin='lower', interpolation='bilinear')
        ax.text(lx, ly, label, ha='center', va='center', fontsize=10.5, fontweight='bold' if 'shared\n' in label or label.endswith('shared') else None)
    for name, (cx, cy) in DISCS.items():
        ax.add_patch(Circle((cx, cy), 1, fill=False, lw=2, color='black'))
        tx, ty = {'X1': (-1.35, 1.2), 'X2': (1.35, 1.2), 'Y': (0.0, -1.72)}[name]
        ax.text(tx, ty, {'X1': '$X_1$', 'X2': '$X_2$', 'Y': '$Y$ (task)'}[name], ha='center', va='center', fontsize=14)
    ax.set_xlim(-1.8, 1.8); ax.set_ylim(-1.85, 1.6); ax.set_aspect('equal'); ax.axis('off')
    ax.set_title('Standard contrastive learning keeps only what $X_1$ and $X_2$ share;\n'
                 'FactorCL learns $S$, $U_1$ and $U_2$ and drops what is not about $Y$', fontsize=10.5)
    fig.tight_layout(); out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110); plt.close(fig)

if __name__ == '__main__':
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / 'figures' / 'information_diagram.png'
    draw(out); print(out)
