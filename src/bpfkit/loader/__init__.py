"""Loading a :class:`~bpfkit.spec.CollectionSpec` into the kernel: BTF, maps, programs.

``load``/``load_spec`` return a :class:`Collection` owning every map and program created.
"""

from __future__ import annotations

from ._steps import (
    DEFAULT_PIN_ROOT,
    BTFFeatures,
    Collection,
    Variable,
    load,
    load_spec,
    map_defaults,
    probe_btf_features,
    prog_target_attrs,
    ringbuf_size,
    sanitize_btf,
    section_attach_type,
    struct_ops_value,
)

__all__ = ["load", "load_spec", "Collection", "Variable", "DEFAULT_PIN_ROOT", "BTFFeatures",
           "probe_btf_features", "sanitize_btf", "prog_target_attrs", "struct_ops_value",
           "map_defaults", "ringbuf_size", "section_attach_type"]
