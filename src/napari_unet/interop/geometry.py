"""What a packaged network takes and gives: valid input sizes, context, channel names."""

from __future__ import annotations

from dataclasses import dataclass

from ..inference.geometry import axis_geometry


@dataclass(frozen=True)
class PackageGeometry:
    """Input sizes the packaged network accepts along y and x, and the context it needs.

    Attributes
    ----------
    minimum, step : int
        Valid input edges are ``minimum + k * step`` pixels (k = 0, 1, ...); the output
        has the input's size.
    halo : int
        Pixels of context each output pixel needs on each side (the network's
        :func:`~napari_unet.inference.geometry.axis_geometry` halo). The packaged network
        mirrors this much at the input's borders, as napari-unet does; a tool that tiles
        an image discards ``halo`` pixels of each tile border.
    """

    minimum: int
    step: int
    halo: int

    def input_for_output(self, output: int) -> int:
        """The smallest valid edge of at least ``output`` pixels."""
        return self.minimum + -(-max(0, output - self.minimum) // self.step) * self.step


def package_geometry(network) -> PackageGeometry:
    """The :class:`PackageGeometry` of ``network`` (from its own ``output_size``)."""
    step = network.alignment()
    halo = axis_geometry(network, step).halo
    # the smallest edge whose mirrored extension the network takes, and that keeps pixels after tiling
    minimum = next(size for size in range(2 * halo + 1, 2 * halo + 64 * step)
                   if network.output_size(size + 2 * halo) is not None)
    return PackageGeometry(minimum=minimum, step=step, halo=halo)


def input_channel_names(model) -> list[str]:
    """One name per input channel: the model's own, else grey or red/green/blue."""
    count = model.config.in_channels
    if model.channel_names:
        named = list(model.channel_names)
        return named + [f"unused {index} (zeros)" for index in range(len(named), count)]
    named = ["grey"] if count == 1 else ["red", "green", "blue"] if count == 3 else []
    return named + [f"channel {index}" for index in range(len(named), count)]
