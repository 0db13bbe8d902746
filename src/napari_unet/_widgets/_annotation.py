"""Annotation and training-region layers: made empty, made from a segmentation to correct,
or suggested where the model is least sure.

Every layer made here is new: the segmentation, the image and the user's own layers are
never changed. Metadata ties an annotation or regions layer to the image it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from napari.layers import Shapes

from ._layers import image_data

# metadata: the name of the image an annotation / regions layer belongs to
ANNOTATION_KEY = "napari_unet_annotation_for"
REGIONS_KEY = "napari_unet_regions_for"


def layers_made_here(viewer, kind, key: str) -> list:
    return [layer for layer in viewer.layers if isinstance(layer, kind) and key in layer.metadata]


def rectangles(shapes_layer: Shapes, plane_shape, plane: int | None) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, y1, x0, x1) of the shapes drawn on ``plane``, clipped to the image."""
    height, width = plane_shape
    boxes = []
    for vertices in shapes_layer.data:
        vertices = np.asarray(vertices)
        if plane is not None and vertices.shape[1] == 3 and int(np.round(vertices[0, 0])) != plane:
            continue
        ys, xs = vertices[:, -2], vertices[:, -1]
        y0, y1 = int(np.clip(np.floor(ys.min()), 0, height)), int(np.clip(np.ceil(ys.max()), 0, height))
        x0, x1 = int(np.clip(np.floor(xs.min()), 0, width)), int(np.clip(np.ceil(xs.max()), 0, width))
        if y1 > y0 and x1 > x0:
            boxes.append((y0, y1, x0, x1))
    return boxes


def pick_cell_label(layer, event) -> None:
    """Mouse-press hook of annotation layers: paint the cell under the cursor, or a new one."""
    if layer.mode != "paint":
        return
    index = tuple(int(round(value)) for value in layer.world_to_data(event.position))
    inside = all(0 <= i < size for i, size in zip(index, layer.data.shape))
    under = int(layer.data[index]) if inside else 0
    layer.selected_label = under if under > 0 else int(layer.data.max()) + 1


def plane_shape_of(image_layer) -> tuple[int, ...]:
    data = image_data(image_layer)
    return data.shape[:-1] if image_layer.rgb else data.shape


def new_annotation_layer(viewer, image_layer, data=None, name: str | None = None):
    """A Labels layer over the image in paint mode (empty, or holding ``data``)."""
    shape = plane_shape_of(image_layer)
    data = np.zeros(shape, dtype=np.uint16) if data is None else data
    labels = viewer.add_labels(data, name=name or f"{image_layer.name} annotation", scale=image_layer.scale,
                               translate=image_layer.translate, metadata={ANNOTATION_KEY: image_layer.name})
    labels.brush_size = max(3, min(shape[-2:]) // 80)
    labels.mode = "paint"
    labels.selected_label = int(np.max(data)) + 1 if np.any(data) else 1
    # a stroke that starts inside a cell extends it; one that starts elsewhere is a new cell
    labels.mouse_drag_callbacks.insert(0, pick_cell_label)
    return labels


def new_regions_layer(viewer, image_layer, boxes=(), name: str | None = None, text=None):
    """A Shapes layer of rectangles (the training regions of ``image_layer``)."""
    rectangles_ = [np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]], float) for y0, y1, x0, x1 in boxes]
    options = {} if text is None else {"text": text, "features": {"rank": list(range(1, len(boxes) + 1))}}
    shapes = viewer.add_shapes(rectangles_ or None, shape_type="rectangle", name=name or
                               f"{image_layer.name} training regions", ndim=2 if image_layer.rgb else image_layer.ndim,
                               scale=image_layer.scale, translate=image_layer.translate, edge_color="yellow",
                               face_color="transparent", edge_width=2, metadata={REGIONS_KEY: image_layer.name},
                               **options)
    return shapes


