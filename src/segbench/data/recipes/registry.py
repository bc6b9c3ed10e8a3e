"""The recipe registry: ``config/datasets.yaml`` ``recipe.name`` -> preparation function.

Recipes register themselves with ``@RECIPES.register("name")`` in their own module, the same
style as losses and models (:class:`segbench.registry.Registry`). A recipe's parameters are one
dict checked by the recipe (``_common.check_params``), because they come from registry YAML.
"""

from __future__ import annotations

from typing import Any

from segbench.registry import Registry

RECIPES: Registry[Any] = Registry("recipe")
