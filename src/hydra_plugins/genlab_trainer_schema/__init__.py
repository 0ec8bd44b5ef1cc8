"""Hydra plugin of genlab: makes the ``genlab_trainer_schema`` config node (every argument of
the installed Lightning ``Trainer``, see :mod:`genlab.checks.trainer_schema`) available to every
composition of genlab's configs, ``@hydra.main`` and ``hydra.compose`` alike.

Hydra imports the modules of the ``hydra_plugins`` namespace package when it starts and calls
each SearchPathPlugin before it builds the config search path; this one adds no search path, it
registers the node in the ConfigStore (``structured://``, always searched). Importing this
module is cheap: the Trainer signature is parsed on the first call only.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class GenlabTrainerSchemaPlugin(SearchPathPlugin):
    """Registers ``genlab_trainer_schema`` in the ConfigStore before each config composition."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        try:
            from genlab.checks.trainer_schema import register_trainer_schema
        except ImportError:  # another genlab (or none) on sys.path: leave Hydra as it is
            return
        register_trainer_schema()
