"""The networks as one self-contained Python file, for tools that do not have napari-unet.

A bioimage.io ``pytorch_state_dict`` package carries the source of its architecture.
:func:`architecture_source` assembles that file from this package's own modules
(``blocks.py``, ``base.py``'s network class, the module of every registered architecture) with their
imports removed, a plain copy of :class:`~napari_unet.config.ModelConfig`'s fields and
:class:`ProbabilityNetwork` on top, so the file always builds exactly the network (and the
state-dict keys) this version of napari-unet trains: nothing is written twice by hand.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import centre_crop

# the function a bioimage.io consumer calls with the model's config as keyword arguments
ARCHITECTURE_CALLABLE = "napari_unet_network"

_HEADER = '''"""{arch} network of napari-unet {version}, self-contained (needs only torch).

Generated from napari-unet's own source by napari_unet.models.standalone: build it with
``{callable}(**kwargs)`` (the kwargs are in the package's rdf.yaml); it returns class
probabilities (softmax over {classes}) of the input's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
'''

_FOOTER = '''

NETWORKS = {{{networks}}}


def {callable}(context: int = 0, **config) -> ProbabilityNetwork:
    """The network described by ``config`` (fields of ModelConfig), returning probabilities.

    ``context``: pixels mirrored at each border of the input (see ProbabilityNetwork).
    """
    config = ModelConfig(**config)
    return ProbabilityNetwork(NETWORKS[config.arch](config), context)
'''


class ProbabilityNetwork(nn.Module):
    """A segmentation network returning class probabilities of the input's size.

    The input is first extended by ``context`` mirrored pixels on each side, as napari-unet
    extends an image at its borders, and the output is cropped to the input's size: an
    unpadded network then consumes exactly that context, and the output covers the whole
    input. The softmax is part of the module, so tools without a softmax post-processing
    still get probabilities in [0, 1]. Exported packages carry this module; its
    state-dict keys are the network's, prefixed with ``network.``.
    """

    def __init__(self, network: nn.Module, context: int = 0):
        super().__init__()
        self.network, self.context = network, int(context)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.context:
            x = F.pad(x, [self.context] * 4, mode="reflect")
        return torch.softmax(centre_crop(self.network(x), height, width), dim=1)


def _top_level_source(module, keep=None) -> str:
    """Source of ``module``'s top-level statements except imports and its docstring.

    ``keep``: names of the classes / functions to take (default: every statement).
    """
    source = inspect.getsource(module)
    lines = source.splitlines()
    tree = ast.parse(source)
    parts = []
    for index, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if keep is not None and getattr(node, "name", None) not in keep:
            continue
        first = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
        spacing = "\n\n" if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and parts else ""
        parts.append(spacing + "\n".join(lines[first - 1:node.end_lineno]))
    return "\n".join(parts)


def _config_source() -> str:
    """``ModelConfig`` as a plain frozen dataclass: the same fields and defaults, no checks."""
    from ..config import ModelConfig

    fields = "\n".join(f"    {field.name}: {field.type} = {field.default!r}"
                       for field in dataclasses.fields(ModelConfig))
    return f'@dataclass(frozen=True)\nclass ModelConfig:\n    """Architecture of a network."""\n\n{fields}'


def architecture_source(arch: str, classes: tuple[str, ...]) -> str:
    """The Python source of a file that builds napari-unet's networks with torch alone.

    Parameters
    ----------
    arch : str
        Named in the file's docstring (the file builds every registered architecture).
    classes : tuple of str
        Output classes, named in the docstring.

    Returns
    -------
    str
        Defines ``ModelConfig``, the blocks, every registered network class,
        :class:`ProbabilityNetwork` and ``napari_unet_network(**config)``.
    """
    from .. import __version__
    from . import base, blocks
    from .registry import ARCHITECTURES

    networks = [entry.network for entry in ARCHITECTURES.values()]
    sections = [
        _HEADER.format(arch=arch, version=__version__, callable=ARCHITECTURE_CALLABLE, classes=", ".join(classes)),
        _config_source(),
        _top_level_source(blocks),
        _top_level_source(base, keep={"SegmentationNetwork"}),
        *(_top_level_source(inspect.getmodule(network)) for network in dict.fromkeys(networks)),
        _top_level_source(inspect.getmodule(ProbabilityNetwork), keep={"ProbabilityNetwork"}),
    ]
    body = "\n\n\n".join(section.strip("\n") for section in sections)
    table = ", ".join(f"{name!r}: {entry.network.__name__}" for name, entry in ARCHITECTURES.items())
    return f"{body}\n{_FOOTER.format(callable=ARCHITECTURE_CALLABLE, networks=table)}"
