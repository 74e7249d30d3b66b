"""A small FactorCL run on the synthetic data, shared by nbs/06_train.ipynb (its loss-term and critic-validity plots)
and tests/test_train.py (the default schedule keeps the NCE-CLUB bounds valid).

    from tests.small_runs import small_factorcl_run     # from the repository root (or with it on PYTHONPATH)
    history = small_factorcl_run('FactorCL-SSL', seed=1, critic_steps=1)
    # the quick synthetic setting of benchmarks/critic_validity.py (6000 samples, 80% for training, wider networks):
    history = small_factorcl_run('FactorCL-SUP', n=6000, test_size=0.2, batch_size=256,
                                 encoder=dict(out_dim=64, hidden_dim=256, n_hidden=2),
                                 model=dict(proj_dim=64, head_hidden=64, critic_hidden=256))
"""
import torch
from factorcl_nb.data import make_synthetic
from factorcl_nb.augment import latent_augment
from factorcl_nb.encoders import mlp_encoder
from factorcl_nb.models import make_model
from factorcl_nb.train import fit

SMALL_ENCODER = dict(out_dim=32, hidden_dim=64, n_hidden=1)
SMALL_MODEL = dict(proj_dim=16, head_hidden=32, critic='separable', critic_hidden=64, critic_layers=1)


def small_factorcl_run(method:str='FactorCL-SUP', # 'FactorCL-SUP' or 'FactorCL-SSL' (any method of make_model)
                       seed:int=0, # seeds the data, the initial weights and the run
                       n:int=1500, # synthetic samples
                       test_size:float|None=None, # train on the train part of `split(test_size, seed)` (None: all n)
                       epochs:int=8, # passes over the data (1500 samples, batch 128: 12 steps each)
                       batch_size:int=128, # samples per step
                       lr:float=1e-3, # main learning rate
                       encoder:dict|None=None, # mlp_encoder sizes (default SMALL_ENCODER)
                       model:dict|None=None, # make_model sizes and critic (default SMALL_MODEL)
                       **schedule, # further TrainConfig fields, e.g. the schedule: critic_steps=1, critic_first=False
                      ):
    "History of a FactorCL run on `n` standardised synthetic samples with latent augmentations, one row per step."
    d = make_synthetic(n, seed=seed)
    if test_size is not None: d = d.split(test_size, seed=seed)[0]
    mu1, sd1, mu2, sd2 = d.x1.mean(0), d.x1.std(0) + 1e-6, d.x2.mean(0), d.x2.std(0) + 1e-6
    x1, x2 = (d.x1 - mu1) / sd1, (d.x2 - mu2) / sd2   # as the synthetic experiments and benchmarks/critic_validity.py
    aug = lambda a, b: (latent_augment(a, d.mixing1 / sd1, 10, 0.5), latent_augment(b, d.mixing2 / sd2, 10, 0.5))
    enc = {**SMALL_ENCODER, **(encoder or {})}
    torch.manual_seed(seed)
    net = make_model(method, [mlp_encoder(x.shape[1], **enc) for x in (x1, x2)], enc['out_dim'], n_classes=2,
                     unique_augment=aug, **{**SMALL_MODEL, **(model or {})})
    data = (x1, x2, d.y) if net.needs_labels else (x1, x2)
    return fit(net, data, **{**dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, log_every=1, progress=False,
                                    device='cpu'), **schedule})
