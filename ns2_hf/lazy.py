"""Lazy package attributes (PEP 562): a package names what it exports and where it lives; a name's module is
imported on first use. `import ns2_hf` then costs milliseconds, and `ns2-tts` imports torch, transformers and
diffusers only once the arguments are checked — never the aligner, the metrics or the training code."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    """`__getattr__` and `__dir__` for `package` (its `__name__`) exporting `exports`: name → module relative
    to the package (e.g. `{"NS2Model": ".ns2"}`). An imported attribute is stored on the package, so the
    next access is a plain lookup."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
