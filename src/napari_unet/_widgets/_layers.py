"""Layers: pickers that follow the layer list, and the layers this plugin owns.

A layer this plugin made carries ``metadata["napari_unet"] = {"role": ..., "source": ...}``;
only such layers are ever overwritten, never the user's.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Layer

# metadata key marking layers this plugin made: {"role": ..., "source": image layer name}
OWNER_KEY = "napari_unet"


def layers_of(viewer, kind: type[Layer]) -> list[Layer]:
    return [layer for layer in viewer.layers if isinstance(layer, kind)]


class LayerPicker(ComboBox):
    """A combo box of the viewer's layers of one kind, kept in sync with the layer list."""

    def __init__(self, viewer, kind: type[Layer], label: str, tooltip: str, optional: bool = False,
                 none_text: str = "(none)"):
        self._viewer, self._kind, self._optional, self._none_text = viewer, kind, optional, none_text
        super().__init__(label=label, choices=self._choices, tooltip=tooltip)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self.reset_choices)
        # the choice labels are layer names
        events.inserted.connect(lambda event: event.value.events.name.connect(self.reset_choices))

    def _choices(self, _widget=None):
        layers = [(layer.name, layer) for layer in layers_of(self._viewer, self._kind)]
        return ([(self._none_text, None)] if self._optional else []) + layers


def find_owned(viewer, role: str, source: str) -> Layer | None:
    """The layer this plugin made for ``role`` of the image ``source``, if still open."""
    for layer in viewer.layers:
        if layer.metadata.get(OWNER_KEY) == {"role": role, "source": source}:
            return layer
    return None


def show_owned(viewer, role: str, source: str, name: str, data, kind: str = "labels", **options) -> Layer:
    """Put ``data`` into the layer made earlier for (role, source), or add a new one.

    Layers the user made (or loaded) carry no such metadata and are never overwritten; a
    new layer whose name is taken gets napari's numbered name instead.
    """
    layer = find_owned(viewer, role, source)
    if layer is not None and layer.data.ndim == np.ndim(data):
        layer.data = data
        return layer
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    return add(data, name=name, metadata={OWNER_KEY: {"role": role, "source": source}}, **options)


def view_position(viewer, layer) -> tuple[int | None, tuple[float, float] | None]:
    """(plane index or None, (y, x) of the canvas centre) in ``layer``'s pixels.

    Prediction starts with the plane on screen and the tiles around the centre of the view.
    """
    try:
        world = np.asarray(viewer.dims.point, dtype=float)
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9 / older
        world[-2:] = np.asarray(camera.center, dtype=float)[-2:]
        data = np.asarray(layer.world_to_data(world))
    except (AttributeError, IndexError, ValueError):
        return None, None
    plane = int(np.round(data[0])) if layer.ndim == 3 else None
    return plane, (float(data[-2]), float(data[-1]))


def image_data(layer):
    """The array behind an image layer (the full-resolution level of a multiscale one)."""
    return layer.data[0] if layer.multiscale else layer.data


def layer_z_step(layer, axes: str) -> float | None:
    """A Z stack layer's z spacing in pixels of its planes (its scale: z over x); else None."""
    scale = [float(value) for value in layer.scale]
    if "Z" not in axes or len(scale) < 3 or not scale[-1] > 0 or not scale[-3] > 0:
        return None
    return scale[-3] / scale[-1]


def layer_options(viewer, layer) -> dict:
    """The SegmentConfig fields a layer itself decides: its axes and z step."""
    axes = layer_axes(viewer, layer)
    return {"axes": axes, "z_step": layer_z_step(layer, axes)}


def layer_axes(viewer, layer) -> str:
    """Axis letters of an image layer for the core: colour is "YXC"; a third axis is planes,
    time ("TYX") when the viewer labels that axis t or time, else Z."""
    data = image_data(layer)
    if layer.rgb:
        return "ZYXC"[-data.ndim:] if data.ndim == 4 else "YXC"
    if data.ndim == 2:
        return "YX"
    if data.ndim == 3:
        labels = list(getattr(viewer.dims, "axis_labels", ()))
        offset = viewer.dims.ndim - layer.ndim
        label = str(labels[offset]).lower() if len(labels) > offset else ""
        return "TYX" if label in ("t", "time") else "ZYX"
    raise ValueError(f"layer {layer.name!r} has {data.ndim} dimensions: segment 2-D images, colour images or "
                     "one stack axis (split channels into layers first)")
