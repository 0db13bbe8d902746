"""``napari-unet export``: a model as a bioimage.io package for Fiji (deepImageJ), ilastik and bioimage.io."""

from __future__ import annotations

from .common import CommandError, load_model_option, read_file


def command_export(args) -> int:
    from ..interop.bioimageio import export_bioimageio

    out = args.out
    if out.suffix.lower() != ".zip":
        raise CommandError(f"--out {out}: a bioimage.io package is a zip file; give a name ending in .zip")
    if not out.parent.is_dir():
        raise CommandError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not args.overwrite:
        raise CommandError(f"--out {out}: exists; pass --overwrite to replace it")
    model = load_model_option(args.model, "cpu")
    test_image = read_file(args.test_image, "--test-image") if args.test_image else None
    try:
        export_bioimageio(model, out, name=args.name, description=args.description, authors=args.author or (),
                          license=args.license, test_image=test_image)
    except ValueError as error:
        option = "--test-image" if args.test_image and "test_image" in str(error) else "--out"
        raise CommandError(f"{option}: {error}") from None
    print(f"wrote {out}: bioimage.io model package of {model.name!r} ({model.config.arch}); check it with "
          f"'bioimageio test {out}' (pip install \"napari-unet[bioimageio]\")")
    return 0
