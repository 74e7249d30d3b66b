# %% [markdown]
# # Table 3: continued pretraining of CLIP on IRFL
# > FactorCL-SUP, FactorCL-SSL, FactorCL-IndAug and SimCLR on top of CLIP, probed on the kind of figurative language of held-out phrases

# %% [markdown]
# The paper's IRFL experiment (Liang et al. 2023, Table 3) starts from CLIP ViT-B/32 and continues its
# pretraining on image-phrase pairs of the IRFL understanding tasks with each objective; a linear probe on the
# learned representation then predicts whether a held-out phrase is an idiom, a simile or a metaphor.
#
# * Data: `load_irfl` (notebook `08d_irfl`): each phrase with its **answer** image (the authors' notebook used a
#   distractor), a seeded split in which no test phrase is seen in training.
# * Backbone: CLIP's image and text towers with their projections (`factorcl_nb.clip`), fine-tuned end to end.
# * Augmentations: the authors' image augmentation (crop 20-100% of the area, flip, colour jitter) is the
#   *independent* one (FactorCL-IndAug, SimCLR has none); FactorCL-SSL uses the *unique* one, whose crops keep
#   at least 90% of the image so that what the phrase refers to stays in view. Text: drop one word.
# * Reference: a probe on frozen CLIP features (no continued pretraining).
#
# The files are not shipped: put the three `*_understanding_task.csv` files of the IRFL repository and the
# images they name in `<data_dir>/irfl` (images in `<data_dir>/irfl/images`, named by the last part of their
# URL), and a copy of `openai/clip-vit-base-patch32` in `<data_dir>/clip-vit-base-patch32` (or where the `clip`
# parameter points). Without them the run is
# recorded as skipped and says what is missing. `scale='tiny'` runs a randomly initialised tiny CLIP (tests).

# %% tags=["parameters"]
scale = 'quick'            # 'tiny' (tests: tiny random CLIP), 'quick' (CPU, a short run) or 'paper'
out_dir = '../../figures'  # where irfl.{png,csv,json} are written
device = 'auto'            # 'auto', 'cpu' or 'cuda'
seed = 0                   # first seed (split, initialisation of the heads, augmentations)
data_dir = None            # folder with irfl/ (None: $FACTORCL_DATA_DIR if set)
clip = 'openai/clip-vit-base-patch32'  # CLIP weights: a local folder or a name in the Hugging Face cache

# %%
import os, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import matplotlib.pyplot as plt
from tqdm.auto import tqdm
from factorcl_nb.core import resolve_device, save_results
from factorcl_nb.data.irfl import IRFL_FILES, IRFL_TASKS, load_irfl
from factorcl_nb.evaluate import linear_probe
from factorcl_nb.repro import save_skipped, skip_marker
from factorcl_nb.runner import run_method

settings = dict(
    tiny=dict(seeds=1, image_size=32, epochs=1, batch=8, lr=1e-3, proj_dim=8, head_hidden=16, critic_hidden=16, critic_layers=1,
              critic='separable'),
    quick=dict(seeds=1, image_size=224, epochs=2, batch=16, lr=1e-5, proj_dim=64, head_hidden=128, critic_hidden=128, critic_layers=1,
               critic='separable'),
    paper=dict(seeds=3, image_size=224, epochs=10, batch=16, lr=1e-6, proj_dim=128, head_hidden=512, critic_hidden=512, critic_layers=2,
               critic='concat'))
if scale not in settings: raise ValueError(f"scale must be one of {list(settings)}, got {scale!r}")
if isinstance(seed, bool) or not isinstance(seed, int): raise ValueError(f"seed must be an int, got {seed!r}")
S = settings[scale]; dev = resolve_device(device); t0 = time.time()
METHODS = ['FactorCL-SUP', 'FactorCL-SSL', 'FactorCL-IndAug', 'SimCLR']
AUTHORS_NOTEBOOK = {'FactorCL-SUP': 1.0, 'FactorCL-SSL': 0.932, 'SimCLR': 0.892}   # 74 test images, row split

# %% [markdown]
# ## Find the data and the weights

# %%
root = data_dir if data_dir is not None else os.environ.get('FACTORCL_DATA_DIR')
folder = None if root is None else Path(root).expanduser()
if folder is not None and not folder.is_dir(): raise FileNotFoundError(f"data_dir must be an existing folder, got {str(folder)!r}")
irfl_dir = None
for cand in ([] if folder is None else [folder/'irfl', folder]):
    if all((cand/f).is_file() for f in IRFL_FILES.values()): irfl_dir = cand; break
problem = None
if irfl_dir is None:
    where = f'`{folder}/irfl`' if folder else 'a data folder (pass `--data-dir DIR` or set `FACTORCL_DATA_DIR`)'
    problem = (f"The IRFL task files were not found: put {', '.join('`' + f + '`' for f in IRFL_FILES.values())} "
               f"(the IRFL repository's `assets/tasks`, https://github.com/irfl-dataset/IRFL) in {where}, and the images "
               f"they name in its `images/` folder.")
