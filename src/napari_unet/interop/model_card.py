"""The model card (``README.md``) of an exported bioimage.io package.

It says what the package's description can express (percentile normalisation, clipping,
the context the network consumes) and, honestly, what it cannot: rescaling to the model's
object size, inverting bright backgrounds, and turning probabilities into instance labels.
"""

from __future__ import annotations

import json

from .geometry import input_channel_names

_USE = """\
## Use it

* **Fiji (deepImageJ)**: install this zip file with DeepImageJ Install Model (a local file),
  then DeepImageJ Run on an image prepared as described above; the result is the three
  probability channels.
* **ilastik** (versions that read bioimage.io spec 0.5): the Neural Network Classification
  workflow loads this zip file.
* **Python**: `bioimageio predict` / `bioimageio.core.predict` run it on any array;
  `bioimageio test` checks it.
* **napari-unet**: `napari_unet.load_model("{file}")` (or `--model {file}` on the command line)
  loads the original model file inside the package, with everything napari-unet needs to
  reproduce its own segmentation (object-size rescaling, polarity, instance labels).
"""


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows])


def _summary(model, rdf: dict, geometry) -> str:
    config = model.config
    context = (f"{geometry.halo} px on each side ({config.padding} convolutions); the network mirrors it at the "
               "input's borders, so the output has the input's size")
    diameter = f"{model.diameter:g} px" if model.diameter else "none recorded (images are used at their own scale)"
    return _table([
        ("Architecture", f"{config.arch}, depth {config.depth}, {config.base_channels} base channels, "
                         f"{config.padding} convolutions, {config.upsampling} up-sampling, "
                         f"{model.parameter_count():,} parameters"),
        ("Input", f"{config.in_channels} channel(s), 2-D; edges of {geometry.minimum} + k x {geometry.step} px"),
        ("Context (halo)", context),
        ("Output", f"probabilities of {', '.join(model.class_names)} (softmax inside the network)"),
        ("Working object diameter", diameter),
        ("Exported by", f"napari-unet {rdf['config']['napari_unet']['package_version']}, {rdf['timestamp']}"),
    ])


def _processing(model, geometry) -> str:
    norm = model.normalization
    size = (f"Rescale the image so that the objects are about **{model.diameter:g} px** across "
            "(Fiji: Image > Scale by that diameter divided by yours)." if model.diameter
            else "The model works on images at their own scale (no working object size recorded).")
    channels = ("one grey plane: one channel of a multi-channel stack (e.g. the nuclear stain), or the mean "
                "of RGB" if model.config.in_channels == 1 and not model.channel_names
                else f"the channels {', '.join(input_channel_names(model))}, in this order")
    tiles = (f"overlap tiles by {2 * geometry.halo} px, discard the {geometry.halo} px halo at each tile border "
             f"(declared in `rdf.yaml`, so bioimage.io tools do this themselves) and start tiles at multiples of "
             f"{geometry.step} px")
    labelling = model.labelling
    return f"""\
## Pre-processing

Described in `rdf.yaml`, so bioimage.io tools apply it themselves: the input is converted to
float32, the percentiles {norm.low:g} and {norm.high:g} of the whole image (all channels together)
are mapped to 0 and 1, and values are clipped to [-1, 3].

Not expressible in bioimage.io pre-processing; do it before running the package:

1. {size}
2. **Polarity**: the model expects bright objects on a dark background (fluorescence).
   Invert brightfield and stained images first (Fiji: Edit > Invert); napari-unet detects
   this by itself.
3. **Channels**: {channels}

## Post-processing

The output holds the class probabilities (the softmax is part of the exported network, so
every tool gets values in [0, 1]). For large images, {tiles}: then tiles join without
seams. Within {geometry.halo} px of the image border the result depends on how the image is
extended there: the network mirrors it as napari-unet does, but tools that add the halo
themselves use their own rule (bioimage.io's Python tools repeat the edge pixel), so
values there can differ a little from napari-unet's.

Instance labels (one id per cell) come from a watershed seeded at the distance maxima of
the predicted interiors, which bioimage.io post-processing cannot express. This model's
settings, calibrated for it: interior threshold {labelling.threshold:g}, foreground threshold
{labelling.foreground:g} (a pixel belongs to a cell where the background probability is below
{1 - labelling.foreground:.2g}), split depth {labelling.split_depth:g} px, smallest object
{labelling.min_size} px (both at the model's scale); also in `rdf.yaml` under
`config.napari_unet.labelling`. Outside napari-unet, threshold the interior channel at
{labelling.threshold:g} and label connected components (Fiji: Analyze Particles; touching
cells may merge), or load the probabilities into napari-unet:
`napari_unet.probabilities_to_labels(probabilities, **dataclasses.asdict(napari_unet.load_model(file).labelling))`.
"""


_VALIDATION = """\
## Validation

The package holds a test input (`test_input.npy`, also `sample_input.tif`) and the
probabilities napari-unet computed for it (`test_output.npy`, `sample_output.tif`);
`bioimageio test` reproduces them with both weight formats. The accuracy of the model is
in the held-out validation scores of its training runs (below) and, for a shipped model,
in napari-unet's model card.
"""


def _history(model) -> str:
    if not model.history:
        return "## Training\n\nNo training runs recorded (a freshly initialised network).\n"
    rows = []
    for run in model.history:
        validation = json.dumps(run.get("validation")) if run.get("validation") else ""
        rows.append(f"| {run.get('kind', '')} | {run.get('date', '')} | {run.get('outcome', '')} | "
                    f"{run.get('steps', '')} | {run.get('annotated_cells', '')} | {validation} |")
    return "\n".join(["## Training", "", "The full recipe of every run is in the model file's metadata "
                      "(`napari_unet.load_model(...).history`).", "",
                      "| run | date | outcome | steps | annotated cells | validation |", "|---|---|---|---|---|---|",
                      *rows, ""])


def model_card(model, rdf: dict, geometry, file_name: str) -> str:
    """Markdown documentation of ``model`` as packaged in ``rdf`` with ``geometry``.

    Parameters
    ----------
    model : SegmentationModel
    rdf : dict
        The package description (name, timestamp, citations, the napari-unet config).
    geometry : PackageGeometry
        Input sizes and the context the network consumes.
    file_name : str
        The package's file name (how to load it back).

    Returns
    -------
    str
        Summary, pre-processing (described and not describable), post-processing,
        training runs, how to use the package, and what to cite.
    """
    citations = "\n".join(f"* {entry['text']}. doi:{entry['doi']}" for entry in rdf["cite"])
    return "\n\n".join([
        f"# {rdf['name']}\n\n{rdf['description']}",
        _summary(model, rdf, geometry),
        _processing(model, geometry),
        _VALIDATION,
        _history(model),
        _USE.format(file=file_name),
        f"## Cite\n\n{citations}\n\nLicence: {rdf['license']}.\n",
    ])
