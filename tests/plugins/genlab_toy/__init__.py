"""genlab_toy: a model family added to genlab from outside its source (a test fixture).

The whole plugin: this package (``ToyDiffusion`` + ``ToyDiffusionConfig``), its Hydra config
``conf/model/toy_diffusion.yaml``, the entry point ``toy_diffusion = genlab_toy.model:ToyDiffusion``
in the group ``genlab.models`` (``../genlab_toy-0.1.0.dist-info/entry_points.txt``, what
``pip install`` writes from a ``pyproject.toml``) and the Hydra SearchPathPlugin in
``../hydra_plugins/genlab_toy_searchpath/``.
"""

from genlab_toy.config import ToyDiffusionConfig
from genlab_toy.model import ToyDiffusion

__all__ = ["ToyDiffusion", "ToyDiffusionConfig"]
