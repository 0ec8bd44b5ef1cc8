"""Makes genlab_toy's configs visible to every Hydra app, so ``genlab.train model=toy_diffusion``
composes (Hydra 1.3 "Plugin development": a module under the ``hydra_plugins`` namespace package,
which has no ``__init__.py``; Hydra imports it at start and calls the plugin before composing)."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class GenlabToySearchPathPlugin(SearchPathPlugin):
    """Appends ``pkg://genlab_toy.conf``: its ``model/toy_diffusion.yaml`` joins the ``model``
    group of genlab's configs (appended, so genlab's own options keep their names)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="genlab-toy", path="pkg://genlab_toy.conf")
