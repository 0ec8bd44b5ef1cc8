"""Augmentation settings as plain names, parsed and checked without importing torch (the
GAN config refuses a bad ``model.augment_policy``/``model.ada_ops`` before anything heavy).

* DiffAugment (:mod:`genlab.augment.diffaugment`): a policy is a comma-separated list of
  :data:`DIFFAUGMENT_OPERATIONS`, applied in that order (``""`` is the identity).
* ADA (:mod:`genlab.augment.ada`): a comma-separated list of groups (:data:`ADA_GROUPS`) and
  single operations (:data:`ADA_OPERATIONS`).
"""

from __future__ import annotations

from genlab.checks.errors import ConfigError

# the operations of genlab.augment.diffaugment.OPERATIONS, in that order (pinned by a test)
DIFFAUGMENT_OPERATIONS = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"
ADA_GROUPS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
ADA_OPERATIONS = tuple(op for ops in ADA_GROUPS.values() for op in ops)
DEFAULT_OPS = "blit,geom,color"  # the paper's 'bgc'


def parse_policy(policy: str, key: str = "model.augment.policy") -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; unknown names raise a
    ConfigError naming ``key`` and :data:`DIFFAUGMENT_OPERATIONS`."""
    names_allowed = list(DIFFAUGMENT_OPERATIONS)
    if not isinstance(policy, str):
        raise ConfigError(key, policy, f"a comma-separated string of {names_allowed}")
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    for name in names:
        if name not in DIFFAUGMENT_OPERATIONS:
            raise ConfigError(
                key, policy, f"a comma-separated list of {names_allowed} (or '' for none)"
            )
    return names


def parse_ops(spec: str, key: str = "model.augment.ops") -> frozenset[str]:
    """``"blit,geom"`` or ``"xflip,rotate90"`` -> the set of ADA operation names."""
    allowed = (
        f"a comma-separated list of groups {list(ADA_GROUPS)} or operations {list(ADA_OPERATIONS)}"
    )
    if not isinstance(spec, str):
        raise ConfigError(key, spec, allowed)
    ops: set[str] = set()
    for name in (n.strip() for n in spec.split(",") if n.strip()):
        if name in ADA_GROUPS:
            ops.update(ADA_GROUPS[name])
        elif name in ADA_OPERATIONS:
            ops.add(name)
        else:
            raise ConfigError(key, spec, allowed)
    return frozenset(ops)
