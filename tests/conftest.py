import os, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('MPLBACKEND', 'Agg')
# pytest runs two workers on two cores (pytest -n 2): one thread each, inherited by the papermill kernels.
# Oversubscribed OpenMP threads spin and slow small models down by an order of magnitude.
os.environ['OMP_NUM_THREADS'] = '1'
torch.set_num_threads(1)

@pytest.fixture
def root(): return ROOT
