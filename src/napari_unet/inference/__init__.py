"""Prediction: from an image of any layout and modality to class probabilities and labels.

Layers, bottom up: ``layout`` (axes, plane views) and ``appearance`` (polarity, colour,
normalisation) say how pixels are read; ``rescale`` and ``geometry`` move between grids
and cut tiles; ``runner`` runs the network on tiles; ``labels`` turns probabilities into
instances; ``diameter`` measures object size; ``reading`` decides all of it for one image
and model; ``segment`` (whole planes, tile events) and ``chunked`` (dask) put it together.
"""