else:
    try:
        from factorcl_nb.clip import WordTokenizer, tokenize, tiny_clip, load_clip, clip_encoders, irfl_augment
        data = load_irfl(irfl_dir, image_size=S['image_size'], seed=seed)
        if scale == 'tiny':
            tokenizer = WordTokenizer(data['train']['captions'] + data['test']['captions'])
            base = tiny_clip(tokenizer.vocab_size, image_size=S['image_size'], embed_dim=16, seed=seed)
        else:
            local = folder/Path(clip).name if folder is not None else None   # e.g. <data_dir>/clip-vit-base-patch32
            base, tokenizer = load_clip(str(local) if local is not None and local.is_dir() else clip)
    except (ImportError, FileNotFoundError) as e:
        problem = str(e)
print(problem or f"IRFL from {irfl_dir}: {len(data['train']['y'])} train and {len(data['test']['y'])} test pairs")

# %% [markdown]
# ## Train and probe
#
# Every method fine-tunes fresh copies of the same CLIP towers (`clip_encoders`), with the settings of the
# chosen scale; the probe is a logistic regression on the concatenated representation of the training pairs,
# scored on the pairs of held-out phrases. The frozen reference concatenates CLIP's image and text embeddings.

# %%
rows = []
if problem is None:
    tr, te = data['train'], data['test']
    train = (tr['images'], tokenize(tokenizer, tr['captions']), tr['y'])
    test = (te['images'], tokenize(tokenizer, te['captions']), te['y'])
    with torch.no_grad():
        img, txt = clip_encoders(base)
        feats = lambda part: torch.cat([img(part[0]), txt(part[1])], 1)
        frozen = linear_probe(feats(train), train[2], feats(test), test[2])['accuracy']
    rows.append(dict(method='CLIP (frozen)', seed=seed, accuracy=frozen, seconds=0.0))
    model = dict(proj_dim=S['proj_dim'], head_hidden=S['head_hidden'], critic=S['critic'],
                 critic_hidden=S['critic_hidden'], critic_layers=S['critic_layers'])
    for k in tqdm(range(S['seeds']), desc='seeds'):
        for method in tqdm(METHODS, desc='methods', leave=False):
            r = run_method(method, train, test, len(IRFL_TASKS), encoders=lambda: clip_encoders(base), model=model,
                           train_config=dict(epochs=S['epochs'], batch_size=S['batch'], lr=S['lr'], device=str(dev), seed=seed + k,
                                             drop_last=True),   # a last batch of one pair has no negatives
                           unique_augment=irfl_augment(True, seed=seed + k), independent_augment=irfl_augment(False, seed=seed + k))
            rows.append(dict(method=method, seed=seed + k, accuracy=r['accuracy']['all'], seconds=r['seconds']))
table = pd.DataFrame(rows, columns=['method', 'seed', 'accuracy', 'seconds'])
summary = table.groupby('method', sort=False).accuracy.agg(['mean', 'std', 'count'])
summary

# %%
if problem is None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    colours = ['tab:gray' if m == 'CLIP (frozen)' else 'tab:red' if m.startswith('FactorCL') else 'tab:blue' for m in summary.index]
    ax.barh(summary.index, summary['mean'], xerr=summary['std'].fillna(0), color=colours, capsize=3)
    for m, a in AUTHORS_NOTEBOOK.items():
        if m in summary.index: ax.plot(a, list(summary.index).index(m), 'k|', ms=14, mew=2)
    ax.axvline(1 / 3, ls='--', c='k', lw=1); ax.invert_yaxis(); ax.set_xlim(0, 1.02)
    ax.set(xlabel='held-out probe accuracy (idiom / simile / metaphor)',
           title=f'IRFL, CLIP continued pretraining ({scale}; | = authors\' notebook, dashed = chance)')
    fig.tight_layout(); plt.show()

# %%
params = dict(scale=scale, seed=seed, device=str(dev), data_dir=str(folder), clip=clip, **S)
if problem is None:
    lines = ['## Table 3: CLIP continued pretraining on IRFL (`irfl`)', '',
             f"Scale `{scale}`: {S['seeds']} seed(s), {S['epochs']} epochs, batch {S['batch']}, lr {S['lr']}, {S['critic']} critics; "
             f"{len(tr['y'])} train / {len(te['y'])} test image-phrase pairs, phrase-disjoint split (seed {seed})"
             + ('; **tiny random CLIP: a smoke test, not a result**' if scale == 'tiny' else '') + '.', '',
             "| method | accuracy (mean ± std) | authors' notebook (74 test images, row split, distractor images) |", '|---|---|---|']
    for m, r in summary.iterrows():
        sd = '' if r['count'] < 2 else f" ± {r['std']:.3f}"
        lines.append(f"| {m} | {r['mean']:.3f}{sd} | {AUTHORS_NOTEBOOK.get(m, '')} |")
    a = summary['mean']
    lines += ['', f"FactorCL-SSL (unique augmentation) vs FactorCL-IndAug: {a['FactorCL-SSL']:.3f} vs {a['FactorCL-IndAug']:.3f}; "
              f"FactorCL-SUP vs SimCLR: {a['FactorCL-SUP']:.3f} vs {a['SimCLR']:.3f}.", '', '![irfl](irfl.png)']
    report = '\n'.join(lines)
    save_results('irfl', out_dir, table=table, figure=fig, params=params, report=report, wall_time=time.time() - t0)
    skip_marker(out_dir, 'irfl').unlink(missing_ok=True)
else:
    report = problem + ' Then run `factorcl-repro irfl --data-dir DIR`.'
    r = save_skipped('irfl', out_dir, report, params=params, wall_time=time.time() - t0)
    print('earlier results kept' if r['kept'] else 'no earlier results: recorded the skip')
print(report)