def annotation_from_segmentation(viewer, image_layer, segmentation, regions_layer=None):
    """A new annotation layer holding the segmentation's cells to correct.

    With a regions layer, only what lies inside its rectangles is copied (cells cut by a
    rectangle keep their inside part: training ignores their cut rims), and the regions
    stay the training regions; without one, the whole segmentation becomes the annotation.
    Returns the new layer.
    """
    data = np.asarray(segmentation.data)
    shape = plane_shape_of(image_layer)
    if tuple(data.shape) != tuple(shape):
        raise ValueError(f"segmentation {segmentation.name!r} has shape {tuple(data.shape)}, image "
                         f"{image_layer.name!r} is {tuple(shape)}: segment that image first")
    if regions_layer is None:
        copied = data.astype(np.uint16 if data.max() < 2**16 else np.uint32, copy=True)
    else:
        copied = np.zeros(shape, np.uint16 if data.max() < 2**16 else np.uint32)
        planes = range(shape[0]) if len(shape) == 3 else [None]
        for plane in planes:
            source = data if plane is None else data[plane]
            target = copied if plane is None else copied[plane]
            boxes = rectangles(regions_layer, source.shape, plane)
            for y0, y1, x0, x1 in boxes:
                target[y0:y1, x0:x1] = source[y0:y1, x0:x1]
        if not copied.any():
            raise ValueError(f"training regions {regions_layer.name!r} hold no cell of {segmentation.name!r}: draw "
                             "rectangles over cells you want to correct")
    return new_annotation_layer(viewer, image_layer, copied, name=f"{image_layer.name} corrections")


def find_segmentation(viewer, image_layer):
    """The labels layer the Segment widget made for ``image_layer`` (None if there is none)."""
    from ._layers import find_owned

    return find_owned(viewer, "labels", image_layer.name)


@dataclass(frozen=True)
class Pair:
    """One 2-D training sample taken from the layers."""

    image: np.ndarray  # (Y, X) or (Y, X, C)
    labels: np.ndarray  # (Y, X)
    regions: list | None  # (y0, y1, x0, x1) rectangles, None = everything annotated


def _layer_triples(viewer, image, annotation, regions, all_pairs: bool) -> list[tuple]:
    """(image, annotation, regions) layers to train on: the chosen ones, and with ``all_pairs``
    every other annotation layer made here with its image and regions."""
    from napari.layers import Image, Labels

    if image is None:
        raise ValueError("no image layer: open an image first")
    if annotation is None:
        raise ValueError("no annotation layer: click 'New annotation layer' and paint a few cells")
    triples = [(image, annotation, regions)]
    if all_pairs:
        by_name = {layer.name: layer for layer in viewer.layers}
        for layer in layers_made_here(viewer, Labels, ANNOTATION_KEY):
            partner = by_name.get(layer.metadata[ANNOTATION_KEY])
            if layer is not annotation and isinstance(partner, Image):
                found = [s for s in layers_made_here(viewer, Shapes, REGIONS_KEY) if s.metadata[REGIONS_KEY] == partner.name]
                triples.append((partner, layer, found[0] if found else None))
    return triples


def training_pairs(viewer, image, annotation, regions, all_pairs: bool) -> list[Pair]:
    """The 2-D training samples of the layers; ValueError explains unusable inputs before any run."""
    from ..training.annotations import check_annotation

    pairs = []
    for image_layer, painted_layer, regions_layer in _layer_triples(viewer, image, annotation, regions, all_pairs):
        data, painted = image_data(image_layer), painted_layer.data
        plane_shape = plane_shape_of(image_layer)
        if tuple(painted.shape) != tuple(plane_shape):
            raise ValueError(f"annotation {painted_layer.name!r} has shape {tuple(painted.shape)} but image "
                             f"{image_layer.name!r} is {tuple(plane_shape)}: make one with 'New annotation layer'")
        stacked = len(plane_shape) == 3
        for plane in range(plane_shape[0]) if stacked else [None]:
            labels = np.asarray(painted[plane] if stacked else painted)
            if not labels.any():
                continue
            boxes = None if regions_layer is None else rectangles(regions_layer, labels.shape, plane)
            where = f" (plane {plane})" if stacked else ""
            if boxes is not None and not boxes:
                raise ValueError(f"training regions {regions_layer.name!r} hold no rectangle{where} where "
                                 f"{painted_layer.name!r} has cells: draw one around the annotated cells")
            plane_image = np.asarray(data[plane] if stacked else data)
            check_annotation(plane_image, labels, boxes, image_name=f"image {image_layer.name!r}{where}",
                             labels_name=f"annotation {painted_layer.name!r}{where}")
            pairs.append(Pair(plane_image, labels, boxes))
    if not pairs:
        raise ValueError("the annotation is empty: paint a few cells (each stroke that starts outside a cell "
                         "paints a new one)")
    return pairs
