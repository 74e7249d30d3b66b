import os, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('MPLBACKEND', 'Agg')
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

@pytest.fixture
def root(): return ROOT
